"""Progress callbacks and cancel tokens.

A long operation takes ``progress: ProgressCallback | None`` (called with a fraction in [0, 1]
and a short message) and ``cancel: CancelToken | None``. The CLI turns them into a tqdm bar and
Ctrl-C; the Slicer Logic into a progress bar and a Cancel button.
"""

from __future__ import annotations

import threading
from typing import Callable

from medsynth.errors import CancelledError

ProgressCallback = Callable[[float, str], None]


def report(progress: ProgressCallback | None, fraction: float, message: str = "") -> None:
    """Call ``progress`` if given, with the fraction clamped to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def sub_progress(progress: ProgressCallback | None, start: float, stop: float) -> ProgressCallback | None:
    """A callback mapping [0, 1] of a sub-task onto [start, stop] of the parent's progress."""
    if progress is None:
        return None
    return lambda fraction, message="": progress(start + (stop - start) * fraction, message)


class CancelToken:
    """Set by the user (another thread, a GUI button); checked by the worker between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError("Cancelled by the user; no partial output was kept.")


def check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
