"""Semantic panel: a registered label-map -> CT model run on the segmentation, with progress and cancel.

``SemanticLogic`` reads the segmentation (loop), runs the model (TaskRunner worker) and stores
the result on the input's grid (loop); the page then shows it in a second axial view beside the CT.
"""

from __future__ import annotations

from medsynth.generative.parameters import SemanticParameters
from medsynth.jobs.tasks import TaskRunner
from medsynth.module_logic.semantic import SemanticLogic
from medsynth.web import bindings
from medsynth.web.context import WebContext
from medsynth.web.scheduler import asyncio_scheduler

PREFIX = "semantic"
SHOWN_FIELDS = ("model_id", "class_mapping", "unknown_classes", "seed")
LABELS = {"model_id": "Model", "class_mapping": "Class mapping (segment=class, ...)",
          "unknown_classes": "Unknown segments ('error' or a model class)", "seed": "Seed"}
#: The view beside the CT that shows the generated volume (a second axial slice view).
GENERATED_VIEW = "Generated"
SIDE_BY_SIDE = "Input | Generated"


class SemanticPanel:
    """Runs a model on the current segmentation and shows the synthetic CT beside the input."""

    def __init__(self, context: WebContext, scheduler=None) -> None:
        self.context = context
        self.logic = SemanticLogic()
        self.runner = TaskRunner(scheduler or asyncio_scheduler(context.state.flush))
        self.output_node = None
        self._labels_cache = None
        state = context.state
        bindings.push(state, PREFIX, SemanticParameters())
        state.semantic_models = [{"value": entry.id, "title": f"{entry.title} ({entry.id})"}
                                 for entry in self.logic.label_models()]
        state.semantic_slices = "current"
        state.semantic_busy = False
        state.semantic_progress = 0
        state.semantic_message = ""
        state.semantic_serial = 0

    def parameters(self) -> SemanticParameters:
        return bindings.from_state(SemanticParameters, self.context.state, PREFIX, "Semantic")

    def labels(self, segmentation_node):
        """The segmentation as a named LabelMap (the one it was loaded from, or read while the node is unchanged)."""
        case = self.context.case
        if case.labels is not None and segmentation_node is case.segmentation_node \
                and segmentation_node.GetMTime() == case.labels_mtime:
            return case.labels
        key = (segmentation_node.GetID(), segmentation_node.GetMTime())
        if self._labels_cache is None or self._labels_cache[0] != key:
            self._labels_cache = (key, self.logic.read_labels(segmentation_node))
        return self._labels_cache[1]

    def slices(self, labels):
        """'current' -> the axial slice the CT view shows; otherwise the library's syntax ('i..j', 'all')."""
        text = (self.context.state.semantic_slices or "current").strip()
        if text != "current":
            return text
        views = [view for view in self.context.slice_views() if view.get_singleton_tag() != GENERATED_VIEW]
        slice_to_ras = views[0].get_view_node().GetSliceToRAS()
        origin = [slice_to_ras.GetElement(row, 3) for row in range(3)]
        return [self.logic.slice_index_at(labels, origin)]

    # --- actions ------------------------------------------------------------------------------
    def run(self, *_) -> None:
        with self.context.guard():
            case = self.context.case
            if case.segmentation_node is None:
                raise ValueError("Open a case with a segmentation first (Data panel): the model paints its segments.")
            if self.runner.busy:
                raise ValueError("A model is already running; cancel it first.")
            parameters = self.parameters()
            labels = self.labels(case.segmentation_node)
            slices = self.slices(labels)
            body = self.logic.body_from(case.ct_node, labels) if case.ct_node is not None else "auto"
            state = self.context.state
            state.semantic_busy, state.semantic_progress, state.semantic_message = True, 0, "Starting"

            def progress(fraction, message=""):
                state.semantic_progress, state.semantic_message = round(100 * fraction), message

            self.runner.start(
                f"Generate with {parameters.model_id}",
                lambda report, cancel: self.logic.run(labels, parameters, slices, 1, body, report, cancel),
                kind="semantic", on_done=lambda volumes: self._store(volumes, labels, parameters),
                on_error=self._failed, on_cancelled=self._cancelled, on_progress=progress)

    def cancel(self, *_) -> None:
        self.runner.cancel()

    def _store(self, volumes, labels, parameters) -> None:
        state = self.context.state
        state.semantic_busy = False
        with self.context.guard():
            self.output_node = self.logic.store(volumes[0], labels, self.output_node,
                                                name=f"SyntheticCT_{parameters.model_id}")
            self.show_beside_input()
            state.semantic_message = f"{self.output_node.GetName()} ready"
            state.semantic_serial += 1

    def _failed(self, error) -> None:
        self.context.state.semantic_busy = False
        self.context.show_error(error)

    def _cancelled(self) -> None:
        self.context.state.semantic_busy = False
        self.context.state.semantic_message = "Cancelled: no volume was added."

    def show_beside_input(self) -> None:
        """The side-by-side layout: the CT on the left, the generated volume on the right, same slice."""
        context = self.context
        context.layout_manager.set_layout(SIDE_BY_SIDE)
        context.state.data_layout = SIDE_BY_SIDE
        manager = context.slicer_app.view_manager
        generated, source = manager.get_view(GENERATED_VIEW), None
        for view in context.slice_views():
            if view.get_singleton_tag() != GENERATED_VIEW:
                source = source or view
        generated.set_background_volume_id(self.output_node.GetID())
        generated.set_foreground_volume_id(None)
        generated.reset_view()
        if source is not None:
            generated.set_slice_value(source.get_slice_value())
        context.render()

    # --- page -----------------------------------------------------------------------------------
    def build(self) -> None:
        from trame.widgets import html, vuetify3 as v3

        with v3.VCard(title="Semantic synthesis", density="compact", classes="mb-2",
                      raw_attrs=['data-panel="semantic"']):
            with v3.VCardText():
                for info in bindings.field_infos(SemanticParameters, SHOWN_FIELDS):
                    if info.name == "model_id":
                        v3.VSelect(v_model=("semantic_model_id",), items=("semantic_models",), label=LABELS["model_id"],
                                   density="compact", hide_details=True, classes="my-1")
                    else:
                        bindings.control(PREFIX, info, LABELS[info.name])
                v3.VTextField(v_model=("semantic_slices",), label="Slices ('current', 'i..j' or 'all')",
                              density="compact", hide_details=True, classes="my-1")
                with html.Div(classes="d-flex"):
                    v3.VBtn("Run model", size="small", color="primary", classes="ma-1", click=self.run,
                            disabled=("semantic_busy",), raw_attrs=['data-action="semantic-run"'])
                    v3.VBtn("Cancel", size="small", classes="ma-1", click=self.cancel, disabled=("!semantic_busy",),
                            raw_attrs=['data-action="semantic-cancel"'])
                v3.VProgressLinear(model_value=("semantic_progress",), v_show=("semantic_busy",))
                html.Div("{{ semantic_message }}", classes="text-caption",
                         raw_attrs=['data-status="semantic"', ':data-serial="semantic_serial"'])
