"""Training each family for a few steps on tiny real data: losses fall, checkpoints reload exactly,
``--resume`` continues exactly, and bad configs fail clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.errors import CancelledError, DeviceError, InputError  # noqa: E402
from medsynth.generative.checkpoint import load_model, read_checkpoint  # noqa: E402
from medsynth.generative.datasets import SliceCase, SliceDatasetSpec, build_slice_dataset, load_split  # noqa: E402
from medsynth.generative.training import train  # noqa: E402
from medsynth.jobs.progress import CancelToken  # noqa: E402

CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]
TINY_MODELS = {
    "spade_gan": {"channels": [32, 16, 8], "z_dim": 4, "spade_hidden": 8},
    "semantic_diffusion": {"channels": [16, 32], "attention_levels": [False, False], "norm_num_groups": 8,
                           "num_head_channels": 8, "spade_hidden": 8, "train_timesteps": 200},
    "pix2pix": {"channels": [8, 16, 32]},
    "cyclegan": {"channels": [8, 16, 32]},
}


@pytest.fixture(scope="module")
def slices(tmp_path_factory, totalseg_dir, lidc_dir):
    """TotalSegmentator's small abdomen CT (train) and its contrast DICOM case (val), 32 px."""
    table = lidc_dir / "structures.csv"
    cases = [SliceCase("small", totalseg_dir / "ct_sm.nii.gz", totalseg_dir / "seg_sm.nii.gz", table, split="train"),
             SliceCase("dicom", totalseg_dir / "dicom", totalseg_dir / "seg_dicom.nii.gz", table, split="val")]
    spec = SliceDatasetSpec(classes=CLASSES, unknown="soft_tissue", size=32, pixel_spacing_mm=11.0)
    return build_slice_dataset(cases, tmp_path_factory.mktemp("training") / "slices", spec)


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory, slices):
    """Real CT slices of one patient as domain A and of another as domain B (mechanics, not realism)."""
    from medsynth.generative.datasets.unpaired import UnpairedSpec, build_unpaired_set

    a = list(load_split(slices, "train")["images"])
    b = list(load_split(slices, "val")["images"])
    return build_unpaired_set(a, b, tmp_path_factory.mktemp("unpaired") / "set", UnpairedSpec(size=32))


def _config(family, dataset, output, **train):
    settings = {"steps": 30, "batch_size": 4, "checkpoint_every": 15, "validate_every": 15, "log_every": 1,
                "val_samples": 4, "threads": 1, "seed": 0, "track_emissions": False, **train}
    if family == "semantic_diffusion":
        settings.setdefault("val_steps", 3)
    return {"family": family, "data": {"dataset": str(dataset)}, "model": TINY_MODELS[family],
            "train": settings, "output": str(output)}


def _trend(history, key, count=8):
    values = [row[key] for row in history if row["kind"] == "train"]
    return float(np.mean(values[:count])), float(np.mean(values[-count:]))


