"""What a user sees in the 3D view, rendered headlessly: the CT's bones and skin with the C-arm around it.

VTK renders offscreen (EGL/OSMesa), so the README pictures and ``make demo`` come from the same
meshes the module shows in Slicer (``carm_models``). The DRR of a pose can be shown on its
detector, the way a clinician reads it: looking from the detector towards the source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import vtk
from PIL import Image
from vtk.util import numpy_support

from medsynth.geometry import CArm
from medsynth.module_logic.carm_models import DETECTOR_THICKNESS_MM, PART_STYLES, carm_polydata, vtk_matrix
from medsynth.pictures import normalize, save_picture
from medsynth.volume import Volume

#: Iso-surfaces drawn from the CT: (HU level, RGB colour, opacity).
SURFACES = ((-350.0, (0.93, 0.74, 0.62), 0.22), (250.0, (0.96, 0.94, 0.86), 1.0))


def _image_data(array: np.ndarray) -> vtk.vtkImageData:
    """A vtkImageData of a [k, j, i] array in index space (spacing 1, origin 0)."""
    k, j, i = array.shape
    image = vtk.vtkImageData()
    image.SetDimensions(i, j, k)
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True)
    image.GetPointData().SetScalars(scalars)
    return image


def ct_surfaces(ct: Volume, target_voxel_mm: float = 2.5,
                surfaces: Sequence[tuple[float, tuple, float]] = SURFACES) -> list[tuple[vtk.vtkPolyData, tuple, float]]:
    """Skin and bone iso-surfaces of a CT in RAS, computed on a grid of about ``target_voxel_mm``."""
    steps = [max(1, int(round(target_voxel_mm / s))) for s in ct.spacing]  # i, j, k
    array = ct.array[:: steps[2], :: steps[1], :: steps[0]].astype(np.float32)
    array = np.maximum(array, -1024.0)  # scanner padding (-2048 and below) is air
    image = _image_data(array)
    index_to_ras = ct.ijk_to_ras.copy()
    index_to_ras[:3, :3] = ct.ijk_to_ras[:3, :3] * np.array(steps, float)
    transform = vtk.vtkTransform()
    transform.SetMatrix(vtk_matrix(index_to_ras))
    results = []
    for level, color, opacity in surfaces:
        contour = vtk.vtkFlyingEdges3D()
        contour.SetInputData(image)
        contour.SetValue(0, level)
        contour.ComputeNormalsOff()
        to_ras = vtk.vtkTransformPolyDataFilter()
        to_ras.SetInputConnection(contour.GetOutputPort())
        to_ras.SetTransform(transform)
        normals = vtk.vtkPolyDataNormals()
        normals.SetInputConnection(to_ras.GetOutputPort())
        normals.ConsistencyOn()
        normals.Update()
        surface = vtk.vtkPolyData()
        surface.DeepCopy(normals.GetOutput())
        results.append((surface, color, opacity))
    return results


def _actor(polydata, color, opacity, matrix: np.ndarray | None = None, line_width: float = 1.0) -> vtk.vtkActor:
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputData(polydata)
    mapper.ScalarVisibilityOff()
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*color)
    actor.GetProperty().SetOpacity(opacity)
    actor.GetProperty().SetLineWidth(line_width)
    if matrix is not None:
        actor.SetUserMatrix(vtk_matrix(matrix))
    return actor


def _drr_actor(carm: CArm, image: np.ndarray, offset_mm: float = 0.0) -> vtk.vtkActor:
    """The radiograph as a texture on the detector plane (row 0 at the detector's top edge).

    ``offset_mm`` moves it away from the source (onto the back of the detector housing): the image
    is what one sees looking from the detector towards the source, so it reads correctly from behind.
    """
    corners = carm.detector_corners() + offset_mm * carm.beam_direction()  # TL, TR, BR, BL
    plane = vtk.vtkPlaneSource()
    plane.SetOrigin(*corners[3])  # texture (0, 0): bottom-left
    plane.SetPoint1(*corners[2])  # texture (1, 0): bottom-right
    plane.SetPoint2(*corners[0])  # texture (0, 1): top-left
    gray = normalize(image)
    rgb = np.repeat(gray[::-1, :, None], 3, axis=2)  # VTK images start at the bottom row
    texture_image = vtk.vtkImageData()
    texture_image.SetDimensions(rgb.shape[1], rgb.shape[0], 1)
    texture_image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(rgb.reshape(-1, 3), deep=True))
    texture = vtk.vtkTexture()
    texture.SetInputData(texture_image)
    texture.InterpolateOn()
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputConnection(plane.GetOutputPort())
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    actor.SetTexture(texture)
    actor.GetProperty().LightingOff()
    return actor


def render_scene(ct: Volume, carm: CArm, drr: np.ndarray | None = None, size: tuple[int, int] = (640, 480),
                 surfaces: list | None = None, view_direction: Sequence[float] = (1.0, 0.75, -0.55),
                 view_up: Sequence[float] = (0.0, 1.0, 0.0), distance_mm: float = 2300.0) -> np.ndarray:
    """An RGB picture (H, W, 3) of the CT surfaces with the C-arm at ``carm``'s pose.

    ``drr`` (optional, [row, col]) is drawn on the detector. The camera looks at the isocenter from
    ``view_direction`` (RAS: right, anterior, superior); by default from the patient's right, above and
    towards the feet, with anterior up, as one stands beside the table.
    """
    surfaces = surfaces if surfaces is not None else ct_surfaces(ct)
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.16, 0.18, 0.23)  # flat: the pictures stay small as PNG
    for polydata, color, opacity in surfaces:
        renderer.AddActor(_actor(polydata, color, opacity))
    pose = carm.pose_matrix()
    for name, polydata in carm_polydata(carm).items():
        color, opacity = PART_STYLES[name]
        renderer.AddActor(_actor(polydata, color, opacity, pose, line_width=3.0 if name == "central ray" else 1.0))
    if drr is not None:
        renderer.AddActor(_drr_actor(carm, drr, offset_mm=-0.5))
        renderer.AddActor(_drr_actor(carm, drr, offset_mm=DETECTOR_THICKNESS_MM + 0.5))
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(int(size[0]), int(size[1]))
    window.SetMultiSamples(4)
    window.AddRenderer(renderer)
    camera = renderer.GetActiveCamera()
    focus = np.asarray(carm.isocenter, float)
    direction = np.asarray(view_direction, float) / np.linalg.norm(view_direction)
    camera.SetFocalPoint(*focus)
    camera.SetPosition(*(focus + distance_mm * direction))
    camera.SetViewUp(*view_up)
    camera.SetViewAngle(38.0)
    renderer.ResetCameraClippingRange()
    window.Render()
    grabber = vtk.vtkWindowToImageFilter()
    grabber.SetInput(window)
    grabber.ReadFrontBufferOff()
    grabber.Update()
    output = grabber.GetOutput()
    width, height, _ = output.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(output.GetPointData().GetScalars()).reshape(height, width, -1)[..., :3]
    window.Finalize()
    return np.ascontiguousarray(pixels[::-1])


