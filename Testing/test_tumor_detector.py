"""The tumor detector trained on synthetic tumors only: shipped weights, detection on a held-out patient,
the training loop, the per-tumor scores and ``medsynth tumor detect``."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.errors import InputError, NotHUError

pytest.importorskip("torch")
pytest.importorskip("monai")


@pytest.fixture(scope="module")
def detector():
    import torch

    torch.set_num_threads(1)
    from medsynth.tumor.detector import load_detector

    return load_detector()  # the shipped weights, checked against their recorded SHA-256


@pytest.fixture(scope="module")
def heldout_case(totalseg_dir):
    """TotalSegmentator's 3 mm abdomen CT: a patient the shipped detector never saw in training."""
    from medsynth.tumor.detector_training import load_case

    return load_case("totalseg_small", "liver")


def paint(case, seed, kind="large"):
    from medsynth.tumor.detector_training import paint_random
    from medsynth.tumor.detector import DetectorRecipe

    return paint_random(case, np.random.default_rng([seed, 424242]), DetectorRecipe(), kinds=[kind], density="hypo")


def test_shipped_record_matches_its_weights_and_recipe(detector):
    import json

    from medsynth.generative.checkpoint import sha256_of
    from medsynth.tumor.detector import SHIPPED, DetectorRecipe

    record = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert record["sha256"] == sha256_of(SHIPPED) and SHIPPED.stat().st_size < 5_000_000
    assert DetectorRecipe.from_dict(record["recipe"]) == detector.recipe
    assert "totalseg_small" in record["recipe"]["heldout_cases"]
    assert "totalseg_small" not in record["recipe"]["train_cases"]
    metrics = record["heldout_metrics"]["over_10mm"]
    assert metrics["tumors"] >= 20 and 0.0 <= metrics["detection_rate"] <= 1.0
    assert "synthetic" in record["caveat"]


def test_shipped_detector_finds_an_unseen_synthetic_tumor_in_a_held_out_ct(detector, heldout_case):
    from medsynth.tumor.detector_training import per_tumor_scores

    case = heldout_case
    result = paint(case, seed=7)
    try:
        assert len(result.tumors) >= 1
        prediction = detector.detect(case.ct, case.organ)
        scores = per_tumor_scores(prediction, result)
    finally:
        result.undo(case.ct.array)
    assert not np.any(prediction & ~case.organ)  # tumors are only looked for inside the organ
    assert scores[0]["detected"] and scores[0]["dice"] > 0.5, scores
    # the same scan without tumors: far less is marked than the painted tumor's volume
    healthy = detector.detect(case.ct, case.organ)
    assert healthy.sum() < 0.5 * result.tumor_mask().sum()


def test_detector_refuses_an_mr_and_a_mismatched_mask(detector, pydicom_dir, heldout_case):
    from medsynth.io import list_dicom_series, read_volume

    mr_uid = next(s.uid for s in list_dicom_series(pydicom_dir) if s.modality == "MR")
    mr = read_volume(pydicom_dir, series_uid=mr_uid)
    with pytest.raises(NotHUError, match="not CT"):
        detector.detect(mr, np.ones(mr.array.shape, bool))
    with pytest.raises(InputError, match="organ mask has shape"):
        detector.detect(heldout_case.ct, np.ones((2, 2, 2), bool))
    with pytest.raises(InputError, match="empty"):
        detector.detect(heldout_case.ct, np.zeros(heldout_case.ct.array.shape, bool))


