"""What every panel shares: the trame server, the Slicer app and its scene, the current case, errors."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

from medsynth.errors import CancelledError, MedSynthError

LOG = logging.getLogger("medsynth.web")


@dataclass
class Case:
    """The data the panels work on: the CT node and its segmentation node (either may be None)."""

    ct_node: object = None
    segmentation_node: object = None
    labels: object = None  # the LabelMap the segmentation was loaded from (None: read it from the node)
    labels_mtime: int = 0  # the segmentation node's MTime when ``labels`` matched it


@dataclass
class WebContext:
    """The server, the trame-slicer ``SlicerApp``, its layout and the current case."""

    server: object
    slicer_app: object
    layout_manager: object = None
    case: Case = field(default_factory=Case)
    listeners: list = field(default_factory=list)  # called with the Case when the case changes

    @property
    def state(self):
        return self.server.state

    @property
    def scene(self):
        return self.slicer_app.scene

    # --- errors: one line in the page, never a dead page -----------------------------------------
    def show_error(self, error: BaseException | str) -> None:
        """Show the library's one-line message (or a short note for an unexpected failure)."""
        if isinstance(error, (MedSynthError, ValueError)) or isinstance(error, str):
            message = str(error)
        else:
            LOG.error("MedSynth web: unexpected error", exc_info=error)
            message = f"Unexpected error ({type(error).__name__}: {error}). The scene is unchanged; see the server log."
        self.state.error_message = message
        self.state.error_count = int(self.state.error_count or 0) + 1

    def clear_error(self) -> None:
        self.state.error_message = ""

    @contextmanager
    def guard(self):
        """Run a user action: a failure is shown in the page instead of escaping to trame."""
        try:
            self.clear_error()
            yield
        except CancelledError as error:
            self.state.status_message = str(error) or "Cancelled"
        except Exception as error:  # noqa: BLE001 - every failure is shown, none kills the page
            self.show_error(error)

    # --- the case and the views -------------------------------------------------------------------
    def set_case(self, ct_node, segmentation_node, labels=None) -> None:
        mtime = segmentation_node.GetMTime() if segmentation_node is not None else 0
        self.case = Case(ct_node, segmentation_node, labels, mtime)
        for listener in self.listeners:
            listener(self.case)

    def slice_views(self):
        return self.slicer_app.view_manager.get_slice_views()

    def threed_views(self):
        return self.slicer_app.view_manager.get_threed_views()

    def later(self, callback, delay_s: float = 0.05) -> None:
        """Run ``callback`` on the server's loop after the page got the current frame (now, without a loop)."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or not getattr(self.server, "running", False):  # another library's loop is not ours
            callback()
            return

        def run() -> None:
            with self.guard():
                callback()
            self.state.flush()

        loop.call_later(delay_s, run)

    @contextmanager
    def views_not_rendered(self, views):
        """Changes that these views do not show (DRR nodes, the C-arm for slice views) do not render them.

        trame-slicer's ``set_render_blocked(False)`` schedules a render on unblocking, the very frame
        to avoid here (a slice view with 89 segments costs about 90 ms), so the flag is set directly.
        """
        was = [view._is_render_blocked for view in views]
        for view in views:
            view._is_render_blocked = True
        try:
            yield
        finally:
            for view, blocked in zip(views, was):
                view._is_render_blocked = blocked

    def render(self) -> None:
        """Ask every view to render again (after voxels change in place, the views are not told)."""
        for view in self.slicer_app.view_manager.get_views():
            view.schedule_render()
