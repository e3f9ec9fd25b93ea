"""The C-arm in the 3D view: source, detector, central ray, X-ray cone and the C itself.

The meshes are computed with numpy in the *C-arm frame* of ``medsynth.geometry.CArm``
(origin at the isocenter, +x along detector columns, +y along rows, +z towards the source) and
placed in the scene by one linear transform node holding ``carm.pose_matrix()``. Moving the C-arm
only changes that transform; the meshes are rebuilt only when SID, SOD or the detector change.
Moving the transform (its interactive handles) moves the C-arm: ``carm_from_transform`` reads the
pose back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import vtk
from vtk.util import numpy_support

from medsynth.errors import GeometryError
from medsynth.geometry import CArm
from medsynth.geometry.carm import ROOM_FROM_PATIENT
from medsynth.mrml.volumes import matrix_to_world, vtk_matrix

#: Part name -> (RGB colour, opacity) in the 3D view.
PART_STYLES = {
    "source": ((1.0, 0.78, 0.3), 1.0),
    "detector": ((0.45, 0.75, 1.0), 1.0),
    "central ray": ((1.0, 0.35, 0.3), 1.0),
    "x-ray cone": ((1.0, 0.9, 0.5), 0.18),
    "arm": ((0.8, 0.82, 0.86), 1.0),
}

#: Attribute holding the geometry the models were built for (rebuild only when it changes).
GEOMETRY_ATTRIBUTE = "MedSynth.CArm.Geometry"
#: Attribute marking the transform node as a MedSynth C-arm (its value: the CArm as JSON).
CARM_ATTRIBUTE = "MedSynth.CArm"

SOURCE_HOUSING_MM = (160.0, 160.0, 110.0)  # x, y, z size of the tube housing
DETECTOR_THICKNESS_MM = 40.0
DETECTOR_BORDER_MM = 25.0
ARM_THICKNESS_MM = 70.0


# --- numpy meshes (C-arm frame) ------------------------------------------------------------
@dataclass
class Mesh:
    """Triangles (or lines) as numpy arrays: points (N, 3) and cells (M, 2 or 3) of point indices."""

    points: np.ndarray
    cells: np.ndarray
    lines: bool = False
    extra: dict = field(default_factory=dict)


def box_mesh(center, size) -> Mesh:
    """A closed box of 12 triangles."""
    cx, cy, cz = center
    hx, hy, hz = (s / 2.0 for s in size)
    corners = np.array(
        [[cx + sx * hx, cy + sy * hy, cz + sz * hz] for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)]
    )
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    triangles = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return Mesh(corners, np.array(triangles, dtype=np.int64))


def detector_frame_mesh(carm: CArm) -> Mesh:
    """The flat panel: its sensitive area plus a border, behind the detector plane."""
    height, width = carm.detector_size_mm
    z_plane = carm.sod - carm.sid
    center = (0.0, 0.0, z_plane - DETECTOR_THICKNESS_MM / 2.0)
    size = (width + 2 * DETECTOR_BORDER_MM, height + 2 * DETECTOR_BORDER_MM, DETECTOR_THICKNESS_MM)
    return box_mesh(center, size)


def source_mesh(carm: CArm) -> Mesh:
    """The tube housing, with the focal spot on its face towards the patient."""
    sx, sy, sz = SOURCE_HOUSING_MM
    return box_mesh((0.0, 0.0, carm.sod + sz / 2.0), (sx, sy, sz))


def central_ray_mesh(carm: CArm) -> Mesh:
    """A line from the focal spot to the detector centre."""
    return Mesh(np.array([[0.0, 0.0, carm.sod], [0.0, 0.0, carm.sod - carm.sid]]), np.array([[0, 1]]), lines=True)


def xray_cone_mesh(carm: CArm) -> Mesh:
    """The pyramid of rays from the focal spot to the detector's four corners (open at the base)."""
    height, width = carm.detector_size_mm
    z_plane = carm.sod - carm.sid
    corners = np.array(
        [[-width / 2, -height / 2, z_plane], [width / 2, -height / 2, z_plane],
         [width / 2, height / 2, z_plane], [-width / 2, height / 2, z_plane]]
    )
    points = np.vstack([[0.0, 0.0, carm.sod], corners])
    triangles = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]], dtype=np.int64)
    return Mesh(points, triangles)


