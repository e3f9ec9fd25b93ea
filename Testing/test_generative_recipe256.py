"""The 256 px recipe's parts: 2.5D label context, augmentation, the multi-scale discriminator with
feature matching, MONAI's DDIM sampler with v-prediction, and 2.5D generation on a real label map."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.errors import InputError  # noqa: E402
from medsynth.generative.augment import Augmentation  # noqa: E402
from medsynth.generative.datasets import SliceCase, SliceDatasetSpec, build_slice_dataset, load_split  # noqa: E402
from medsynth.generative.training import train  # noqa: E402

CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]


@pytest.fixture(scope="module")
def context_slices(tmp_path_factory, totalseg_dir, lidc_dir):
    """TotalSegmentator's small CT (train) and contrast DICOM case (val), 32 px, with one neighbour per side."""
    table = lidc_dir / "structures.csv"
    cases = [SliceCase("small", totalseg_dir / "ct_sm.nii.gz", totalseg_dir / "seg_sm.nii.gz", table, split="train"),
             SliceCase("dicom", totalseg_dir / "dicom", totalseg_dir / "seg_dicom.nii.gz", table, split="val")]
    spec = SliceDatasetSpec(classes=CLASSES, unknown="soft_tissue", size=32, pixel_spacing_mm=11.0, context_slices=1)
    return build_slice_dataset(cases, tmp_path_factory.mktemp("context") / "slices", spec)


@pytest.fixture(scope="module")
def context_slices_64(tmp_path_factory, totalseg_dir, lidc_dir):
    """The same two patients at 64 px: big enough for random crops and a two-scale patch discriminator."""
    table = lidc_dir / "structures.csv"
    cases = [SliceCase("small", totalseg_dir / "ct_sm.nii.gz", totalseg_dir / "seg_sm.nii.gz", table, split="train"),
             SliceCase("dicom", totalseg_dir / "dicom", totalseg_dir / "seg_dicom.nii.gz", table, split="val")]
    spec = SliceDatasetSpec(classes=CLASSES, unknown="soft_tissue", size=64, pixel_spacing_mm=5.5, context_slices=1)
    return build_slice_dataset(cases, tmp_path_factory.mktemp("context64") / "slices", spec)


def test_context_labels_hold_the_neighbours_on_the_centre_slices_grid(context_slices):
    arrays = load_split(context_slices, "train")
    context, labels, index = arrays["context_labels"], arrays["labels"], arrays["slice_index"]
    assert context.shape == (len(labels), 3, 32, 32)
    assert np.array_equal(context[:, 1], labels)  # the centre is the slice itself
    # neighbours are the adjacent slices' classes: the first slice's lower neighbour is itself (clamped)
    assert index[0] == 0 and np.array_equal(context[0, 0], labels[0])
    # anatomy changes slowly: a slice agrees with its neighbour more than with a slice far away
    near = np.mean(context[10:20, 2] == labels[10:20])
    far = np.mean(labels[10:20] == labels[:10])
    assert near > far


