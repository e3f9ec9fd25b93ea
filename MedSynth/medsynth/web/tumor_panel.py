"""Tumor panel: TumorParameters as controls; a click in a slice view paints a tumor there; random tumors; undo/redo.

Every action goes through ``TumorLogic`` (start on the loop, paint in a TaskRunner worker, commit
on the loop), so the CT and its "Tumor" segment change together and undo/redo are exact.
"""

from __future__ import annotations

from contextlib import contextmanager

from medsynth.jobs.tasks import TaskRunner
from medsynth.module_logic.tumor import TumorLogic, describe
from medsynth.tumor.parameters import TumorParameters
from medsynth.web import bindings
from medsynth.web.context import WebContext
from medsynth.web.scheduler import asyncio_scheduler

PREFIX = "tumor"
SHOWN_FIELDS = ("organ", "lesion", "tumor_type", "diameter_mm", "count", "density", "contrast_phase", "capsule",
                "mass_effect", "necrosis", "duct_dilation", "keep_vessels", "seed")
LABELS = {"organ": "Organ", "tumor_type": "Tumor type", "diameter_mm": "Diameter (custom, mm)",
          "count": "Random tumors (0: the type's range)", "density": "Density", "contrast_phase": "Contrast phase",
          "capsule": "Capsule", "mass_effect": "Mass effect", "necrosis": "Necrosis", "keep_vessels": "Keep vessels",
          "lesion": "Lesion (default: the organ's usual one)", "duct_dilation": "Dilated duct (pancreas)",
          "seed": "Seed"}


