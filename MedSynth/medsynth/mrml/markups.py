"""Markups control points <-> (N, 3) RAS arrays."""

from __future__ import annotations

import numpy as np

from medsynth.mrml.app import get_scene


def points_from_markups(node) -> np.ndarray:
    """World (RAS) positions of all control points, shape (N, 3); parent transforms applied."""
    points = np.zeros((node.GetNumberOfControlPoints(), 3))
    for index in range(len(points)):
        node.GetNthControlPointPositionWorld(index, points[index])
    return points


def markups_from_points(points: np.ndarray, name: str = "Points", node=None, labels: list[str] | None = None):
    """A point list node (new or given, emptied first) holding ``points`` (N, 3) in RAS."""
    scene = get_scene()
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", scene.GenerateUniqueName(name))
        node.CreateDefaultDisplayNodes()
    node.RemoveAllControlPoints()
    for index, point in enumerate(np.asarray(points, dtype=float).reshape(-1, 3)):
        position = [float(v) for v in point]
        label = labels[index] if labels else ""
        node.AddControlPoint(position, label)
    return node
