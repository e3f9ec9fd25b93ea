"""The MedSynth web app: a trame server, a trame-slicer SlicerApp whose scene MedSynth works in, four panels.

``MedSynthWebApp`` builds the page (views in Slicer's layouts on the right, the Data, DRR, Tumor
and Semantic panels in a drawer, an error line on top) and owns nothing else: every action is a
panel method that calls ``medsynth.module_logic``. One user per server process, as trame serves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from medsynth.web.context import WebContext

PANELS = ("data", "drr", "tumor", "semantic")
PANEL_TITLES = {"data": "Data", "drr": "DRR", "tumor": "Tumor", "semantic": "Semantic"}


def layouts():
    """Slicer's default layouts plus the semantic panel's side-by-side view (input CT | generated CT)."""
    from trame_slicer.core import LayoutManager
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    from medsynth.web.semantic_panel import GENERATED_VIEW, SIDE_BY_SIDE

    grid = dict(LayoutManager.default_grid_configuration())
    generated = ViewLayoutDefinition.slice_view("Axial", label=GENERATED_VIEW, color="#4A90E2")
    grid[SIDE_BY_SIDE] = Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.axial_view(), generated])
    return grid


class MedSynthWebApp:
    """The page and its panels on one trame server."""

    def __init__(self, server=None, output_dir: str | Path = "medsynth_web_output", scheduler=None,
                 layout: str = "Axial Primary") -> None:
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        from medsynth.mrml.app import adopt_scene
        from medsynth.web.data_panel import DataPanel
        from medsynth.web.drr_panel import DRRPanel
        from medsynth.web.points import PointPicker
        from medsynth.web.semantic_panel import SemanticPanel
        from medsynth.web.tumor_panel import TumorPanel

        self.server = server or get_server(client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.slicer_app = SlicerApp()
        self.previous_scene = adopt_scene(self.slicer_app.scene, self.slicer_app.app_logic)
        register_rca_factories(self.slicer_app.view_manager, self.server)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layout_manager.register_layout_dict(layouts(), lazy_initialization=True)
        self.layout_manager.set_layout(layout)
        self.context = WebContext(self.server, self.slicer_app, self.layout_manager)
        state = self.server.state
        state.error_message = ""
        state.error_count = 0
        state.status_message = ""
        state.panel = "data"
        state.trame__title = "MedSynth"
        self.picker = PointPicker(self.context)
        self.data = DataPanel(self.context)
        self.drr = DRRPanel(self.context, Path(output_dir), scheduler)
        self.tumor = TumorPanel(self.context, self.picker, scheduler)
        self.semantic = SemanticPanel(self.context, scheduler)
        state.data_layout = layout
        self._build_ui()

    # --- actions shared by panels ---------------------------------------------------------------
    def aim_here(self, *_) -> None:
        """The next click in a slice view becomes the C-arm's isocenter."""
        state = self.server.state
        with self.context.guard():
            if self.context.case.ct_node is None:
                raise ValueError("Open a CT first (Data panel), then click where the C-arm should aim.")
            self.tumor_stop()

            def aimed(ras):
                state.drr_aiming = False
                node = self.picker.as_markups(ras)
                try:
                    self.drr.aim_at(node, 0)
                finally:
                    node.RemoveAllControlPoints()

            self.picker.arm(aimed)
            state.drr_aiming = True

    def tumor_stop(self) -> None:
        if self.server.state.tumor_clicking:
            self.picker.disarm()
            self.server.state.tumor_clicking = False

    def open_on_start(self, ct_paths: Sequence[str] = (), labels_path: str | None = None,
                      sample: str | None = None) -> None:
        """What ``medsynth web`` was given: CTs (the first with ``labels_path``) or a sample scan."""
        if sample:
            self.data.open_sample(sample)
        for index, path in enumerate(ct_paths):
            with self.context.guard():
                self.data.open_files(Path(path), Path(labels_path) if labels_path and index == 0 else None)

    def close(self) -> None:
        """Give MedSynth's scene back (tests that build several apps in one process)."""
        from medsynth.mrml.app import restore_scene

        restore_scene(self.previous_scene)

    # --- page -----------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        from trame.widgets import html, vuetify3 as v3
        from trame_vuetify.ui.vuetify3 import SinglePageWithDrawerLayout

        with SinglePageWithDrawerLayout(self.server, full_height=True) as layout:
            self.ui = layout
            layout.title.set_text("MedSynth")
            layout.root.theme = "dark"
            layout.drawer.width = 440  # the four panel tabs fit without scroll arrows
            with layout.toolbar:
                v3.VSpacer()
                html.Div("{{ status_message }}", classes="text-caption mx-2")
            with layout.drawer:
                with v3.VTabs(v_model=("panel",), density="compact", grow=True):
                    for key in PANELS:
                        v3.VTab(PANEL_TITLES[key], value=key, raw_attrs=[f'data-tab="{key}"'])
                v3.VAlert(text=("error_message",), v_show=("error_message",), type="error", density="compact",
                          closable=True, classes="ma-2", click_close="error_message = ''",
                          raw_attrs=['data-status="error"', ':data-count="error_count"'])
                with v3.VWindow(v_model=("panel",), classes="pa-2"):
                    with v3.VWindowItem(value="data"):
                        self.data.build()
                    with v3.VWindowItem(value="drr"):
                        self.drr.build(self.aim_here)
                    with v3.VWindowItem(value="tumor"):
                        self.tumor.build()
                    with v3.VWindowItem(value="semantic"):
                        self.semantic.build()
            with layout.content:
                with html.Div(style="height: calc(100vh - 64px); width: 100%;", raw_attrs=['data-views="1"']):
                    self.layout_manager.initialize_layout_grid(layout)


def serve(ct_paths: Sequence[str] = (), labels_path: str | None = None, sample: str | None = None,
          host: str = "127.0.0.1", port: int = 8080, output_dir: str | Path = "medsynth_web_output",
          open_browser: bool = False) -> None:
    """Start the server; the given scans open once it is ready (the page shows them as they load)."""
    logging.basicConfig(level=logging.INFO)
    for name in ("trame_server", "trame_client", "wslink", "aiohttp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    app = MedSynthWebApp(output_dir=output_dir)
    app.server.controller.on_server_ready.add(lambda **_: app.open_on_start(ct_paths, labels_path, sample))
    app.server.start(host=host, port=port, open_browser=open_browser, timeout=0)