def arm_mesh(carm: CArm, segments: int = 48, sides: int = 10) -> Mesh:
    """The C: a half ring on the -x side joining the tube housing to the detector's back."""
    source_end = carm.sod + SOURCE_HOUSING_MM[2] / 2.0
    detector_end = carm.sod - carm.sid - DETECTOR_THICKNESS_MM / 2.0
    centre_z = (source_end + detector_end) / 2.0
    radius = (source_end - detector_end) / 2.0
    angles = np.linspace(0.0, math.pi, segments)
    # centre line: from the source end (angle 0) round the -x side to the detector end
    centre_line = np.stack([-radius * np.sin(angles), np.zeros_like(angles), centre_z + radius * np.cos(angles)], 1)
    tangents = np.gradient(centre_line, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    binormal = np.array([0.0, 1.0, 0.0])
    ring = np.linspace(0.0, 2 * math.pi, sides, endpoint=False)
    points = []
    for point, tangent in zip(centre_line, tangents):
        normal = np.cross(binormal, tangent)
        for phi in ring:
            points.append(point + ARM_THICKNESS_MM / 2.0 * (math.cos(phi) * normal + math.sin(phi) * binormal))
    triangles = []
    for s in range(segments - 1):
        for k in range(sides):
            a, b = s * sides + k, s * sides + (k + 1) % sides
            c, d = a + sides, b + sides
            triangles += [(a, c, b), (b, c, d)]
    return Mesh(np.array(points), np.array(triangles, dtype=np.int64))


def carm_meshes(carm: CArm) -> dict[str, Mesh]:
    """Every part of the C-arm in the C-arm frame."""
    carm.validate()
    return {
        "source": source_mesh(carm),
        "detector": detector_frame_mesh(carm),
        "central ray": central_ray_mesh(carm),
        "x-ray cone": xray_cone_mesh(carm),
        "arm": arm_mesh(carm),
    }


# --- VTK polydata ----------------------------------------------------------------------------
def mesh_to_polydata(mesh: Mesh) -> vtk.vtkPolyData:
    """A vtkPolyData holding the mesh's points and triangles (or lines)."""
    points = vtk.vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(mesh.points, dtype=np.float64), deep=True))
    width = mesh.cells.shape[1]
    connectivity = np.hstack([np.full((len(mesh.cells), 1), width, np.int64), mesh.cells]).ravel()
    cells = vtk.vtkCellArray()
    cells.ImportLegacyFormat(numpy_support.numpy_to_vtkIdTypeArray(connectivity, deep=True))
    polydata = vtk.vtkPolyData()
    polydata.SetPoints(points)
    if mesh.lines:
        polydata.SetLines(cells)
    else:
        polydata.SetPolys(cells)
    return polydata


def carm_polydata(carm: CArm) -> dict[str, vtk.vtkPolyData]:
    """Polydata of every part, in the C-arm frame (place them with ``carm.pose_matrix()``)."""
    return {name: mesh_to_polydata(mesh) for name, mesh in carm_meshes(carm).items()}


def _geometry_key(carm: CArm) -> str:
    rows, cols = carm.detector_rows, carm.detector_columns
    return json.dumps([round(carm.sid, 6), round(carm.sod, 6), rows, cols, [round(v, 9) for v in carm.spacing_rc]])


# --- MRML nodes ------------------------------------------------------------------------------
@dataclass
class CArmNodes:
    """The transform node that carries the pose and the model nodes under it."""

    transform: object
    models: dict


def carm_to_json(carm: CArm) -> str:
    data = carm.to_dict()
    keep = ("primary_angle", "secondary_angle", "sid", "sod", "detector_rows", "detector_columns", "pixel_spacing",
            "isocenter", "patient_position", "preset", "primary_range", "secondary_range", "sid_range")
    return json.dumps({key: data[key] for key in keep})


def carm_from_json(text: str) -> CArm:
    return CArm.from_dict(json.loads(text))


