"""Data panel: open a CT (sample scan, path or upload) with its label map; layouts; window/level presets."""

from __future__ import annotations

import tempfile
from pathlib import Path

from medsynth.display import CT_WINDOWS
from medsynth.module_logic.cases import SAMPLE_CASES, load_case, load_segmentation, sample_files
from medsynth.web.context import WebContext
from medsynth.web.semantic_panel import SIDE_BY_SIDE

LAYOUTS = ("Axial Primary", "Axial Only", "Quad View", "3D Primary", SIDE_BY_SIDE)


class DataPanel:
    """Loads cases into the scene and shows them in the slice views."""

    def __init__(self, context: WebContext) -> None:
        self.context = context
        state = context.state
        state.data_sample = "lidc"
        state.data_samples = [{"value": key, "title": case.title} for key, case in SAMPLE_CASES.items()]
        state.data_ct_path = ""
        state.data_labels_path = ""
        state.data_case_name = ""
        state.data_layout = "Axial Primary"
        state.data_busy = False
        state.change("data_layout")(self._on_layout)

    # --- actions ------------------------------------------------------------------------------
    def open_sample(self, name: str | None = None) -> None:
        with self.context.guard():
            name = name or self.context.state.data_sample
            ct, labels, table = sample_files(name)
            self.open_files(ct, labels, table, name=name)

    def open_paths(self) -> None:
        with self.context.guard():
            state = self.context.state
            if not state.data_ct_path:
                raise ValueError("Type the path of a CT (DICOM folder, NIfTI or NRRD file) first.")
            self.open_files(Path(state.data_ct_path).expanduser(),
                            Path(state.data_labels_path).expanduser() if state.data_labels_path else None)

    def open_uploads(self, files: list[dict] | None, label_files: list[dict] | None = None) -> None:
        """Files from the browser: a CT (one file, or the files of a DICOM series) and optional labels."""
        from trame_slicer.utils import write_client_files_to_dir

        with self.context.guard():
            if not files:
                raise ValueError("No file received. Choose a CT file (NIfTI, NRRD) or the files of a DICOM series.")
            with tempfile.TemporaryDirectory() as folder:
                ct_dir, labels_dir = Path(folder, "ct"), Path(folder, "labels")
                ct_dir.mkdir()
                labels_dir.mkdir()
                written = sorted(write_client_files_to_dir(files, str(ct_dir)))
                ct_path = Path(written[0]) if len(written) == 1 else ct_dir
                labels_path = None
                if label_files:
                    labels_path = Path(sorted(write_client_files_to_dir(label_files, str(labels_dir)))[0])
                self.open_files(ct_path, labels_path, name=Path(written[0]).name.split(".")[0])

    def open_label_uploads(self, files: list[dict] | None) -> None:
        """A label map from the browser, for the open CT (TotalSegmentator's label ids name the segments)."""
        from trame_slicer.utils import write_client_files_to_dir

        from medsynth.data import fetch

        with self.context.guard():
            if not files:
                raise ValueError("No file received. Choose the label map (NIfTI, NRRD) of the open CT.")
            with tempfile.TemporaryDirectory() as folder:
                path = Path(sorted(write_client_files_to_dir(files, folder))[0])
                table = fetch("lidc") / "structures.csv"  # TotalSegmentator v2 label names
                opened = load_segmentation(self.context.case.ct_node, path, table)
            self.show(opened.ct_node, opened.segmentation_node, opened.labels)

    def open_files(self, ct_path, labels_path=None, table_path=None, name: str | None = None) -> None:
        """Load a case (all or nothing) and show it; raises the library's error for a bad file."""
        opened = load_case(ct_path, labels_path, table_path, name=name)
        self.show(opened.ct_node, opened.segmentation_node, opened.labels)

    def show(self, ct_node, segmentation_node=None, labels=None) -> None:
        context = self.context
        manager = context.slicer_app.display_manager
        manager.show_volume_in_slice_background(ct_node)
        manager.show_volume_in_slice_foreground(None)
        if segmentation_node is not None:
            display = segmentation_node.GetDisplayNode()
            display.SetOpacity2DFill(0.15)
            display.SetVisibility3D(False)
        self.apply_window("soft_tissue", ct_node)
        for view in context.slice_views():
            view.reset_view()
            view.set_visible_in_3d(view.get_singleton_tag() == "Red")  # the axial slice inside the C-arm
        context.state.data_case_name = ct_node.GetName()
        context.render()
        # the panels' first work (packing the CT for DRRs) waits until the views have gone out
        context.later(lambda: context.set_case(ct_node, segmentation_node, labels))

    def apply_window(self, preset: str, ct_node=None) -> None:
        with self.context.guard():
            node = ct_node or self.context.case.ct_node
            if node is None:
                raise ValueError("Open a CT first (Data panel).")
            level, width = CT_WINDOWS[preset]
            display = node.GetDisplayNode()
            display.SetAutoWindowLevel(False)
            display.SetWindowLevel(width, level)
            self.context.render()

    def _on_layout(self, data_layout, **_) -> None:
        with self.context.guard():
            self.context.layout_manager.set_layout(data_layout)

    # --- page ---------------------------------------------------------------------------------
    def build(self) -> None:
        from trame.widgets import html, vuetify3 as v3

        with v3.VCard(title="Data", density="compact", classes="mb-2", raw_attrs=['data-panel="data"']):
            with v3.VCardText():
                v3.VSelect(v_model=("data_sample",), items=("data_samples",), label="Sample scan",
                           density="compact", hide_details=True)
                v3.VBtn("Open sample", click=self.open_sample, block=True, classes="my-2", color="primary",
                        raw_attrs=['data-action="open-sample"'])
                v3.VTextField(v_model=("data_ct_path",), label="CT path (DICOM folder, NIfTI, NRRD)",
                              density="compact", hide_details=True, raw_attrs=['data-path="ct"'])
                v3.VTextField(v_model=("data_labels_path",), label="Label map path (optional)",
                              density="compact", hide_details=True, classes="mt-1")
                v3.VBtn("Open path", click=self.open_paths, block=True, classes="my-2",
                        raw_attrs=['data-action="open-path"'])
                v3.VFileInput(label="Upload a CT", multiple=True, density="compact", hide_details=True,
                              change=(self.open_uploads, "[$event.target.files]"), raw_attrs=['data-action="upload"'])
                v3.VFileInput(label="Upload its label map", density="compact", hide_details=True, classes="mt-1",
                              change=(self.open_label_uploads, "[$event.target.files]"),
                              raw_attrs=['data-action="upload-labels"'])
                html.Div("Case: {{ data_case_name || 'none' }}", classes="text-caption my-1",
                         raw_attrs=['data-status="case"'])
                with html.Div(classes="d-flex flex-wrap"):
                    for preset in CT_WINDOWS:
                        v3.VBtn(preset.replace("_", " "), size="small", variant="tonal", classes="ma-1",
                                click=(self.apply_window, f"['{preset}']"))
                v3.VSelect(v_model=("data_layout",), items=(list(LAYOUTS),), label="Layout", density="compact",
                           hide_details=True, classes="mt-2")
