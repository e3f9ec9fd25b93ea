"""The MRML bridge on Slicer's real MRML classes (slicer-core): volumes, segmentations, markups."""

import numpy as np
import pytest

from medsynth import mrml
from medsynth.errors import InputError
from medsynth.volume import LabelMap, LabelTable


def test_ct_into_a_volume_node_and_back(mrml_scene, lidc_ct):
    node = mrml.volume_to_node(lidc_ct, name="LIDC")
    assert node.GetScene() is mrml_scene
    back = mrml.node_to_volume(node)
    np.testing.assert_array_equal(back.array, lidc_ct.array)
    np.testing.assert_allclose(back.ijk_to_ras, lidc_ct.ijk_to_ras, atol=1e-9)
    assert back.metadata.units == "HU"
    mrml_scene.RemoveNode(node)


def test_parent_transform_is_applied(mrml_scene):
    volume = LabelMap(np.ones((2, 3, 4), np.int32))
    node = mrml.volume_to_node(volume, name="moved")
    transform = mrml_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    import vtk

    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 25.0)
    transform.SetMatrixTransformToParent(matrix)
    node.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(mrml.node_to_volume(node).origin, [25.0, 0, 0])
    mrml_scene.RemoveNode(node)
    mrml_scene.RemoveNode(transform)


def upper_abdomen_slab(labels: LabelMap) -> LabelMap:
    """20 axial slices through the liver and spleen: real labels, a fraction of the conversion time."""
    k = int(np.argmax(labels.mask("liver").sum(axis=(1, 2))))
    ijk_to_ras = labels.ijk_to_ras.copy()
    ijk_to_ras[:3, 3] = labels.ijk_to_ras_points([0, 0, k - 10])
    return LabelMap(labels.array[k - 10:k + 10].copy(), ijk_to_ras, labels.metadata, labels.table)


def test_label_map_into_a_segmentation_and_back(mrml_scene, lidc_labels, tmp_path):
    slab = upper_abdomen_slab(lidc_labels)
    segmentation = mrml.labelmap_to_segmentation(slab, name="TotalSegmentator")
    names = set(mrml.segment_names(segmentation).values())
    assert {"liver", "spleen", "aorta"} <= names
    assert len(names) == len(slab.present_labels())
    back = mrml.segmentation_to_labelmap(segmentation, slab, table=slab.table)
    np.testing.assert_array_equal(back.array, slab.array)
    # written as .seg.nrrd and read again
    path = tmp_path / "labels.seg.nrrd"
    mrml.save_node(segmentation, path)
    reread = mrml.module_logic("Segmentations").LoadSegmentationFromFile(str(path), False)
    again = mrml.segmentation_to_labelmap(reread, slab, table=slab.table)
    np.testing.assert_array_equal(again.array, slab.array)
    for node in (segmentation, reread):
        mrml_scene.RemoveNode(node)


def test_segments_unknown_to_the_table_are_reported(mrml_scene, lidc_labels):
    small = LabelMap(np.array([[[0, 1], [2, 2]]], np.int32), table=LabelTable({1: "liver", 2: "tumor"}))
    segmentation = mrml.labelmap_to_segmentation(small)
    with pytest.raises(InputError, match="tumor"):
        mrml.segmentation_to_labelmap(segmentation, small, table=LabelTable({1: "liver"}))
    default = mrml.segmentation_to_labelmap(segmentation, small)
    assert default.table.names == {1: "liver", 2: "tumor"}
    np.testing.assert_array_equal(default.array, small.array)
    mrml_scene.RemoveNode(segmentation)


def test_markups_round_trip_and_file(mrml_scene, tmp_path):
    points = np.array([[1.5, -2.0, 30.25], [0.0, 0.0, 0.0]])
    node = mrml.markups_from_points(points, labels=["tip", "origin"])
    np.testing.assert_allclose(mrml.points_from_markups(node), points)
    mrml.save_node(node, tmp_path / "points.mrk.json")
    assert '"tip"' in (tmp_path / "points.mrk.json").read_text()
    mrml_scene.RemoveNode(node)


def test_empty_inputs_are_clear_errors(mrml_scene):
    with pytest.raises(InputError, match="No volume selected"):
        mrml.node_to_volume(None)
    empty = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="no image data"):
        mrml.node_to_volume(empty)
    segmentation = mrml_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    with pytest.raises(InputError, match="segmentation is empty"):
        mrml.segmentation_to_labelmap(segmentation, LabelMap(np.zeros((1, 1, 1), np.int32)))
    mrml_scene.RemoveNode(empty)
    mrml_scene.RemoveNode(segmentation)


def test_load_volume_node_through_the_volumes_logic(lidc_dir, mrml_scene):
    node = mrml.load_volume_node(str(lidc_dir / "ct.nii.gz"), name="fromfile")
    volume = mrml.node_to_volume(node)
    assert volume.array.shape == (133, 512, 512)
    mrml_scene.RemoveNode(node)