def test_training_runs_a_few_steps_on_a_tiny_case_and_round_trips(tmp_path, heldout_case):
    import torch

    from medsynth.tumor.detector import DetectorRecipe, load_detector, network_input, save_detector
    from medsynth.tumor.detector_training import make_case, train_detector
    from medsynth.volume import LabelMap, LabelTable, Volume

    source = heldout_case
    k = np.flatnonzero(source.organ.any(axis=(1, 2)))
    box = slice(int(k[len(k) // 2]) - 6, int(k[len(k) // 2]) + 6)  # 12 slices through the liver
    ct = Volume(source.ct.array[box].copy(), source.ct.ijk_to_ras @ _shift_k(box.start), source.ct.metadata)
    labels = LabelMap(source.organ[box].astype(np.uint8), ct.ijk_to_ras, table=LabelTable({1: "liver"}))
    tiny = make_case("tiny", ct, labels, "liver")
    recipe = DetectorRecipe(steps=3, batch=2, crop=32, channels=(4, 8), kinds=("small",))
    detector, log = train_detector(recipe, cases=[tiny])
    assert log["steps_done"] == 3 and len(log["losses"]) == 3 and np.all(np.isfinite(log["losses"]))
    assert log["tumors_synthesised"] >= 3
    assert np.array_equal(tiny.ct.array, ct.array)  # every painted tumor was undone
    path = save_detector(detector.network, recipe, tmp_path / "tiny.pt")
    again = load_detector(path)
    x = network_input(np.zeros((1, 32, 32), np.float32), np.ones((1, 32, 32), bool), recipe.window)
    with torch.no_grad():
        assert np.allclose(detector.probabilities(x), again.probabilities(x))
    (tmp_path / "broken.pt").write_bytes(b"not a detector")
    with pytest.raises(InputError, match="not a readable detector"):
        load_detector(tmp_path / "broken.pt")


def _shift_k(k0: int) -> np.ndarray:
    shift = np.eye(4)
    shift[2, 3] = k0
    return shift


def test_per_tumor_scores_on_known_masks():
    from types import SimpleNamespace

    from medsynth.tumor.detector_training import per_tumor_scores, summarise

    truth = np.zeros((10, 20, 20), bool)
    truth[2:6, 2:8, 2:8] = True  # tumor 1: found exactly
    second = np.zeros_like(truth)
    second[2:6, 12:18, 12:18] = True  # tumor 2: missed
    patches = [SimpleNamespace(box_global=(slice(0, 10), slice(0, 20), slice(0, 20)), label=m) for m in (truth, second)]
    tumors = [SimpleNamespace(equivalent_diameter_mm=d, kind="small") for d in (12.0, 8.0)]
    prediction = truth.copy()
    prediction[8, 15, 1] = True  # one false-positive speck
    scores = per_tumor_scores(prediction, SimpleNamespace(patches=patches, tumors=tumors))
    assert scores[0]["dice"] == 1.0 and scores[0]["detected"]
    assert scores[1]["dice"] == 0.0 and not scores[1]["detected"]
    assert scores[2] == {"false_positive_pieces": 1}
    summary = summarise([dict(s, case="x") for s in scores[:2]], 1, 1)
    assert summary["over_10mm"] == {"tumors": 1, "detection_rate": 1.0, "dice_mean": 1.0, "dice_of_detected": 1.0}
    assert summary["all"]["detection_rate"] == 0.5


def test_cli_detect_writes_the_mask_and_refuses_an_mr(tmp_path, detector, heldout_case, pydicom_dir, capsys,
                                                     totalseg_dir, lidc_dir):
    from medsynth.cli.main import main
    from medsynth.io import read_volume, write_volume
    from medsynth.volume import LabelMap, LabelTable

    case = heldout_case
    result = paint(case, seed=11)
    try:
        write_volume(case.ct.with_array(np.rint(case.ct.array).astype(np.int16)), tmp_path / "ct.nii.gz")
    finally:
        result.undo(case.ct.array)
    write_volume(LabelMap(case.organ.astype(np.uint8) * 5, case.ct.ijk_to_ras, table=LabelTable({5: "liver"})),
                 tmp_path / "organ.nii.gz")
    out = tmp_path / "tumor.nii.gz"
    assert main(["tumor", "detect", str(tmp_path / "ct.nii.gz"), "--organ-mask", str(tmp_path / "organ.nii.gz"),
                 "--organ-label", "5", "--out", str(out)]) == 0
    assert "tumor piece(s)" in capsys.readouterr().out
    mask = read_volume(out)
    assert mask.same_grid(case.ct) and (mask.array > 0).sum() > 0.3 * result.tumor_mask().sum()
    code = main(["tumor", "detect", str(pydicom_dir / "MR_small.dcm"), "--organ-mask", str(tmp_path / "organ.nii.gz"),
                 "--out", str(tmp_path / "mr.nii.gz")])
    assert code == 2 and "MR" in capsys.readouterr().err
    code = main(["tumor", "detect", str(tmp_path / "ct.nii.gz"), "--organ-mask", str(tmp_path / "organ.nii.gz"),
                 "--organ", "kidney", "--out", str(tmp_path / "k.nii.gz")])
    assert code == 2 and "detect liver tumors" in capsys.readouterr().err
    # a DICOM series with TotalSegmentator's NIfTI of it (stored in another axis order: same voxels)
    code = main(["tumor", "detect", str(totalseg_dir / "dicom"), "--organ-mask", str(totalseg_dir / "seg_dicom.nii.gz"),
                 "--label-table", str(lidc_dir / "structures.csv"), "--out", str(tmp_path / "dicom_mask.nii.gz")])
    assert code == 0, capsys.readouterr().err
    dicom_ct = read_volume(totalseg_dir / "dicom")
    assert read_volume(tmp_path / "dicom_mask.nii.gz").same_grid(dicom_ct)
    code = main(["tumor", str(totalseg_dir / "dicom"), "--organ-mask", str(totalseg_dir / "seg_dicom.nii.gz"),
                 "--label-table", str(lidc_dir / "structures.csv"), "--type", "small", "--count", "1",
                 "--out", str(tmp_path / "dicom_tumors"), "--quiet"])
    assert code == 0  # generating takes that label map too
    capsys.readouterr()
    assert main(["tumor", "train-segmenter", "--steps", "0", "--out", str(tmp_path / "d.pt")]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
