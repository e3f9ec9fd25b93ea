"""TumorSynthesis's MRML logic on real MRML (slicer-core) with LIDC-IDRI-0001 and its TotalSegmentator liver."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from medsynth.errors import InputError

pytest.importorskip("slicer")

LIVER = 5


@pytest.fixture(scope="module")
def scene_nodes(mrml_scene, lidc_ct, lidc_labels):
    import slicer

    from medsynth.mrml import labelmap_to_segmentation, volume_to_node
    from medsynth.volume import LabelMap, LabelTable

    ct_node = volume_to_node(lidc_ct, name="LIDC-IDRI-0001")
    liver = LabelMap(lidc_labels.mask(LIVER).astype(np.uint8), lidc_labels.ijk_to_ras, table=LabelTable({1: "liver"}))
    segmentation = labelmap_to_segmentation(liver, name="TotalSegmentator")
    yield ct_node, segmentation
    for node in (ct_node, segmentation):
        slicer.mrmlScene.RemoveNode(node)


@pytest.fixture(scope="module")
def deep_point(lidc_ct, lidc_labels):
    from medsynth.tumor import LiverContext

    depth, starts, strides = LiverContext(lidc_ct, lidc_labels, LIVER).depth_map()
    cell = np.array(np.unravel_index(np.argmax(depth), depth.shape))
    return lidc_ct.ijk_to_ras_points((starts + cell * strides)[::-1].astype(float))


@pytest.fixture()
def logic():
    from medsynth.module_logic.tumor import TumorLogic

    return TumorLogic()


def ct_array(node) -> np.ndarray:
    import slicer

    return slicer.util.arrayFromVolume(node)


def test_click_inside_the_liver_adds_a_tumor_segment_inside_it_and_undo_is_exact(
        scene_nodes, logic, deep_point, lidc_ct, lidc_labels):
    from medsynth.mrml import segment_names
    from medsynth.tumor.parameters import TumorParameters

    ct_node, segmentation = scene_nodes
    before = ct_array(ct_node).copy()
    names_before = sorted(segment_names(segmentation).values())
    liver_id = logic.find_organ_segment(segmentation, "liver")
    assert liver_id

    tumors = logic.insert_tumor_at(ct_node, segmentation, liver_id, deep_point, TumorParameters(tumor_type="medium", seed=3))
    assert len(tumors) == 1
    tumor_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor")
    assert tumor_id
    tumor_mask = logic.segment_mask(segmentation, tumor_id, lidc_ct)
    assert tumor_mask.sum() == tumors[0].voxels > 1000
    assert np.all(lidc_labels.mask(LIVER)[tumor_mask])  # the tumor lies inside the liver

    changed = ct_array(ct_node) != before
    (i0, j0, k0), (i1, j1, k1) = tumors[0].box_ijk
    outside = changed.copy()
    outside[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1] = False
    assert changed.any() and not outside.any()  # the CT changed only within the tumor's box

    assert logic.undo()
    assert np.array_equal(ct_array(ct_node), before)  # bit-exact
    assert sorted(segment_names(segmentation).values()) == names_before
    assert not logic.undo()


def test_click_outside_the_liver_gives_a_clear_error_and_changes_nothing(scene_nodes, logic, lidc_ct):
    from medsynth.mrml import segment_names
    from medsynth.tumor.parameters import TumorParameters

    ct_node, segmentation = scene_nodes
    before = ct_array(ct_node).copy()
    names_before = segment_names(segmentation)
    lung = lidc_ct.ijk_to_ras_points([350.0, 250.0, 100.0])
    with pytest.raises(InputError, match="outside the liver"):
        logic.insert_tumor_at(ct_node, segmentation, None, lung, TumorParameters(tumor_type="small", seed=0))
    assert np.array_equal(ct_array(ct_node), before)
    assert segment_names(segmentation) == names_before
    assert not logic.can_undo


def test_two_clicks_one_segment_each_and_step_by_step_undo(scene_nodes, logic, deep_point, lidc_ct):
    from medsynth.mrml import segment_names
    from medsynth.tumor.parameters import TumorParameters

    ct_node, segmentation = scene_nodes
    before = ct_array(ct_node).copy()
    first = logic.insert_tumor_at(ct_node, segmentation, None, deep_point, TumorParameters(tumor_type="small", seed=1),
                                  one_segment=False)
    after_first = ct_array(ct_node).copy()
    second_point = np.array(deep_point) + [25.0, 0.0, 0.0]
    logic.insert_tumor_at(ct_node, segmentation, None, second_point, TumorParameters(tumor_type="tiny", seed=1), one_segment=False)
    names = sorted(segment_names(segmentation).values())
    assert "Tumor 1" in names and "Tumor 2" in names
    mask_1 = logic.segment_mask(segmentation, segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor 1"),
                                lidc_ct)
    assert mask_1.sum() == first[0].voxels
    assert logic.undo()
    assert np.array_equal(ct_array(ct_node), after_first)
    assert "Tumor 2" not in segment_names(segmentation).values()
    assert logic.undo()
    assert np.array_equal(ct_array(ct_node), before)
    assert "Tumor 1" not in segment_names(segmentation).values()


def test_undo_restores_a_shared_tumor_segment_exactly(scene_nodes, logic, deep_point, lidc_ct):
    from medsynth.tumor.parameters import TumorParameters

    ct_node, segmentation = scene_nodes
    logic.insert_tumor_at(ct_node, segmentation, None, deep_point, TumorParameters(tumor_type="small", seed=2))
    tumor_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor")
    first = logic.segment_mask(segmentation, tumor_id, lidc_ct)
    ct_first = ct_array(ct_node).copy()
    second = logic.insert_tumor_at(ct_node, segmentation, None, np.array(deep_point) + [25.0, 0.0, 0.0],
                                   TumorParameters(tumor_type="tiny", seed=2))
    both = logic.segment_mask(segmentation, tumor_id, lidc_ct)
    assert both.sum() == first.sum() + second[0].voxels  # one "Tumor" segment holds both
    assert logic.undo()
    assert np.array_equal(logic.segment_mask(segmentation, tumor_id, lidc_ct), first)
    assert np.array_equal(ct_array(ct_node), ct_first)
    assert logic.undo()
    assert segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor") == ""


def test_output_volume_leaves_the_ct_untouched_and_random_tumors_fill_one_segment(scene_nodes, logic):
    import slicer

    from medsynth.module_logic.tumor import describe
    from medsynth.tumor.parameters import TumorParameters

    ct_node, segmentation = scene_nodes
    before = ct_array(ct_node).copy()
    output = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT with tumors")
    progress = []
    tumors = logic.insert_random_tumors(ct_node, segmentation, None, TumorParameters(tumor_type="small", count=3, seed=5),
                                        output_node=output, progress=lambda f, m: progress.append(f))
    assert len(tumors) == 3 and progress[-1] == 1.0
    assert np.array_equal(ct_array(ct_node), before)
    assert not np.array_equal(ct_array(output), before)
    assert "contrast" in describe(tumors)
    assert logic.undo()
    assert np.array_equal(ct_array(output), before)
    slicer.mrmlScene.RemoveNode(output)


def test_missing_or_empty_liver_segment_gives_clear_errors(scene_nodes, logic, lidc_ct):
    import slicer

    from medsynth.tumor.parameters import TumorParameters

    ct_node, _ = scene_nodes
    empty = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    empty.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
    with pytest.raises(InputError, match="No liver segment"):
        logic.insert_tumor_at(ct_node, empty, None, lidc_ct.center_ras, TumorParameters(tumor_type="small", seed=0))
    segment_id = empty.GetSegmentation().AddEmptySegment("", "liver")
    with pytest.raises(InputError, match="empty"):
        logic.insert_tumor_at(ct_node, empty, segment_id, lidc_ct.center_ras, TumorParameters(tumor_type="small", seed=0))
    with pytest.raises(InputError, match="No segmentation"):
        logic.insert_tumor_at(ct_node, None, None, lidc_ct.center_ras, TumorParameters(tumor_type="small", seed=0))
    with pytest.raises(InputError, match="No CT"):
        logic.insert_tumor_at(None, empty, None, lidc_ct.center_ras, TumorParameters(tumor_type="small", seed=0))
    slicer.mrmlScene.RemoveNode(empty)


def test_batch_script_runs_with_plain_python():
    from conftest import REPO_ROOT

    script = REPO_ROOT / "TumorSynthesis" / "Batch" / "TumorSynthesisBatch.py"
    result = subprocess.run([sys.executable, str(script), "--self-test"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "self-test passed" in result.stdout
    bad = subprocess.run([sys.executable, str(script), "--out", "/nonexistent"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--liver-mask" in bad.stderr


def test_click_to_paint_on_the_pancreas_segment(mrml_scene, lidc_ct, lidc_labels):
    """The organ travels from the parameters to the engine: a pancreas segment takes a pancreatic tumor."""
    import slicer

    from medsynth.mrml import labelmap_to_segmentation, volume_to_node
    from medsynth.module_logic.tumor import TumorLogic
    from medsynth.tumor import OrganContext
    from medsynth.tumor.parameters import TumorParameters
    from medsynth.volume import LabelMap, LabelTable

    pancreas = lidc_labels.array == 7
    ct_node = volume_to_node(lidc_ct, name="LIDC pancreas")
    segmentation = labelmap_to_segmentation(
        LabelMap(np.where(pancreas, 1, np.where(lidc_labels.array == 5, 2, 0)).astype(np.uint8), lidc_labels.ijk_to_ras,
                 table=LabelTable({1: "pancreas", 2: "liver"})), name="TotalSegmentator")
    try:
        logic = TumorLogic()
        segment_id = logic.find_organ_segment(segmentation, "pancreas")
        assert segmentation.GetSegmentation().GetSegment(segment_id).GetName() == "pancreas"
        depth, starts, strides = OrganContext(lidc_ct, pancreas, organ="pancreas").depth_map()
        cell = np.array(np.unravel_index(np.argmax(depth), depth.shape))
        point = lidc_ct.ijk_to_ras_points((starts + cell * strides)[::-1].astype(float))
        before = ct_array(ct_node).copy()
        parameters = TumorParameters(organ="pancreas", tumor_type="tiny", seed=4, contrast_phase="arterial")
        tumors = logic.insert_tumor_at(ct_node, segmentation, segment_id, point, parameters)
        assert len(tumors) == 1 and tumors[0].look["organ"] == "pancreas" and tumors[0].look["phase"] == "arterial"
        tumor_id = segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor")
        mask = logic.segment_mask(segmentation, tumor_id, lidc_ct)
        assert mask.sum() == tumors[0].voxels and np.all(pancreas[mask])
        changed = ct_array(ct_node) != before
        assert changed.any() and not np.any(changed & ~pancreas)
        with pytest.raises(InputError, match="outside the pancreas"):
            logic.insert_tumor_at(ct_node, segmentation, segment_id, lidc_ct.center_ras, parameters)
        assert logic.undo() and np.array_equal(ct_array(ct_node), before)
    finally:
        for node in (ct_node, segmentation):
            slicer.mrmlScene.RemoveNode(node)
