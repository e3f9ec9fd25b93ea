"""Clicks in the slice views as RAS points, for "paint a tumor here" and "aim the C-arm here".

A click (left press and release within a few pixels) is read from the view's VTK interactor and
mapped through the slice node's XY -> RAS matrix, as Slicer maps slice view pixels. Unlike
markups place mode there is no point preview following the mouse, so moving the mouse over the
views costs no frames (each slice view frame with a full segmentation is ~100 ms here).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

POINT_LIST_NAME = "MedSynth clicks"
#: A press and release farther apart than this (pixels) is a drag (window/level), not a click.
CLICK_TOLERANCE_PX = 3


def slice_xy_to_ras(slice_node, x: float, y: float) -> np.ndarray:
    """The RAS point (mm) under pixel (x, y) of a slice view (VTK display coordinates, origin bottom left)."""
    return np.array(slice_node.GetXYToRAS().MultiplyPoint([float(x), float(y), 0.0, 1.0])[:3])


class PointPicker:
    """Arms click mode on the slice views; each click is handed to the waiting callback."""

    def __init__(self, context) -> None:
        self.context = context
        self.node = None  # a hidden point list holding the last click (DRRLogic.aim_at_point reads markups)
        self.last_ras = None
        self.last_view = None  # the slice view clicked last
        self._callback: Callable | None = None
        self._persistent = False
        self._observed: dict = {}  # view -> (interactor, observer tags)
        self._press: tuple | None = None

    def arm(self, callback: Callable, persistent: bool = False) -> None:
        """The next click (every click, when persistent) calls ``callback(ras)`` (RAS mm)."""
        self._callback, self._persistent = callback, persistent
        for view in self.context.slice_views():
            if view not in self._observed:
                interactor = view.interactor()
                tags = (interactor.AddObserver("LeftButtonPressEvent", lambda obj, event, v=view: self._pressed(v), 1.0),
                        interactor.AddObserver("LeftButtonReleaseEvent", lambda obj, event, v=view: self._released(v),
                                               1.0))
                self._observed[view] = (interactor, tags)

    def disarm(self) -> None:
        self._callback = None
        for interactor, tags in self._observed.values():
            for tag in tags:
                interactor.RemoveObserver(tag)
        self._observed.clear()

    def _pressed(self, view) -> None:
        self._press = (view, view.interactor().GetEventPosition())

    def _released(self, view) -> None:
        press, self._press = self._press, None
        if press is None or press[0] is not view or self._callback is None:
            return
        x, y = view.interactor().GetEventPosition()
        if max(abs(x - press[1][0]), abs(y - press[1][1])) > CLICK_TOLERANCE_PX:
            return
        ras = slice_xy_to_ras(view.get_view_node(), x, y)
        self.last_ras, self.last_view = ras, view
        callback = self._callback
        if not self._persistent:
            self.disarm()
        callback(ras)

    def as_markups(self, ras):
        """A hidden point list holding ``ras`` (for logic that reads markups); empty it after use."""
        node = self._point_list()
        node.RemoveAllControlPoints()
        node.AddControlPoint([float(v) for v in ras], "click")
        return node

    def _point_list(self):
        scene = self.context.scene
        if self.node is None or self.node.GetScene() is None:
            self.node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", POINT_LIST_NAME)
            self.node.CreateDefaultDisplayNodes()
            self.node.GetDisplayNode().SetVisibility(False)
            self.node.SetHideFromEditors(True)
        return self.node
