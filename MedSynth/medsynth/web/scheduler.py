"""The web side of ``medsynth.jobs.tasks``: poll a TaskRunner from trame's asyncio loop."""

from __future__ import annotations

import asyncio
from typing import Callable


def asyncio_scheduler(flush: Callable[[], None] | None = None, interval_s: float = 0.005):
    """A TaskRunner scheduler: a coroutine on the server's loop that polls until the task ends.

    ``flush`` (the trame state's) runs after each poll, so progress and results reach the page.
    """

    def schedule(poll: Callable[[], bool]) -> None:
        async def loop() -> None:
            while True:
                running = poll()
                if flush is not None:
                    flush()
                if not running:
                    return
                await asyncio.sleep(interval_s)

        asyncio.get_event_loop().create_task(loop())

    return schedule
