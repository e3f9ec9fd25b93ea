"""Volume <-> scalar volume node, and loading/saving nodes through storage nodes.

``slicer.util.loadVolume``/``saveNode`` need the Slicer application; storage nodes work both
inside Slicer and with ``slicer-core`` alone, so they are used here.
"""

from __future__ import annotations

import numpy as np
import slicer
import vtk

from medsynth.errors import InputError
from medsynth.mrml.app import get_scene, module_logic
from medsynth.volume import LabelMap, LabelTable, Volume, VolumeMetadata


def vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    """A vtkMatrix4x4 holding a 4x4 numpy matrix."""
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


def numpy_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    """A 4x4 numpy array holding a vtkMatrix4x4."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def ijk_to_ras_matrix(node) -> np.ndarray:
    """A volume node's own IJK->RAS matrix (parent transforms not applied)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return numpy_matrix(matrix)


def matrix_to_world(transform_node) -> np.ndarray:
    """A linear transform node's matrix to world, its parent transforms included."""
    matrix = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformToWorld(matrix)
    return numpy_matrix(matrix)


def volume_to_node(volume: Volume, node=None, name: str = "Volume", label: bool = False):
    """Put a Volume into a (new or given) scalar volume node: voxels copied, IJK->RAS kept exactly."""
    scene = get_scene()
    if node is None:
        class_name = "vtkMRMLLabelMapVolumeNode" if label else "vtkMRMLScalarVolumeNode"
        node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(name))
        node.CreateDefaultDisplayNodes()
    node.SetIJKToRASMatrix(vtk_matrix(volume.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(volume.array))
    if volume.metadata.units == "HU":
        node.SetAttribute("MedSynth.Units", "HU")
    if volume.metadata.modality:
        node.SetAttribute("DICOM.Modality", volume.metadata.modality)
    return node


def node_to_volume(node) -> Volume:
    """A Volume holding a copy of a scalar volume node's voxels and geometry.

    Parent transforms are not applied: harden them in Slicer first (the error says so).
    """
    if node is None:
        raise InputError("No volume selected. Choose a CT volume node.")
    if node.GetImageData() is None:
        raise InputError(f"Volume node '{node.GetName()}' holds no image data. Load a volume into it.")
    if node.GetParentTransformNode() is not None and not node.GetParentTransformNode().IsLinear():
        raise InputError(
            f"Volume '{node.GetName()}' is under a non-linear transform: harden the transform first "
            "(Data module, right-click, Harden transform)."
        )
    ijk_to_ras = ijk_to_ras_matrix(node)
    if node.GetParentTransformNode() is not None:
        ijk_to_ras = matrix_to_world(node.GetParentTransformNode()) @ ijk_to_ras
    array = np.array(slicer.util.arrayFromVolume(node), copy=True)
    modality = node.GetAttribute("DICOM.Modality")
    units = node.GetAttribute("MedSynth.Units")
    metadata = VolumeMetadata(modality=modality, units=units, source=node.GetName())
    return Volume(array, ijk_to_ras, metadata)


def load_volume_node(path: str, name: str | None = None, label: bool = False):
    """Load a volume file into the scene through the Volumes logic (works with and without Slicer)."""
    logic = module_logic("Volumes")
    node = logic.AddArchetypeVolume(str(path), name or "Volume", 1 if label else 0)
    if node is None:
        raise InputError(f"Slicer could not load {path} as a volume.")
    return node


def save_node(node, path: str) -> None:
    """Write a node with its default storage node (NRRD, NIfTI, .seg.nrrd, .mrk.json by extension)."""
    storage = node.GetStorageNode() or node.CreateDefaultStorageNode()
    if node.GetStorageNode() is None:
        get_scene().AddNode(storage)
        node.SetAndObserveStorageNodeID(storage.GetID())
    storage.SetFileName(str(path))
    if not storage.WriteData(node):
        raise InputError(f"Could not write '{node.GetName()}' to {path}.")


def labelmap_to_node(labels: LabelMap, name: str = "Labels"):
    """A label map volume node with a color table naming its labels."""
    node = volume_to_node(labels, name=name, label=True)
    node.GetDisplayNode().SetAndObserveColorNodeID(color_table_node(labels.table, labels.present_labels()).GetID())
    return node


def color_table_node(table: LabelTable, values: list[int]):
    """A color table node naming ``values`` from ``table`` (Slicer takes segment names from it)."""
    scene = get_scene()
    colors = scene.AddNewNodeByClass("vtkMRMLColorTableNode", scene.GenerateUniqueName("MedSynthLabels"))
    colors.SetTypeToUser()
    colors.SetHideFromEditors(True)
    values = list(values) + [0]
    colors.SetNumberOfColors(max(values) + 1)
    colors.GetLookupTable().SetTableRange(0, max(values))
    palette = np.random.default_rng(0).uniform(0.2, 1.0, (max(values) + 1, 3))
    for value in range(max(values) + 1):
        name = "background" if value == 0 else table.name(value)
        alpha = 0.0 if value == 0 else 1.0
        colors.SetColor(value, name, *palette[value], alpha)
    return colors