def test_augmentation_moves_image_and_labels_together():
    images = torch.linspace(-1, 1, 64).repeat(2, 1, 64, 1)  # columns ramp left to right
    labels = (torch.arange(64) // 16).repeat(2, 3, 64, 1)  # classes 0..3 in vertical bands
    generator = torch.Generator().manual_seed(0)
    mirrored, mirrored_labels = Augmentation(flip=1.0)(images, labels, generator)
    assert torch.allclose(mirrored, images.flip(-1), atol=1e-5)
    assert torch.equal(mirrored_labels, labels.flip(-1))
    rotated, rotated_labels = Augmentation(rotate_deg=10, crop=32)(images, labels, generator)
    assert rotated.shape == (2, 1, 32, 32) and rotated_labels.shape == (2, 3, 32, 32)
    # the image is the labels' band pattern, so after any common transform it still tells the band
    band = ((rotated + 1) / 2 * 63 / 16).floor().clamp(0, 3).long()
    assert (band == rotated_labels[:, :1]).float().mean() > 0.9
    jittered, _ = Augmentation(intensity_jitter=0.1)(images, labels[:, 0], generator)
    assert not torch.equal(jittered, images) and jittered.abs().max() <= 1
    with pytest.raises(InputError, match="crop must be 0"):
        Augmentation.from_dict({"crop": 30})
    with pytest.raises(InputError, match="Unknown augmentation"):
        Augmentation.from_dict({"mirror": 1})


def test_multiscale_discriminator_and_feature_matching_train_a_2p5d_gan(context_slices_64, tmp_path):
    from medsynth.generative.checkpoint import load_model

    config = {"family": "spade_gan", "data": {"dataset": str(context_slices_64)},
              "model": {"channels": [32, 16, 8], "z_dim": 4, "spade_hidden": 8, "context_slices": 1},
              "train": {"steps": 30, "batch_size": 4, "lr": 2e-3, "lr_discriminator": 2e-3, "discriminator": "multiscale",
                        "discriminator_channels": 8, "discriminator_scales": 2, "feature_matching_weight": 10.0,
                        "l1_weight": 1.0, "augment": {"flip": 0.5, "rotate_deg": 5, "intensity_jitter": 0.02, "crop": 48},
                        "checkpoint_every": 30, "validate_every": 30, "log_every": 1, "val_samples": 4, "threads": 1,
                        "track_emissions": False},
              "output": str(tmp_path / "run")}
    result = train(config)
    rows = [row for row in result.history if row["kind"] == "train"]
    assert np.mean([r["loss_g_l1"] for r in rows[-8:]]) < 0.8 * np.mean([r["loss_g_l1"] for r in rows[:8]])
    assert all(np.isfinite(r["loss_g_fm"]) and r["loss_g_fm"] > 0 for r in rows)
    model = load_model(result.output / "final.pt")
    assert model.context_slices == 1 and model.cond_channels == 3 * len(CLASSES)
    stack = torch.from_numpy(load_split(context_slices_64, "val")["context_labels"][:2].astype(np.int64))
    out = model.generate(stack, torch.Generator().manual_seed(0))  # trained on 48 px crops, generates 64 px
    assert out.shape == (2, 1, 64, 64)
    single = model.generate(stack[:, 1], torch.Generator().manual_seed(0))  # one slice: its own neighbours
    assert single.shape == (2, 1, 64, 64)
    with pytest.raises(InputError, match=r"\[B, 3, H, W\]"):
        model.generate(stack[:, :2], torch.Generator().manual_seed(0))


def test_a_2p5d_model_needs_a_dataset_with_neighbours(tmp_path, totalseg_dir, lidc_dir):
    flat = build_slice_dataset([SliceCase("small", totalseg_dir / "ct_sm.nii.gz", totalseg_dir / "seg_sm.nii.gz",
                                          lidc_dir / "structures.csv", split="train")], tmp_path / "flat",
                               SliceDatasetSpec(classes=CLASSES, unknown="soft_tissue", size=16, pixel_spacing_mm=22.0))
    config = {"family": "spade_gan", "data": {"dataset": str(flat), "val_split": "train"},
              "model": {"channels": [16, 8], "z_dim": 4, "spade_hidden": 8, "context_slices": 1},
              "train": {"steps": 1, "track_emissions": False}, "output": str(tmp_path / "run")}
    with pytest.raises(InputError, match="context_slices: 1"):
        train(config)
    config["model"]["context_slices"] = 0
    config["train"]["feature_matching_weight"] = 1.0
    with pytest.raises(InputError, match="feature_matching_weight needs a patch or multiscale"):
        train(config)


def test_ddim_with_v_prediction_recovers_the_clean_image_of_an_oracle():
    """A network that returns the exact velocity of a known clean image: MONAI's DDIM must land on it."""
    from medsynth.generative.networks.diffusion import SemanticDiffusion

    model = SemanticDiffusion(CLASSES, 16, {"low": -1000, "high": 1000, "units": "HU"}, channels=[8, 8],
                              attention_levels=[False, False], norm_num_groups=4, num_head_channels=4, spade_hidden=4,
                              prediction="v", train_timesteps=1000)
    clean = torch.linspace(-0.8, 0.8, 16).repeat(1, 1, 16, 1)
    alphas = model.alphas_cumprod

    def oracle(x, timesteps, one_hot):
        a = alphas[timesteps].view(-1, 1, 1, 1)
        noise = (x - a.sqrt() * clean) / (1 - a).sqrt()
        return a.sqrt() * noise - (1 - a).sqrt() * clean

    model.forward = oracle
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    for steps in (1, 4, 10, 50):
        out = model.generate(labels, torch.Generator().manual_seed(0), steps=steps, guidance=1.0)
        assert torch.allclose(out, clean, atol=1e-4), steps
    assert model.ddim_timesteps(10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]


def test_shipped_256_recipes_are_valid_configs():
    from pathlib import Path

    from medsynth.generative.config import normalize_config

    recipes = Path(__file__).resolve().parents[1] / "MedSynth" / "medsynth" / "generative" / "recipes"
    dataset = yaml.safe_load((recipes / "ct_slices_256.yaml").read_text())
    SliceDatasetSpec(**dataset["spec"]).validate()
    assert {case["split"] for case in dataset["cases"]} == {"train", "val"}  # split by patient
    for name in ("spade_ct_256", "diffusion_ct_256"):
        raw = yaml.safe_load((recipes / f"{name}.yaml").read_text())
        config = normalize_config({**raw, "output": "/tmp/x"})
        assert config["model"]["context_slices"] == 1 and config["data"]["dataset"] == "ct_slices_256"
    diffusion = yaml.safe_load((recipes / "diffusion_ct_256.yaml").read_text())["model"]
    assert diffusion["attention_levels"] == [False] * (len(diffusion["channels"]) - 1) + [True]  # low resolution only
    assert diffusion["prediction"] == "v"


def test_shipped_256_gan_paints_organs_plausibly_and_slices_do_not_depend_on_the_range(lidc_labels):
    """The shipped 2.5D GAN on LIDC-IDRI-0001 (a training patient: this checks the plumbing and the
    weights, the held-out quality is in docs/benchmarks.md): lungs dark, aorta bright, liver soft tissue."""
    from medsynth.generative.inference import generate

    [volume] = generate(lidc_labels, "spade-ct-256", slices="60..62", seed=3)
    labels = lidc_labels.array[60:63]
    lung = np.isin(labels, list(range(10, 15)))
    assert volume.array[lung].mean() < -700
    assert volume.array[labels == 52].mean() > 150  # aorta
    assert 0 < volume.array[labels == 5].mean() < 250  # liver
    assert volume.metadata.extra["model"] == "spade-ct-256"
    # each slice sees its neighbours in the label map, not in the request: the same slice either way
    [wider] = generate(lidc_labels, "spade-ct-256", slices="61..61", seed=3)
    assert np.abs(wider.array[0] - volume.array[1]).max() < 1.0  # HU; batch size changes float rounding only
