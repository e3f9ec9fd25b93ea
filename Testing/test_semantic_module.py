"""SemanticSynthesis on real MRML (slicer-core): LIDC segmentation -> demo GAN -> CT node; batch script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medsynth.errors import CancelledError, InputError

ROOT = Path(__file__).resolve().parents[1]
BATCH = ROOT / "SemanticSynthesis" / "Batch" / "SemanticSynthesisBatch.py"
LUNG = list(range(10, 15))
BONE = list(range(25, 51)) + list(range(92, 118))
SOFT = [5, 1, 86, 87]  # liver, spleen, back muscles


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "config" / "settings.json"))


@pytest.fixture(scope="module")
def lidc_segmentation(mrml_scene, lidc_labels):
    from medsynth.mrml import labelmap_to_segmentation

    return labelmap_to_segmentation(lidc_labels, name="LIDC")


@pytest.fixture(scope="module")
def slab_segmentation(mrml_scene, lidc_labels):
    """Slices 55..64 of the LIDC label map as a segmentation (quick for the error and cancel checks)."""
    from medsynth.mrml import labelmap_to_segmentation
    from medsynth.volume import LabelMap

    matrix = lidc_labels.ijk_to_ras.copy()
    matrix[:3, 3] = lidc_labels.ijk_to_ras_points(np.array([0, 0, 55]))
    slab = LabelMap(lidc_labels.array[55:65].copy(), matrix, table=lidc_labels.table)
    return labelmap_to_segmentation(slab, name="LIDC slab")


def test_segmentation_to_synthetic_ct_node_on_the_input_grid(mrml_scene, lidc_segmentation, lidc_labels):
    from medsynth.mrml import node_to_volume
    from medsynth.generative.parameters import SemanticParameters
    from medsynth.module_logic.semantic import SemanticLogic

    logic = SemanticLogic()
    assert {"spade-ct", "diffusion-ct"} <= {entry.id for entry in logic.label_models()}
    messages = []
    nodes = logic.generate(lidc_segmentation, SemanticParameters(seed=1), slices="58..63",
                           progress=lambda f, m="": messages.append(f))
    assert len(nodes) == 1 and messages[-1] == 1.0
    ct = node_to_volume(nodes[0])
    assert ct.same_grid(lidc_labels)
    assert nodes[0].GetAttribute("MedSynth.Synthetic") == "1"
    labels = lidc_labels.array[58:64]
    slab = ct.array[58:64]
    lung = np.median(slab[np.isin(labels, LUNG)])
    soft = np.median(slab[np.isin(labels, SOFT)])
    bone = np.median(slab[np.isin(labels, BONE)])
    assert lung < soft - 500, (lung, soft)
    assert bone > soft + 50, (bone, soft)
    assert np.all(ct.array[:58] == -1024)  # slices not generated stay air
    # the preview of one more slice updates only that slice of the same node
    labels_map = lidc_labels  # what read_labels gave generate (same grid and names, checked above)
    index = logic.slice_index_at(labels_map, lidc_labels.ijk_to_ras_points(np.array([256, 256, 70])))
    assert index == 70
    volume = logic.run(labels_map, SemanticParameters(), slices=[index])[0]
    logic.store(volume, labels_map, nodes[0])
    updated = node_to_volume(nodes[0])
    assert np.array_equal(updated.array[58:64], slab) and updated.array[70].max() > 0


def test_unknown_segment_name_is_the_clear_error_and_the_scene_is_unchanged(mrml_scene, slab_segmentation):
    from medsynth.generative.parameters import SemanticParameters
    from medsynth.module_logic.semantic import SemanticLogic

    segmentation = slab_segmentation.GetSegmentation()
    segment_id = segmentation.GetSegmentIdBySegmentName("liver")
    segmentation.GetSegment(segment_id).SetName("Segment_7 (my blob)")
    before = mrml_scene.GetNumberOfNodes()
    try:
        with pytest.raises(InputError, match=r"does not know these classes: 'Segment_7 \(my blob\)'"):
            SemanticLogic().generate(slab_segmentation, SemanticParameters(), slices="5")
        assert mrml_scene.GetNumberOfNodes() == before
        # an explicit mapping fixes it
        nodes = SemanticLogic().generate(slab_segmentation, SemanticParameters(class_mapping="Segment_7 (my blob)=liver"),
                                         slices="5")
        assert len(nodes) == 1
    finally:
        segmentation.GetSegment(segment_id).SetName("liver")


def test_cancel_leaves_no_node(mrml_scene, slab_segmentation):
    from medsynth.jobs import CancelToken
    from medsynth.generative.parameters import SemanticParameters
    from medsynth.module_logic.semantic import SemanticLogic

    token = CancelToken()
    token.cancel()
    before = mrml_scene.GetNumberOfNodes()
    with pytest.raises(CancelledError):
        SemanticLogic().generate(slab_segmentation, SemanticParameters(), slices="2..8", cancel=token)
    assert mrml_scene.GetNumberOfNodes() == before


def test_label_map_node_input_uses_its_color_names(mrml_scene, lidc_labels):
    from medsynth.mrml import labelmap_to_node
    from medsynth.module_logic.semantic import SemanticLogic

    node = labelmap_to_node(lidc_labels, name="LIDC labels")
    labels = SemanticLogic().read_labels(node)
    assert labels.table.name(5) == "liver" and labels.same_grid(lidc_labels)
    with pytest.raises(InputError, match="Select an input"):
        SemanticLogic().read_labels(None)


def test_batch_script_runs_with_plain_python_and_resumes(tmp_path, lidc_dir):
    out = tmp_path / "batch"
    command = [sys.executable, str(BATCH), "--labels", str(lidc_dir / "labels.nii.gz"), "--table",
               str(lidc_dir / "structures.csv"), "--slices", "60", "--samples", "2", "--out", str(out)]
    first = subprocess.run(command, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "PROGRESS 100%" in first.stdout
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("ct.nii.gz"))
    assert made == ["labels/sample_00/ct.nii.gz", "labels/sample_01/ct.nii.gz"]
    again = subprocess.run(command, capture_output=True, text=True)
    assert "0 new, 2 already there" in again.stdout
    bad = subprocess.run([sys.executable, str(BATCH), "--labels", str(lidc_dir / "labels.nii.gz"), "--out",
                          str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "no label names" in bad.stderr