class TumorPanel:
    """Paints synthetic tumors into the current CT and its segmentation."""

    def __init__(self, context: WebContext, picker, scheduler=None) -> None:
        self.context = context
        self.picker = picker
        self.logic = TumorLogic()
        self.runner = TaskRunner(scheduler or asyncio_scheduler(context.state.flush))
        state = context.state
        bindings.push(state, PREFIX, TumorParameters())
        state.tumor_clicking = False
        state.tumor_info = ""
        state.tumor_serial = 0
        state.tumor_busy = False
        state.tumor_progress = 0
        state.tumor_can_undo = False
        state.tumor_can_redo = False
        context.listeners.append(lambda case: self.logic.reset())

    def parameters(self) -> TumorParameters:
        return bindings.from_state(TumorParameters, self.context.state, PREFIX, "Tumor")

    def _inputs(self):
        case = self.context.case
        if case.ct_node is None:
            raise ValueError("Open a CT with its segmentation first (Data panel).")
        parameters = self.parameters()
        organ_id = self.logic.find_organ_segment(case.segmentation_node, parameters.organ)
        self.logic.reset_if_inputs_changed(case.ct_node, case.segmentation_node, organ_id)
        return case, parameters, organ_id

    # --- actions ------------------------------------------------------------------------------
    def toggle_clicking(self, *_) -> None:
        """Arm (or disarm) painting: every click in a slice view paints a tumor centred there."""
        with self.context.guard():
            if self.context.state.tumor_clicking:
                self.picker.disarm()
                self.context.state.tumor_clicking = False
                return
            case, parameters, organ_id = self._inputs()
            # checks the inputs now, not at the click, and reads the organ mask once (changes nothing)
            self.logic.start(case.ct_node, case.segmentation_node, organ_id, parameters)
            self.picker.arm(self.paint_at, persistent=True)
            self.context.state.tumor_clicking = True

    def paint_at(self, point_ras) -> None:
        """Paint one tumor centred at a RAS point (a click)."""
        with self.context.guard():
            case, parameters, organ_id = self._inputs()
            job = self.logic.start(case.ct_node, case.segmentation_node, organ_id, parameters, point_ras=point_ras)
            self._run("Tumor", job)

    def paint_random(self, *_) -> None:
        """Paint the type's number of tumors (or ``count``) at random places in the organ."""
        with self.context.guard():
            case, parameters, organ_id = self._inputs()
            job = self.logic.start(case.ct_node, case.segmentation_node, organ_id, parameters)
            self._run("Random tumors", job)

    def _run(self, name: str, job) -> None:
        if self.runner.busy:
            raise ValueError("A tumor is still being painted; wait for it or cancel it.")
        state = self.context.state
        state.tumor_busy, state.tumor_progress = True, 0

        def progress(fraction, message=""):
            state.tumor_progress = round(100 * fraction)

        self.runner.start(name, lambda report, cancel: TumorLogic.paint(job, report, cancel), kind="tumor",
                          on_done=lambda result: self._commit(job, result), on_error=self._failed,
                          on_cancelled=self._cancelled, on_progress=progress)

    def _commit(self, job, result) -> None:
        with self.context.guard():
            with self._clicked_view_first():
                try:
                    tumors = self.logic.commit(job, result)
                finally:
                    self.context.state.tumor_busy = False
                self.context.state.tumor_info = describe(tumors)
                self._changed()

    @contextmanager
    def _clicked_view_first(self):
        """The clicked slice view gets the first frame; the other views follow once it has gone out."""
        context = self.context
        first = self.picker.last_view if self.picker.last_view in context.slice_views() else None
        others = [view for view in context.slice_views() + context.threed_views() if view is not first]
        if first is None:
            yield
            return
        with context.views_not_rendered(others):
            yield
        context.later(lambda: [view.schedule_render() for view in others], 0.15)

    def _failed(self, error) -> None:
        self.context.state.tumor_busy = False
        self.context.show_error(error)

    def _cancelled(self) -> None:
        self.context.state.tumor_busy = False
        self.context.state.tumor_info = "Cancelled: the CT is unchanged."

    def cancel(self, *_) -> None:
        self.runner.cancel()

    def undo(self, *_) -> None:
        with self.context.guard():
            if self.logic.undo():
                self.context.state.tumor_info = "Undone: the CT and segments are as before."
            self._changed()

    def redo(self, *_) -> None:
        with self.context.guard():
            if self.logic.redo():
                self.context.state.tumor_info = "Redone."
            self._changed()

    def _changed(self) -> None:
        state = self.context.state
        state.tumor_serial += 1
        state.tumor_can_undo, state.tumor_can_redo = self.logic.can_undo, self.logic.can_redo
        for view in self.context.slice_views():  # voxels changed in place: the views are not told
            view.schedule_render()  # (a no-op for the views held back by _clicked_view_first)

    # --- page -----------------------------------------------------------------------------------
    def build(self) -> None:
        from trame.widgets import html, vuetify3 as v3

        with v3.VCard(title="Tumor", density="compact", classes="mb-2", raw_attrs=['data-panel="tumor"']):
            with v3.VCardText():
                for info in bindings.field_infos(TumorParameters, SHOWN_FIELDS):
                    step = 1 if info.name in ("diameter_mm", "count") else None
                    if info.name == "seed":
                        bindings.control(PREFIX, info, LABELS[info.name])
                    else:
                        bindings.control(PREFIX, info, LABELS[info.name], step=step)
                with html.Div(classes="d-flex flex-wrap"):
                    v3.VBtn("{{ tumor_clicking ? 'Stop painting' : 'Click to paint' }}", size="small",
                            color=("tumor_clicking ? 'warning' : 'primary'",), classes="ma-1",
                            click=self.toggle_clicking, raw_attrs=['data-action="tumor-click"'])
                    v3.VBtn("Random", size="small", classes="ma-1", click=self.paint_random,
                            disabled=("tumor_busy",), raw_attrs=['data-action="tumor-random"'])
                    v3.VBtn("Undo", size="small", classes="ma-1", click=self.undo, disabled=("!tumor_can_undo",),
                            raw_attrs=['data-action="tumor-undo"'])
                    v3.VBtn("Redo", size="small", classes="ma-1", click=self.redo, disabled=("!tumor_can_redo",),
                            raw_attrs=['data-action="tumor-redo"'])
                    v3.VBtn("Cancel", size="small", classes="ma-1", click=self.cancel, v_show=("tumor_busy",))
                v3.VProgressLinear(model_value=("tumor_progress",), v_show=("tumor_busy",))
                html.Pre("{{ tumor_info }}", classes="text-caption", style="white-space: pre-wrap;",
                         raw_attrs=['data-status="tumor"', ':data-serial="tumor_serial"'])
