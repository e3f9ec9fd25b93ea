"""Open a case: a CT file (and its label map) -> a CT volume node (and a segmentation node), all or nothing.

Everything is read and checked before a node is added (a volume that is not a CT in HU, labels
on another grid), so a bad file leaves the scene as it was. Used by the web app's Data panel;
sample cases come from the data catalog (``medsynth.data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medsynth.errors import InputError
from medsynth.mrml.app import get_scene
from medsynth.mrml.transactions import SceneChanges


@dataclass(frozen=True)
class SampleCase:
    """A fetched scan offered as a sample: dataset, CT file and (optional) labels with their names."""

    title: str
    dataset: str
    ct: str
    labels: str = ""
    table: str = ""  # "dataset/file" of the label names (TotalSegmentator v2 ids)


SAMPLE_CASES = {
    "lidc": SampleCase("LIDC-IDRI-0001 chest CT with TotalSegmentator labels", "lidc", "ct.nii.gz",
                       "labels.nii.gz", "lidc/structures.csv"),
    "totalseg_small": SampleCase("TotalSegmentator small upper-abdomen CT with labels", "totalseg", "ct_sm.nii.gz",
                                 "seg_sm.nii.gz", "lidc/structures.csv"),
    "totalseg_abdomen": SampleCase("TotalSegmentator abdomen-pelvis CT (no labels)", "totalseg", "ct_abdomen.nii.gz"),
}


@dataclass
class OpenedCase:
    """The nodes a case was loaded into, and the label map read from disk (what the segmentation holds)."""

    ct_node: object
    segmentation_node: object = None
    labels: object = None  # LabelMap, or None


def sample_files(name: str) -> tuple[Path, Path | None, Path | None]:
    """(CT, labels, label names) paths of a sample case, fetching its dataset if needed."""
    from medsynth.data import fetch

    if name not in SAMPLE_CASES:
        raise InputError(f"Unknown sample {name!r}: choose one of {', '.join(SAMPLE_CASES)}.")
    case = SAMPLE_CASES[name]
    folder = fetch(case.dataset)
    table = None
    if case.table:
        dataset, file = case.table.split("/", 1)
        table = fetch(dataset) / file
    return folder / case.ct, folder / case.labels if case.labels else None, table


def read_case(ct_path, labels_path=None, table_path=None):
    """(CT Volume in HU, LabelMap or None), checked: a CT in HU, labels on the CT's grid."""
    from medsynth.io import read_labelmap, read_volume

    ct = read_volume(ct_path)
    if ct.array.ndim != 3 or min(ct.array.shape) < 2:
        raise InputError(f"{Path(ct_path).name} holds a {ct.array.ndim}D image of shape {ct.array.shape}, not a CT "
                         "volume. Open a 3D CT (DICOM series, NIfTI or NRRD).")
    if not ct.metadata.modality:
        ct.metadata.modality = "CT"
    ct.require_hu()
    ct.metadata.units = "HU"
    labels = None
    if labels_path:
        labels = read_labelmap(labels_path, table_path)
        ct.require_same_grid(labels, "label map")
    return ct, labels


def shared_labelmap_segmentation(labels, node) -> None:
    """Fill a segmentation node with one segment per label, all in one shared labelmap layer.

    Slicer's own storage for label maps: the voxels are copied once and each segment is a label
    value, which is 20x faster than importing label by label (89 TotalSegmentator labels: 0.3 s
    instead of 5 s) and exports to the same label map.
    """
    import numpy as np
    import slicer
    import vtk
    from vtk.util import numpy_support

    from medsynth.mrml.volumes import vtk_matrix

    values = [int(v) for v in labels.present_labels()]
    if not values:
        raise InputError("The label map is empty (no label above 0). Open the label map that goes with this CT.")
    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(vtk_matrix(labels.ijk_to_ras))
    slices, rows, columns = labels.array.shape
    image.SetExtent(0, columns - 1, 0, rows - 1, 0, slices - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR if max(values) < 256 else vtk.VTK_SHORT, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = np.ascontiguousarray(labels.array).ravel()
    segmentation = node.GetSegmentation()
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    segmentation.SetSourceRepresentationName(representation)
    palette = np.random.default_rng(0).uniform(0.2, 1.0, (max(values) + 1, 3))
    for value in values:
        segment = slicer.vtkSegment()
        segment.SetName(labels.table.name(value))
        segment.SetLabelValue(value)
        segment.SetColor(*palette[value])
        segment.AddRepresentation(representation, image)
        segmentation.AddSegment(segment, "")


def load_case(ct_path, labels_path=None, table_path=None, name: str | None = None) -> OpenedCase:
    """The CT (and segmentation) nodes of a case in the scene; nothing is added when anything fails."""
    from medsynth.mrml.volumes import volume_to_node

    ct, labels = read_case(ct_path, labels_path, table_path)
    name = name or Path(ct_path).name.split(".")[0]
    scene = get_scene()
    with SceneChanges(scene) as changes:
        ct_node = changes.add("vtkMRMLScalarVolumeNode", name)
        ct_node.CreateDefaultDisplayNodes()
        volume_to_node(ct, node=ct_node)
        segmentation_node = None
        if labels is not None:
            segmentation_node = changes.add("vtkMRMLSegmentationNode", f"{name} segmentation")
            segmentation_node.CreateDefaultDisplayNodes()
            segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
            shared_labelmap_segmentation(labels, segmentation_node)
    return OpenedCase(ct_node, segmentation_node, labels)


def load_segmentation(ct_node, labels_path, table_path=None, name: str | None = None) -> OpenedCase:
    """A label map file as a new segmentation node of an open CT (checked on the CT's grid first)."""
    from medsynth.io import read_labelmap
    from medsynth.mrml.volumes import node_to_volume

    if ct_node is None:
        raise InputError("Open the CT first, then its label map: the label map must lie on the CT's voxel grid.")
    labels = read_labelmap(labels_path, table_path)
    node_to_volume(ct_node).require_same_grid(labels, "label map")
    name = name or Path(labels_path).name.split(".")[0]
    with SceneChanges(get_scene()) as changes:
        segmentation_node = changes.add("vtkMRMLSegmentationNode", name)
        segmentation_node.CreateDefaultDisplayNodes()
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
        shared_labelmap_segmentation(labels, segmentation_node)
    return OpenedCase(ct_node, segmentation_node, labels)
