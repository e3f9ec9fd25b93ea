"""The Slicer side of ``medsynth.jobs.tasks``: poll a TaskRunner from Qt's event loop."""

from __future__ import annotations

from typing import Callable


def qt_scheduler(interval_ms: int = 50) -> Callable[[Callable[[], bool]], None]:
    """A TaskRunner scheduler: a chain of single-shot QTimers on the GUI thread while a task runs."""
    import qt

    def schedule(poll: Callable[[], bool]) -> None:
        def tick() -> None:
            if poll():
                qt.QTimer.singleShot(interval_ms, tick)

        qt.QTimer.singleShot(interval_ms, tick)

    return schedule
