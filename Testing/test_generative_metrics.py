"""Metrics: analytic cases with known answers, the shipped segmenter on real slices, `medsynth evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsynth.errors import InputError
from medsynth.generative import metrics


@pytest.fixture(scope="module")
def lidc_slices(lidc_dir):
    """LIDC-IDRI-0001 axial slices at the segmenter's grid (128 px, 3 mm) with their class maps."""
    from medsynth.generative.datasets.slices import SliceCase, SliceDatasetSpec, case_slices
    from medsynth.generative.segmenter import CLASSES
    from medsynth.volume import LabelTable

    table = LabelTable.from_totalsegmentator_csv(lidc_dir / "structures.csv")
    spec = SliceDatasetSpec(classes=list(CLASSES), size=128, pixel_spacing_mm=3.0, slice_step=6)
    result = case_slices(SliceCase("lidc", lidc_dir / "ct.nii.gz", lidc_dir / "labels.nii.gz", table), spec)
    return result["images"], result["labels"].astype(np.int64)


def test_paired_metrics_match_their_definitions():
    rng = np.random.default_rng(0)
    real = rng.uniform(-500, 500, (3, 64, 64)).astype(np.float32)
    shifted = real + 10.0
    result = metrics.image_metrics(np.clip(shifted, -500, 500), real, (-500, 500))
    error = np.clip(shifted, -500, 500) - real
    assert result["mae"] == pytest.approx(np.abs(error).mean(), rel=1e-4)
    assert result["rmse"] == pytest.approx(np.sqrt((error ** 2).reshape(3, -1).mean(axis=1)).mean(), rel=1e-4)
    mse01 = ((error / 1000.0) ** 2).reshape(3, -1).mean(axis=1)
    assert result["psnr"] == pytest.approx(np.mean(10 * np.log10(1.0 / mse01)), rel=1e-3)
    same = metrics.image_metrics(real, real, (-500, 500))
    assert same["ssim"] == pytest.approx(1.0, abs=1e-4) and same["ms_ssim"] == pytest.approx(1.0, abs=1e-4)
    noisy = metrics.image_metrics(real + rng.normal(0, 200, real.shape), real, (-500, 500))
    assert noisy["ssim"] < result["ssim"] < 1.0
    assert metrics.ms_ssim_scales(256) == 5 and metrics.ms_ssim_scales(64) == 3


def test_paired_metrics_reject_bad_input():
    with pytest.raises(InputError, match="pair up one to one"):
        metrics.image_metrics(np.zeros((2, 32, 32)), np.zeros((3, 32, 32)))
    with pytest.raises(InputError, match="NaN"):
        metrics.image_metrics(np.full((1, 32, 32), np.nan), np.zeros((1, 32, 32)))
    with pytest.raises(InputError, match="high > low"):
        metrics.image_metrics(np.zeros((1, 32, 32)), np.zeros((1, 32, 32)), (5, 5))
    with pytest.raises(InputError, match="too small"):
        metrics.image_metrics(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), (0, 1))
    with pytest.raises(InputError, match="at least 2 images"):
        metrics.frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))


def test_frechet_distance_equals_monai_fid_and_the_gaussian_formula():
    import torch
    from monai.metrics import FIDMetric

    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (400, 6))
    b = rng.normal(0, 1, (300, 6)) @ rng.normal(size=(6, 6)) + 2.0
    ours = metrics.frechet_distance(a, b)
    assert ours == pytest.approx(float(FIDMetric()(torch.tensor(a), torch.tensor(b))), rel=1e-6)
    # same covariance, means 3 apart along one axis: FID = 9 (up to sampling noise)
    c = rng.normal(0, 1, (4000, 3))
    d = rng.normal(0, 1, (4000, 3)) + np.array([3.0, 0, 0])
    assert metrics.frechet_distance(c, d) == pytest.approx(9.0, abs=0.3)
    # few images, many features (the small-matrix route) agrees with MONAI too
    e, f = rng.normal(0, 1, (5, 40)), rng.normal(0.5, 2, (7, 40))
    assert metrics.frechet_distance(e, f) == pytest.approx(float(FIDMetric()(torch.tensor(e), torch.tensor(f))), rel=1e-5)


def test_inception_fid_is_near_zero_for_the_same_set_and_large_for_noise(lidc_slices):
    images, _ = lidc_slices
    window = (-1000.0, 1000.0)
    real = images[:6]
    same = metrics.inception_fid(real, real, window)
    noise = np.random.default_rng(2).uniform(-1000, 1000, real.shape).astype(np.float32)
    different = metrics.inception_fid(noise, real, window)
    assert abs(same) < 1e-3 and different > 100 * max(same, 1e-3) and different > 50
    assert metrics.FID_LABEL == "ImageNet-Inception FID"


def test_segmenter_reads_real_slices_and_scores_consistency(lidc_slices):
    from medsynth.generative.segmenter import load_segmenter

    images, labels = lidc_slices
    segmenter = load_segmenter()
    real = metrics.segmentation_consistency(images, labels, segmenter)
    assert real["dice"]["lung"] > 0.85 and real["dice"]["bone"] > 0.4 and real["mean_dice"] > 0.6, real
    shuffled = metrics.segmentation_consistency(images, labels[::-1].copy(), segmenter)
    assert shuffled["mean_dice"] < real["mean_dice"] - 0.1
    features = segmenter.features(images[:4])
    assert features.shape[0] == 4 and np.isfinite(features).all()
    with pytest.raises(InputError, match="multiples of"):
        segmenter.predict(np.zeros((1, 100, 100)))


def test_segmenter_file_errors(tmp_path):
    from medsynth.generative.segmenter import load_segmenter

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable segmenter"):
        load_segmenter(bad)
    with pytest.raises(InputError, match="missing"):
        load_segmenter(tmp_path / "absent.pt")


def test_evaluate_command_on_folders(tmp_path, capsys):
    from medsynth.cli.main import main

    rng = np.random.default_rng(3)
    (tmp_path / "gen").mkdir()
    (tmp_path / "real").mkdir()
    for index in range(3):
        image = rng.uniform(-300, 300, (64, 64)).astype(np.float32)
        np.save(tmp_path / "real" / f"s{index}.npy", image)
        np.save(tmp_path / "gen" / f"s{index}.npy", image + 5.0)
    report = tmp_path / "report.json"
    assert main(["evaluate", "--generated", str(tmp_path / "gen"), "--real", str(tmp_path / "real"),
                 "--window=-300,300", "--no-fid", "--out", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["paired"]["pairs"] == 3 and data["paired"]["mae"] == pytest.approx(5.0, abs=0.2)
    assert main(["evaluate", "--generated", str(tmp_path / "gen"), "--real", str(tmp_path / "nowhere")]) == 2
    assert main(["evaluate", "--generated", str(tmp_path / "gen"), "--real", str(tmp_path / "real"),
                 "--window", "abc"]) == 2
