"""SemanticSynthesis's Logic, ``medsynth generate`` and the semantic batch script generate the same
CT for the same parameters (issue 14): the generated slice voxel for voxel, at the same place.

The Logic puts the slice into a volume node on the label map's whole grid; the CLI and the batch
script write the generated slices alone (with their own geometry).

LIDC-IDRI-0001's TotalSegmentator label map, axial slice 60, the shipped demo SPADE model, seed 5.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.io import read_volume  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL, SLICE, SEED = "spade-ct", 60, 5


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "config" / "settings.json"))


def logic_ct(lidc_dir) -> np.ndarray:
    from medsynth.generative.parameters import SemanticParameters
    from medsynth.io import read_labelmap
    from medsynth.module_logic.semantic import SemanticLogic
    from medsynth.mrml import labelmap_to_node, node_to_volume

    node = labelmap_to_node(read_labelmap(lidc_dir / "labels.nii.gz", lidc_dir / "structures.csv"), name="LIDC labels")
    (output,) = SemanticLogic().generate(node, SemanticParameters(model_id=MODEL, seed=SEED), slices=str(SLICE))
    try:
        return node_to_volume(output)
    finally:
        for created in (node, output):
            slicer.mrmlScene.RemoveNode(created)


def cli_ct(lidc_dir, out: Path) -> np.ndarray:
    from medsynth.cli.main import main

    assert main(["generate", "--model", MODEL, "--labels", str(lidc_dir / "labels.nii.gz"), "--table",
                 str(lidc_dir / "structures.csv"), "--slices", str(SLICE), "--seed", str(SEED), "--out", str(out),
                 "--quiet"]) == 0
    return read_volume(out / "sample_00.nii.gz")


def batch_ct(lidc_dir, out: Path) -> np.ndarray:
    spec = importlib.util.spec_from_file_location("SemanticSynthesisBatch",
                                                  ROOT / "SemanticSynthesis" / "Batch" / "SemanticSynthesisBatch.py")
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    assert batch.main(["--model", MODEL, "--labels", str(lidc_dir / "labels.nii.gz"), "--table",
                       str(lidc_dir / "structures.csv"), "--slices", str(SLICE), "--seed", str(SEED),
                       "--out", str(out)]) == 0
    return read_volume(out / "labels" / "sample_00" / "ct.nii.gz")


def test_logic_cli_and_batch_script_generate_identical_cts(lidc_dir, tmp_path):
    reference = logic_ct(lidc_dir)
    assert float(reference.array[SLICE].std()) > 50.0  # a generated slice, not a blank
    slice_origin = reference.ijk_to_ras_points(np.array([[0.0, 0.0, SLICE]]))[0]
    for name, generated in (("medsynth generate", cli_ct(lidc_dir, tmp_path / "cli")),
                            ("SemanticSynthesisBatch", batch_ct(lidc_dir, tmp_path / "batch"))):
        assert generated.array.shape == (1,) + reference.array.shape[1:], name
        np.testing.assert_array_equal(generated.array[0], reference.array[SLICE], err_msg=name)
        np.testing.assert_allclose(generated.ijk_to_ras[:3, 3], slice_origin, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(generated.ijk_to_ras[:3, :2], reference.ijk_to_ras[:3, :2], atol=1e-6, err_msg=name)
