"""DRR panel: C-arm controls bound to DRRParameters; live preview while a slider moves, full image on release.

Rendering goes through ``DRRLogic`` (prepare on the loop, render in a TaskRunner worker, nodes
written back on the loop), the C-arm models in the 3D view through ``DRRLogic.show_carm``, and
"aim here" through ``DRRLogic.aim_at_point`` on a point placed in a slice view.
"""

from __future__ import annotations

import time
from pathlib import Path

from medsynth import parameters as params
from medsynth.drr.parameters import OUTPUT_KINDS, DRRParameters
from medsynth.geometry import preset_names
from medsynth.jobs.tasks import TaskRunner
from medsynth.module_logic.drr import DRRLogic
from medsynth.mrml.transactions import SceneChanges
from medsynth.web import bindings
from medsynth.web.context import WebContext
from medsynth.web.images import drr_pixels, png_data_url
from medsynth.web.scheduler import asyncio_scheduler

PREFIX = "drr"
#: The page's read-out: full images at 512 x 512, previews binned by 2 (256 x 256), the preset's field of view.
FULL_PIXELS = 512
PREVIEW_FACTOR = 2
#: Fields whose sliders give a live preview while they move (and the full image when let go).
SLIDER_FIELDS = ("pose.primary_angle", "pose.secondary_angle", "pose.sid", "kv")
#: Dual-energy pairs and bone / soft-tissue images are output kinds ("Image"), shown side by side under the first.
SHOWN_FIELDS = ("preset", "pose.primary_angle", "pose.secondary_angle", "pose.sid", "kv", "output_kind", "add_noise")
LABELS = {"pose.primary_angle": "LAO + / RAO - (deg)", "pose.secondary_angle": "CRAN + / CAUD - (deg)",
          "pose.sid": "SID (mm)", "kv": "Tube voltage (kV)", "preset": "C-arm preset",
          "output_kind": "Image", "add_noise": "Quantum noise"}
EXPORT_FORMATS = ("nifti", "png", "dicom")
#: While a slider moves, the 3D view (the C-arm, ~0.3 s a frame on a loaded 2-core CPU) gets at most one frame
#: per this many seconds, so previews are not queued behind it; the full image always moves it.
THREED_PREVIEW_INTERVAL_S = 0.5


def web_parameters(preset: str = "mobile") -> DRRParameters:
    """The page's defaults: the preset's field of view read out at 512 x 512, previews at 256 x 256."""
    return DRRParameters.from_preset(preset, FULL_PIXELS, preview_factor=PREVIEW_FACTOR)


