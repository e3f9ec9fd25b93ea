"""Clicks in the slice views as points: Slicer's own markups place mode, one point list for the page.

A click is turned into RAS by the markups displayable manager (as in Slicer), so a tumor is
centred and the C-arm aimed exactly where the user clicked, whatever the slice orientation.
"""

from __future__ import annotations

from typing import Callable

from medsynth.mrml.markups import points_from_markups

POINT_LIST_NAME = "MedSynth clicks"


class PointPicker:
    """Arms place mode; each placed point is handed to the waiting callback, then removed."""

    def __init__(self, slicer_app) -> None:
        self.slicer_app = slicer_app
        self.node = None
        self._callback: Callable | None = None
        self._persistent = False
        self.last_ras = None  # the last clicked point (RAS mm)

    def _point_list(self):
        import slicer

        scene = self.slicer_app.scene
        if self.node is None or self.node.GetScene() is None:
            self.node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", POINT_LIST_NAME)
            self.node.CreateDefaultDisplayNodes()
            self.node.SetAttribute("MedSynth.Web.Clicks", "1")
            self.node.AddObserver(slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._on_point)
        return self.node

    def arm(self, callback: Callable, persistent: bool = False) -> None:
        """The next click (every click, when persistent) calls ``callback(ras, markups_node, index)``."""
        self._callback, self._persistent = callback, persistent
        self.slicer_app.markups_logic.place_node(self._point_list(), persistent=persistent)

    def disarm(self) -> None:
        self._callback = None
        self.slicer_app.markups_logic.disable_place_mode()

    def _on_point(self, node, _event) -> None:
        index = node.GetNumberOfControlPoints() - 1
        callback = self._callback
        if index < 0:
            return
        ras = points_from_markups(node)[index]
        self.last_ras = ras
        try:
            if callback is not None:
                callback(ras, node, index)
        finally:
            node.RemoveAllControlPoints()
            if not self._persistent:
                self.disarm()