def show_carm(carm: CArm, transform_node=None, scene=None) -> CArmNodes:
    """Create or update the C-arm's transform node and models so they show ``carm``.

    The models are children of the transform: moving the transform moves the whole C-arm.
    Everything is created before anything is added, so a failure leaves the scene unchanged.
    """
    from medsynth.mrml.app import get_scene

    scene = scene or get_scene()
    key = _geometry_key(carm)
    polydata = None
    if transform_node is None or transform_node.GetAttribute(GEOMETRY_ATTRIBUTE) != key:
        polydata = carm_polydata(carm)  # may raise GeometryError: nothing added yet
    else:
        carm.validate()
    if transform_node is None:
        transform_node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", scene.GenerateUniqueName("C-arm pose"))
        transform_node.CreateDefaultDisplayNodes()
    models = models_of(transform_node)
    if polydata is not None:
        for name, data in polydata.items():
            model = models.get(name)
            if model is None:
                model = scene.AddNewNodeByClass("vtkMRMLModelNode", scene.GenerateUniqueName(f"C-arm {name}"))
                model.CreateDefaultDisplayNodes()
                model.SetAttribute("MedSynth.CArm.Part", name)
                color, opacity = PART_STYLES[name]
                display = model.GetDisplayNode()
                display.SetColor(*color)
                display.SetOpacity(opacity)
                if name == "central ray":
                    display.SetLineWidth(3)
                display.SetVisibility2D(False)
                model.SetAndObserveTransformNodeID(transform_node.GetID())
                models[name] = model
            model.SetAndObservePolyData(data)
        transform_node.SetAttribute(GEOMETRY_ATTRIBUTE, key)
    transform_node.SetAttribute(CARM_ATTRIBUTE, carm_to_json(carm))
    transform_node.SetMatrixTransformToParent(vtk_matrix(carm.pose_matrix()))
    return CArmNodes(transform_node, models)


def models_of(transform_node) -> dict:
    """The C-arm model nodes observing ``transform_node``, by part name."""
    scene = transform_node.GetScene()
    found = {}
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLModelNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLModelNode")
        part = node.GetAttribute("MedSynth.CArm.Part")
        if part and node.GetTransformNodeID() == transform_node.GetID():
            found[part] = node
    return found


def remove_carm(transform_node) -> None:
    """Remove the C-arm models and their transform node."""
    scene = transform_node.GetScene()
    for model in models_of(transform_node).values():
        scene.RemoveNode(model)
    scene.RemoveNode(transform_node)


def carm_from_transform(transform_node, like: CArm | None = None, snap: bool = True) -> CArm:
    """The C-arm pose a transform node holds (its matrix to world, parent transforms included).

    A C-arm cannot roll about its beam: with ``snap`` a transform with a roll (from dragging the
    rotation handles freely) gives the pose with the same beam direction and isocenter; without
    it the roll raises GeometryError.
    """
    if like is None:
        text = transform_node.GetAttribute(CARM_ATTRIBUTE)
        like = carm_from_json(text) if text else CArm()
    matrix = matrix_to_world(transform_node)
    try:
        return CArm.from_pose_matrix(matrix, like)
    except GeometryError:
        if not snap:
            raise
    rotation = matrix[:3, :3]
    scale = np.cbrt(np.linalg.det(rotation)) if np.linalg.det(rotation) > 0 else 0.0
    if scale <= 0:
        raise GeometryError(
            "The C-arm transform mirrors or collapses space; reset it (Transforms module, Identity) and move "
            "the C-arm with its angle sliders."
        )
    beam_to_source = rotation[:, 2] / np.linalg.norm(rotation[:, 2])  # the C-arm frame's +z
    return beam_aligned_carm(beam_to_source, matrix[:3, 3], like)


def beam_aligned_carm(towards_source: np.ndarray, isocenter: np.ndarray, like: CArm) -> CArm:
    """The C-arm whose frame's +z axis (detector -> source) points along ``towards_source`` (RAS).

    Solves the gantry angles of ``medsynth.geometry.CArm`` (R = Rz(primary) Rx(secondary) B in the
    room frame, B's +z pointing posterior): z_room = (sin a cos b, -cos a cos b, -sin b).
    """
    like.validate()  # also rejects an unknown patient position
    z = ROOM_FROM_PATIENT[like.patient_position] @ (np.asarray(towards_source, float) / np.linalg.norm(towards_source))
    secondary = -math.degrees(math.asin(max(-1.0, min(1.0, z[2]))))
    primary = math.degrees(math.atan2(z[0], -z[1])) if math.hypot(z[0], z[1]) > 1e-9 else like.primary_angle
    return like.replace(primary_angle=primary, secondary_angle=secondary, isocenter=tuple(float(v) for v in isocenter))