def test_spade_gan_learns_and_reloads_exactly(slices, tmp_path):
    result = train(_config("spade_gan", slices, tmp_path / "run", lr=2e-3, lr_discriminator=2e-3, l1_weight=1.0,
                           mask_loss_weight=1.0))
    first, last = _trend(result.history, "loss_g_l1")
    assert last < 0.8 * first
    first_d, last_d = _trend(result.history, "loss_d")
    assert last_d < first_d  # the N+1-class segmentation discriminator learns to segment
    model = load_model(result.output / "final.pt", expected_family="spade_gan")
    again = load_model(result.output / "final.pt")
    labels = torch.from_numpy(load_split(slices, "val")["labels"][:2].astype(np.int64))
    out = model.generate(labels, torch.Generator().manual_seed(3))
    assert torch.equal(out, again.generate(labels, torch.Generator().manual_seed(3)))
    assert model.class_names == CLASSES and model.window.units == "HU"
    # outputs for people: curves, samples next to inputs, metrics log, the exact config
    for name in ("curves.png", "samples/step_000030.png", "metrics.jsonl", "config.yaml", "best.pt", "summary.json"):
        assert (result.output / name).is_file(), name
    rows = [json.loads(line) for line in (result.output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "val"] == [15, 30]
    best = read_checkpoint(result.output / "best.pt")["meta"]["best"]
    val_ssim = {r["step"]: r["ssim"] for r in rows if r["kind"] == "val"}
    assert best["value"] == pytest.approx(max(val_ssim.values())) and best["metric"] == "ssim"


def test_patch_discriminator_variant_trains(slices, tmp_path):
    result = train(_config("spade_gan", slices, tmp_path / "patch", steps=4, discriminator="patch",
                           discriminator_channels=8, validate_every=4, checkpoint_every=4))
    assert result.steps == 4 and np.isfinite(result.history[-1]["ssim"])


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_semantic_diffusion_learns_to_denoise(slices, tmp_path, prediction):
    config = _config("semantic_diffusion", slices, tmp_path / "run", steps=40, lr=2e-3, validate_every=40,
                     checkpoint_every=40)
    config["model"] = {**config["model"], "prediction": prediction}
    result = train(config)
    first, last = _trend(result.history, "loss")
    assert last < 0.6 * first
    model = load_model(result.output / "final.pt", expected_family="semantic_diffusion")
    labels = torch.from_numpy(load_split(slices, "val")["labels"][:2].astype(np.int64))
    a = model.generate(labels, torch.Generator().manual_seed(1), steps=4, guidance=1.5)
    b = load_model(result.output / "final.pt").generate(labels, torch.Generator().manual_seed(1), steps=4, guidance=1.5)
    assert torch.equal(a, b) and a.shape == (2, 1, 32, 32)


def test_cyclegan_learns_cycles(unpaired, tmp_path):
    result = train(_config("cyclegan", unpaired, tmp_path / "run", lr=2e-3))
    first, last = _trend(result.history, "loss_cycle")
    assert last < 0.7 * first
    model = load_model(result.output / "best.pt", expected_family="cyclegan")
    images = torch.from_numpy(load_split(unpaired, "val", "medsynth-unpaired")["a"][:2])[:, None]
    assert torch.equal(model.translate(images), load_model(result.output / "best.pt").translate(images))


def test_resume_continues_exactly(slices, tmp_path):
    config = _config("spade_gan", slices, tmp_path / "straight", steps=6, checkpoint_every=3, validate_every=3)
    straight = train(config)
    token = CancelToken()

    def cancel_after_step_4(fraction, message):
        if fraction >= 4 / 6:
            token.cancel()

    interrupted = {**config, "output": str(tmp_path / "interrupted")}
    with pytest.raises(CancelledError):
        train(interrupted, progress=cancel_after_step_4, cancel=token)
    assert read_checkpoint(tmp_path / "interrupted" / "last.pt")["meta"]["step"] == 3
    resumed = train(interrupted, resume=True)
    a = read_checkpoint(straight.output / "last.pt")["state"]
    b = read_checkpoint(resumed.output / "last.pt")["state"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for name, tensor in a["training"]["modules"]["discriminator"].items():
        assert torch.equal(tensor, b["training"]["modules"]["discriminator"][name]), name
    assert a["training"]["history"] == b["training"]["history"]
    assert (tmp_path / "straight" / "metrics.jsonl").read_text() == (tmp_path / "interrupted" / "metrics.jsonl").read_text()


def test_cli_train_and_resume_with_more_steps(slices, tmp_path, capsys):
    from medsynth.cli.main import main

    config = _config("spade_gan", slices, "run", steps=2, checkpoint_every=2, validate_every=2)
    path = tmp_path / "spade.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--quiet"]) == 0
    assert main(["train", str(path), "--quiet"]) == 2  # the run exists: refuse to overwrite it
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(path), "--quiet", "--resume", "--steps", "4"]) == 0
    assert read_checkpoint(tmp_path / "run" / "last.pt")["meta"]["step"] == 4


def test_config_errors(slices, tmp_path):
    base = _config("spade_gan", slices, tmp_path / "run", steps=2)
    with pytest.raises(InputError, match="Unknown setting.*learning_rate"):
        train({**base, "train": {**base["train"], "learning_rate": 1}})
    with pytest.raises(InputError, match="Unknown setting.*cycle_weight"):  # another family's setting
        train({**base, "train": {**base["train"], "cycle_weight": 1}})
    with pytest.raises(InputError, match="family"):
        train({**base, "family": "vae"})
    with pytest.raises(InputError, match="steps must be a whole number"):
        train({**base, "train": {**base["train"], "steps": 0}})
    with pytest.raises(InputError, match="Nothing to resume"):
        train(base, resume=True)
    with pytest.raises(InputError, match="no 'test' slices"):  # an empty split
        train({**base, "data": {"dataset": str(slices), "val_split": "test"}})
    with pytest.raises(InputError, match="not a MedSynth dataset"):
        train({**base, "data": {"dataset": str(tmp_path)}})
    with pytest.raises(InputError, match="'medsynth-slices' dataset is needed"):
        train({**_config("spade_gan", tmp_path, tmp_path / "x"), "data": {"dataset": str(_unpaired_stub(tmp_path))}})
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            train({**base, "train": {**base["train"], "device": "cuda"}})
    import importlib.util

    if importlib.util.find_spec("codecarbon") is None:
        with pytest.raises(InputError, match="codecarbon is not installed"):
            train({**base, "train": {**base["train"], "track_emissions": True}})
    with pytest.raises(InputError, match="mask_loss_weight needs the segmentation discriminator"):
        train({**base, "train": {**base["train"], "discriminator": "patch", "mask_loss_weight": 1.0}})
    train({**base, "train": {**base["train"], "checkpoint_every": 2}})
    changed = {**base, "train": {**base["train"], "lr": 1e-3, "steps": 4}}
    with pytest.raises(InputError, match="config differs"):
        train(changed, resume=True)


def _unpaired_stub(tmp_path):
    folder = tmp_path / "stub"
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"kind": "medsynth-unpaired", "version": 1}))
    return folder
