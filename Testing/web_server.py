"""The web app served from a thread of the test process, for the Playwright tests and the web benchmark.

The server's asyncio loop owns the scene; ``ServedApp.call`` runs a function on that loop and
returns its result, so tests read and prepare MRML nodes on the thread that changes them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import sys
import threading
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedApp:
    """A MedSynthWebApp listening on 127.0.0.1 from a daemon thread, with a sample case opened on start."""

    def __init__(self, name: str, output_dir: Path, sample: str | None = "lidc", timeout_s: float = 180.0) -> None:
        self.name, self.output_dir, self.sample = name, output_dir, sample
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.app = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        argv, sys.argv = sys.argv, sys.argv[:1]  # trame reads its own options from the command line
        try:
            self.thread = threading.Thread(target=self._serve, name="MedSynth web server", daemon=True)
            self.thread.start()
            if not self._ready.wait(timeout_s) or self.error is not None:
                raise RuntimeError(f"the MedSynth web server did not start: {self.error}")
        finally:
            sys.argv = argv

    def _serve(self) -> None:
        """Build the app and serve it, all in this thread: VTK's OpenGL contexts belong to the thread that made them."""
        from trame.app import get_server

        from medsynth.web.app import MedSynthWebApp

        try:
            asyncio.set_event_loop(asyncio.new_event_loop())
            server = get_server(self.name, client_type="vue3")
            self.app = MedSynthWebApp(server, output_dir=self.output_dir)

            def on_ready(**_) -> None:
                self.loop = asyncio.get_running_loop()
                if self.sample:
                    self.app.open_on_start(sample=self.sample)
                self._ready.set()

            server.controller.on_server_ready.add(on_ready)
            server.start(port=self.port, host="127.0.0.1", open_browser=False, thread=True,
                         show_connection_info=False, timeout=0, disable_logging=True)
        except BaseException as error:  # noqa: BLE001 - reported by __init__
            self.error = error
            self._ready.set()

    def call(self, function, *args, timeout_s: float = 120.0):
        """``function(*args)`` on the server's loop (where the scene lives), the state flushed after it;
        its result or its exception."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                result = function(*args)
                self.app.server.state.flush()  # what the function changed reaches the page
                future.set_result(result)
            except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout_s)

    def wait_idle(self, timeout_s: float = 120.0) -> None:
        """Until no panel task runs (renders, tumors, models) on the server."""
        import time

        app, deadline = self.app, time.monotonic() + timeout_s
        while self.call(lambda: any(r.busy for r in (app.drr.runner, app.tumor.runner, app.semantic.runner))):
            if time.monotonic() > deadline:
                raise TimeoutError("the web app stayed busy")
            time.sleep(0.05)

    def stop(self) -> None:
        try:
            self.call(lambda: asyncio.ensure_future(self.app.server.stop()), timeout_s=10)
        except Exception:  # noqa: BLE001 - the thread is a daemon; the process ends anyway
            pass
        self.thread.join(10)
        if self.app is not None:
            self.app.close()


def deepest_point(ct, labels, value: int):
    """The RAS point deepest inside label ``value`` (a distance transform on the label's bounding box)."""
    import numpy as np
    from scipy import ndimage

    mask = labels.array == value
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    depth = ndimage.distance_transform_edt(np.pad(mask[box], 1), sampling=ct.spacing[::-1])[1:-1, 1:-1, 1:-1]
    voxel = np.array(np.unravel_index(np.argmax(depth), depth.shape)) + [s.start for s in box]
    return ct.ijk_to_ras_points(voxel[::-1].astype(float))
