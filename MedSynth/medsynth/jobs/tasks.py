"""One background-task helper for every GUI: the Slicer modules' widgets and the web app.

A GUI must never freeze and must only touch its scene from its main thread. ``TaskRunner`` runs
one job at a time in a worker thread and hands its progress, result or error back on the main
thread: the GUI calls ``poll()`` from its event loop (Slicer: a QTimer, see
``medsynth.mrml.qt_scheduler``; the web app: its asyncio loop), and the callbacks run inside
that call. The states are explicit::

    IDLE -> RUNNING -> (CANCELLING ->) DONE | FAILED | CANCELLED -> IDLE

``cancel()`` sets the job's CancelToken, which the library checks inside long loops (a DRR
checks it between bands of detector rows), so a cancel is quick even in one long render.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from medsynth.errors import CancelledError
from medsynth.jobs.progress import CancelToken, ProgressCallback

Work = Callable[[ProgressCallback, CancelToken], Any]
#: Asks the GUI's event loop to call ``poll`` again soon, repeatedly, until it returns False.
Scheduler = Callable[[Callable[[], bool]], None]


class TaskState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class Task:
    """One job and what the GUI needs to show about it."""

    name: str
    kind: str = ""
    state: TaskState = TaskState.RUNNING
    fraction: float = 0.0
    message: str = ""
    result: Any = None
    error: BaseException | None = None
    cancel_token: CancelToken = field(default_factory=CancelToken)
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[BaseException], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    on_progress: Callable[[float, str], None] | None = None
    _events: queue.Queue = field(default_factory=queue.Queue, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED)


class TaskRunner:
    """Runs one job at a time off the main thread; callbacks arrive on the thread that calls ``poll``."""

    def __init__(self, scheduler: Scheduler | None = None) -> None:
        self._scheduler = scheduler
        self.task: Task | None = None  # the running task (None when idle)
        self.last: Task | None = None  # the last finished task

    @property
    def state(self) -> TaskState:
        return self.task.state if self.task is not None else TaskState.IDLE

    @property
    def busy(self) -> bool:
        return self.task is not None

    def busy_with(self, *kinds: str) -> bool:
        return self.task is not None and self.task.kind in kinds

    def start(self, name: str, work: Work, *, kind: str = "", on_done=None, on_error=None, on_cancelled=None,
              on_progress=None) -> Task:
        """Start ``work(progress, cancel)`` in a worker thread. Refused (RuntimeError) while another runs:
        the GUI disables its buttons instead, or cancels first."""
        if self.task is not None:
            raise RuntimeError(f"'{self.task.name}' is still running; cancel it or wait for it to finish.")
        task = Task(name=name, kind=kind, on_done=on_done, on_error=on_error, on_cancelled=on_cancelled,
                    on_progress=on_progress)

        def progress(fraction: float, message: str = "") -> None:
            task._events.put(("progress", fraction, message))

        def run() -> None:
            try:
                task._events.put(("done", work(progress, task.cancel_token), None))
            except BaseException as error:  # noqa: BLE001 - delivered to the GUI thread, not lost
                task._events.put(("error", error, None))

        task._thread = threading.Thread(target=run, name=f"MedSynth {name}", daemon=True)
        self.task = task
        task._thread.start()
        if self._scheduler is not None:
            self._scheduler(self.poll)
        return task

    def cancel(self) -> None:
        """Ask the running task to stop; its on_cancelled runs (from ``poll``) once it has."""
        if self.task is not None and self.task.state is TaskState.RUNNING:
            self.task.state = TaskState.CANCELLING
            self.task.cancel_token.cancel()

    def poll(self) -> bool:
        """Deliver queued progress and the outcome on the calling thread; True while a task still runs."""
        task = self.task
        if task is None:
            return False
        outcome = None
        while outcome is None:
            try:
                kind, value, message = task._events.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                task.fraction, task.message = float(value), message
                self._call(task.on_progress, task.fraction, message)
            else:
                outcome = (kind, value)
        if outcome is None:
            return True
        self.task, self.last = None, task
        kind, value = outcome
        if kind == "done":
            task.state, task.result, task.fraction = TaskState.DONE, value, 1.0
            self._call(task.on_done, value)
        elif isinstance(value, CancelledError) or (task.cancel_token.cancelled and not isinstance(value, Exception)):
            task.state = TaskState.CANCELLED
            self._call(task.on_cancelled)
        else:
            task.state, task.error = TaskState.FAILED, value
            if task.on_error is None:
                logging.error("MedSynth task %s failed", task.name, exc_info=value)
            self._call(task.on_error, value)
        return False

    def wait(self, timeout: float | None = None) -> Task | None:
        """Block until the running task ends and deliver it (scripts and tests; never on a GUI thread)."""
        task = self.task
        if task is None:
            return self.last
        task._thread.join(timeout)
        self.poll()
        return task

    @staticmethod
    def _call(callback, *args) -> None:
        if callback is not None:
            callback(*args)
