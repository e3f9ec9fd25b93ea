"""``qt`` stand-in: only what module files touch at import and in their logic (no widgets)."""

from __future__ import annotations


class QTimer:
    """Records single-shot callbacks in ``pending`` (no event loop runs them by itself)."""

    pending: list = []

    @classmethod
    def singleShot(cls, _milliseconds, callback) -> None:  # noqa: N802 - Qt's name
        cls.pending.append(callback)