class DRRPanel:
    """Binds the DRR controls to DRRParameters and shows the radiograph and the C-arm."""

    def __init__(self, context: WebContext, output_dir: Path, scheduler=None) -> None:
        self.context = context
        self.output_dir = Path(output_dir)
        self.logic = DRRLogic(context.scene)
        self.runner = TaskRunner(scheduler or asyncio_scheduler(context.state.flush))
        self.nodes: dict = {}  # image name -> DRR volume node (reused render after render)
        self.carm_transform = None
        self.last_view = None  # the last full-resolution DRRView (what Export writes)
        self._wanted: str | None = None  # "preview" or "full", asked for while a render was running
        self._threed_shown_at = 0.0
        state = context.state
        bindings.push(state, PREFIX, web_parameters())
        state.drr_detector_mm = round(FULL_PIXELS * state.drr_pixel_spacing, 1)
        state.drr_presets = list(preset_names())
        state.drr_output_kinds = [{"value": key, "title": value[0]} for key, value in OUTPUT_KINDS.items()]
        state.drr_image = ""
        state.drr_images = []
        state.drr_serial = 0
        state.drr_full_serial = 0
        state.drr_info = ""
        state.drr_export_format = "png"
        state.drr_export_message = ""
        state.drr_aiming = False
        sliders = [bindings.state_name(PREFIX, name) for name in SLIDER_FIELDS] + ["drr_detector_mm"]
        switches = [bindings.state_name(PREFIX, name) for name in SHOWN_FIELDS
                    if name not in SLIDER_FIELDS and name != "preset"]
        state.change(*sliders)(self._on_slider)
        state.change(*switches)(self._on_switch)
        state.change("drr_preset")(self._on_preset)
        context.listeners.append(self._on_case)

    # --- parameters -----------------------------------------------------------------------------
    def parameters(self) -> DRRParameters:
        state = self.context.state
        parameters = bindings.from_state(DRRParameters, state, PREFIX, "DRR")
        rows = parameters.detector_rows
        return params.updated(parameters, {"pixel_spacing": float(state.drr_detector_mm) / rows}, "DRR")

    def _on_preset(self, drr_preset, **_) -> None:
        with self.context.guard():
            current = self.parameters()
            if current.preset == drr_preset and self.context.state.drr_serial:
                return
            moved = current.with_preset(drr_preset, FULL_PIXELS)
            bindings.push(self.context.state, PREFIX, moved)
            self.context.state.drr_detector_mm = round(FULL_PIXELS * moved.pixel_spacing, 1)
            self.request("full")

    def _on_case(self, case) -> None:
        """A new CT: aim at its centre and render (the first render also packs the CT for the projector)."""
        if case.ct_node is None:
            return
        center = self.logic.ct_volume(case.ct_node).center_ras
        parameters = self.parameters()
        bindings.push(self.context.state, PREFIX, parameters.replace(pose=parameters.pose.moved_to(center)))
        self.request("full")

    def _on_slider(self, **_) -> None:
        self.request("preview")

    def _on_switch(self, **_) -> None:
        self.request("full")

    # --- rendering -------------------------------------------------------------------------------
    def request(self, kind: str = "full") -> None:
        """Render a preview or the full image; while one runs, remember the latest wish (full wins)."""
        if self.context.case.ct_node is None:
            return
        if self.runner.busy:
            self._wanted = "full" if "full" in (kind, self._wanted) else "preview"
            return
        with self.context.guard():
            preview = kind == "preview"
            job = self.logic.prepare(self.context.case.ct_node, self.parameters(), preview=preview)
            self.runner.start("DRR preview" if preview else "DRR", lambda progress, cancel: self.logic.render(
                job, progress, cancel), kind=kind, on_done=lambda views: self._show(job, views),
                on_error=self._failed)

    def release(self, *_) -> None:
        """A slider was let go: the full-resolution physics image."""
        self.request("full")

    def _failed(self, error: BaseException) -> None:
        self.context.show_error(error)
        self._next()

    def _next(self) -> None:
        wanted, self._wanted = self._wanted, None
        if wanted:
            self.request(wanted)

    def _show(self, job, views) -> None:
        with self.context.guard():
            view = views[0]
            # the slice views show neither DRR nodes nor the C-arm (2D visibility off): they need no new frame
            held_back = list(self.context.slice_views())
            now = time.monotonic()
            if job.preview and now - self._threed_shown_at < THREED_PREVIEW_INTERVAL_S:
                held_back += self.context.threed_views()
            else:
                self._threed_shown_at = now
            with self.context.views_not_rendered(held_back), SceneChanges(self.context.scene) as changes:
                for name, image in view.images.items():
                    node = self.nodes.get(name)
                    if node is None or node.GetScene() is None:
                        node = changes.add("vtkMRMLScalarVolumeNode", f"{job.base_name} {name}")
                        node.CreateDefaultDisplayNodes()
                        self.nodes[name] = node
                    self.logic.update_drr_node(node, image, view.carm, name, job.preview)
                carm_nodes = self.logic.show_carm(view.carm, self.carm_transform)
            if self.carm_transform is None:  # the first C-arm: frame it with the CT in the 3D view
                self._frame_carm(view.carm)
            self.carm_transform = carm_nodes.transform
            state = self.context.state
            images = [{"name": name, "src": png_data_url(drr_pixels(image), invert=name.endswith("intensity"))}
                      for name, image in view.images.items()]
            state.drr_images = images
            state.drr_image = images[0]["src"]
            state.drr_serial += 1
            carm = view.carm
            rows, columns = drr_pixels(next(iter(view.images.values()))).shape
            state.drr_info = (f"{'preview' if job.preview else 'full'} {columns} x {rows}: "
                              f"{carm.primary_angle:+.0f} deg {'LAO' if carm.primary_angle >= 0 else 'RAO'}, "
                              f"{carm.secondary_angle:+.0f} deg {'CRAN' if carm.secondary_angle >= 0 else 'CAUD'}, "
                              f"SID {carm.sid:.0f} mm")
            if not job.preview:
                self.last_view = view
                state.drr_full_serial += 1
        self._next()

    def _frame_carm(self, carm) -> None:
        """Point the 3D view's camera (its MRML camera node) at the isocenter, from the front-right-above,
        far enough to see the whole C-arm (about twice the SID)."""
        import numpy as np

        center = np.asarray(carm.isocenter, float)
        position = center + 2.2 * float(carm.sid) * np.array([0.45, 0.8, 0.4]) / np.linalg.norm([0.45, 0.8, 0.4])
        scene = self.context.scene
        for index in range(scene.GetNumberOfNodesByClass("vtkMRMLCameraNode")):
            camera = scene.GetNthNodeByClass(index, "vtkMRMLCameraNode")
            camera.SetFocalPoint(*center)
            camera.SetPosition(*position)
            camera.SetViewUp(0.0, 0.0, 1.0)
            camera.ResetClippingRange()

    # --- aim and export ----------------------------------------------------------------------------
    def aim_at(self, markups_node, index: int = 0) -> None:
        """Put the isocenter on a placed point (the point then shows at the detector centre)."""
        with self.context.guard():
            parameters = self.parameters()
            pose = self.logic.aim_at_point(parameters.pose, markups_node, index)
            bindings.push(self.context.state, PREFIX, parameters.replace(pose=pose))
            self.request("full")

    def export(self) -> None:
        """Write the last full image (NIfTI, PNG or DICOM) with its geometry JSON."""
        from medsynth.drr.writers import write_view

        with self.context.guard():
            if self.last_view is None or self.last_view.projection is None:
                raise ValueError("No full-resolution DRR yet: open a CT and let the sliders settle, then export.")
            fmt = self.context.state.drr_export_format
            folder = self.output_dir / f"drr_{self.context.state.drr_full_serial:04d}"
            description = write_view(self.last_view.projection, folder, formats=[fmt])
            self.context.state.drr_export_message = f"Wrote {', '.join(description['files'].values())} to {folder}"

    # --- page ---------------------------------------------------------------------------------------
    def build(self, on_aim) -> None:
        from trame.widgets import html, vuetify3 as v3

        with v3.VCard(title="DRR", density="compact", classes="mb-2", raw_attrs=['data-panel="drr"']):
            with v3.VCardText():
                for info in bindings.field_infos(DRRParameters, SHOWN_FIELDS):
                    label = LABELS.get(info.name)
                    if info.name == "output_kind":
                        v3.VSelect(v_model=("drr_output_kind",), items=("drr_output_kinds",), label=label,
                                   density="compact", hide_details=True, classes="my-1")
                    elif info.name == "preset":
                        v3.VSelect(v_model=("drr_preset",), items=("drr_presets",), label=label,
                                   density="compact", hide_details=True, classes="my-1")
                    elif info.name in SLIDER_FIELDS:
                        bindings.control(PREFIX, info, label, step=1, end=self.release)
                    else:
                        bindings.control(PREFIX, info, label)
                v3.VSlider(v_model=("drr_detector_mm",), min=100, max=500, step=1, label="Detector (mm)",
                           thumb_label=True, density="compact", hide_details=True, end=self.release,
                           raw_attrs=['data-field="drr_detector_mm"'])
                with html.Div(classes="d-flex flex-wrap"):
                    v3.VBtn("Render", size="small", color="primary", classes="ma-1", click=self.release,
                            raw_attrs=['data-action="drr-render"'])
                    v3.VBtn("Aim here", size="small", classes="ma-1", click=on_aim,
                            color=("drr_aiming ? 'warning' : undefined",), raw_attrs=['data-action="drr-aim"'])
                with html.Div(classes="d-flex align-center"):
                    v3.VSelect(v_model=("drr_export_format",), items=(list(EXPORT_FORMATS),), label="Export as",
                               density="compact", hide_details=True)
                    v3.VBtn("Export", size="small", classes="ma-1", click=self.export,
                            raw_attrs=['data-action="drr-export"'])
                html.Div("{{ drr_export_message }}", classes="text-caption")
                html.Div("{{ drr_info }}", classes="text-caption", raw_attrs=['data-status="drr"'])
                html.Img(src=("drr_image",), v_show=("drr_image",), style="width: 100%; image-rendering: auto;",
                         raw_attrs=['data-image="drr"', ':data-serial="drr_serial"', ':data-full-serial="drr_full_serial"'])
                with html.Div(classes="d-flex", v_show=("drr_images.length > 1",)):
                    html.Img(v_for="item in drr_images.slice(1)", key="item.name", src=("item.src",),
                             title=("item.name",), style="width: 50%;")
