"""``qt`` stand-in: timers and the few constants module files touch (no widgets).

``QTimer`` instances record what a widget asks of them (interval, single shot, started or not);
a test fires their ``timeout()`` itself. ``QTimer.singleShot`` callbacks wait in
``QTimer.pending`` until ``run_single_shots()`` calls them: the tests drive the event loop.
"""

from __future__ import annotations


class Qt:
    WaitCursor = 3  # Qt::WaitCursor, for slicer.util.tryWithErrorDisplay(waitCursor=True)


class QTimer:
    pending: list = []

    def __init__(self) -> None:
        self.interval = 0
        self.single_shot = False
        self.active = False
        self._slots: list = []

    @classmethod
    def singleShot(cls, _milliseconds, callback) -> None:  # noqa: N802 - Qt's name
        cls.pending.append(callback)

    @classmethod
    def run_single_shots(cls) -> int:
        """Call the single-shot callbacks queued so far (not those they queue); how many ran."""
        callbacks, cls.pending = cls.pending, []
        for callback in callbacks:
            callback()
        return len(callbacks)

    def setSingleShot(self, value: bool) -> None:  # noqa: N802 - Qt's name
        self.single_shot = bool(value)

    def setInterval(self, milliseconds: int) -> None:  # noqa: N802 - Qt's name
        self.interval = int(milliseconds)

    def connect(self, signal: str, slot) -> None:
        assert signal == "timeout()", signal
        self._slots.append(slot)

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def isActive(self) -> bool:  # noqa: N802 - Qt's name
        return self.active

    def timeout(self) -> None:
        """The timer fires (the test decides when): a single-shot timer stops first, as in Qt."""
        if self.single_shot:
            self.active = False
        for slot in list(self._slots):
            slot()
