"""``qt`` stand-in: only what module files touch at import and in their logic (no widgets)."""

from __future__ import annotations


class QTimer:
    """Records single-shot callbacks; ``run_pending()`` calls them (tests drive the 'event loop')."""

    pending: list = []

    @classmethod
    def singleShot(cls, _milliseconds, callback) -> None:  # noqa: N802 - Qt's name
        cls.pending.append(callback)

    @classmethod
    def run_pending(cls) -> int:
        calls = 0
        while cls.pending:
            callbacks, cls.pending = cls.pending, []
            for callback in callbacks:
                callback()
                calls += 1
        return calls


class QSettings:
    _values: dict = {}

    def value(self, key, default=None):
        return self._values.get(key, default)

    def setValue(self, key, value) -> None:  # noqa: N802 - Qt's name
        self._values[key] = value
