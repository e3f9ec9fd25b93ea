"""Checkpoints and the model API: exact reloads, and clear errors for every bad checkpoint or input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.errors import InputError  # noqa: E402
from medsynth.generative.checkpoint import load_model, read_checkpoint, save_checkpoint, sha256_of  # noqa: E402
from medsynth.generative.intensity import IntensityWindow  # noqa: E402
from medsynth.generative.networks import build_model  # noqa: E402

CLASSES = ["background", "soft_tissue", "lung", "liver", "bone"]
META = {"image_size": 32, "window": {"low": -1000.0, "high": 1000.0, "units": "HU"}, "pixel_spacing_mm": 5.5,
        "class_names": CLASSES}
SMALL = {
    "spade_gan": {"channels": [16, 16, 8], "z_dim": 4, "spade_hidden": 8},
    "semantic_diffusion": {"channels": [8, 16], "attention_levels": [False, False], "norm_num_groups": 4,
                           "num_head_channels": 8, "spade_hidden": 8, "train_timesteps": 100},
    "pix2pix": {"channels": [8, 16, 32]},
    "cyclegan": {"channels": [8, 16, 32]},
}


def _save(tmp_path, family, name="model.pt"):
    torch.manual_seed(0)
    model = build_model(family, SMALL[family], META)
    path = save_checkpoint(tmp_path / name, family, {"family": family, "model": SMALL[family]},
                           {"model": model.state_dict()}, {**META, **model.meta()})
    return model.eval(), path


def _labels(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros((2, 32, 32), np.int64)
    labels[:, 4:28, 4:28] = 1
    labels[:, 8:16, 6:14] = 2
    labels[:, 16:24, 16:26] = 3
    labels[:, 14:18, 14:18] = rng.integers(0, 5)
    return torch.from_numpy(labels)


@pytest.mark.parametrize("family", ["spade_gan", "semantic_diffusion"])
def test_label_model_reloads_to_identical_outputs(tmp_path, family):
    model, path = _save(tmp_path, family)
    loaded = load_model(path, expected_family=family)
    assert loaded.class_names == CLASSES and loaded.image_size == 32 and loaded.pixel_spacing_mm == 5.5
    assert loaded.window == IntensityWindow(-1000.0, 1000.0, "HU")
    labels = _labels()
    kwargs = {"steps": 3, "guidance": 2.0} if family == "semantic_diffusion" else {}
    first = model.generate(labels, torch.Generator().manual_seed(7), **kwargs)
    second = loaded.generate(labels, torch.Generator().manual_seed(7), **kwargs)
    assert first.shape == (2, 1, 32, 32)
    assert torch.equal(first, second)
    assert float(first.min()) >= -1.0 and float(first.max()) <= 1.0
    # the noise argument reproduces a draw exactly (keeps neighbouring slices consistent)
    noise = torch.randn(loaded.noise_shape(2, 32, 32), generator=torch.Generator().manual_seed(7))
    assert torch.equal(loaded.generate(labels, noise=noise, **kwargs), second)
    other = loaded.generate(labels, torch.Generator().manual_seed(8), **kwargs)
    assert not torch.equal(other, second)  # another noise draw, another image


@pytest.mark.parametrize("family", ["pix2pix", "cyclegan"])
def test_translation_model_reloads_to_identical_outputs(tmp_path, family):
    model, path = _save(tmp_path, family)
    loaded = load_model(path, expected_family=family)
    images = torch.linspace(-1, 1, 2 * 32 * 32).reshape(2, 1, 32, 32)
    assert torch.equal(model.translate(images), loaded.translate(images))


def test_half_precision_export_loads_as_float32(tmp_path):
    from medsynth.generative.training import export_weights

    model, path = _save(tmp_path, "spade_gan")
    shipped = export_weights(path, tmp_path / "shipped.pt", half=True)
    assert shipped.stat().st_size < path.stat().st_size * 0.7
    loaded = load_model(shipped)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    out_full = model.generate(_labels(), torch.Generator().manual_seed(1))
    out_half = loaded.generate(_labels(), torch.Generator().manual_seed(1))
    assert float((out_full - out_half).abs().max()) < 0.05
    assert len(sha256_of(shipped)) == 64


def test_checkpoint_of_another_family_is_refused(tmp_path):
    _, path = _save(tmp_path, "pix2pix")
    with pytest.raises(InputError, match="holds a 'pix2pix' model, not the 'spade_gan'"):
        load_model(path, expected_family="spade_gan")


def test_truncated_checkpoint_names_the_file(tmp_path):
    _, path = _save(tmp_path, "spade_gan")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="model.pt is not a readable MedSynth checkpoint"):
        load_model(path)


def test_garbage_and_foreign_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(InputError, match="garbage.pt is not a readable"):
        load_model(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(InputError, match="not a MedSynth model checkpoint"):
        load_model(foreign)
    pickled = tmp_path / "code.pt"
    pickled.write_bytes(pickle.dumps(IntensityWindow(0, 1)))  # arbitrary objects are never unpickled
    with pytest.raises(InputError, match="code.pt"):
        load_model(pickled)
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_unknown_format_version_is_refused(tmp_path):
    _, path = _save(tmp_path, "spade_gan")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(InputError, match="format version 99"):
        read_checkpoint(path)


def test_edited_weights_are_refused(tmp_path):
    _, path = _save(tmp_path, "spade_gan")
    payload = torch.load(path, weights_only=True)
    payload["config"]["model"]["channels"] = [32, 16, 8]  # no longer fits the stored weights
    torch.save(payload, path)
    with pytest.raises(InputError, match="do not fit"):
        load_model(path)


def test_label_map_errors_are_clear():
    model = build_model("spade_gan", SMALL["spade_gan"], META).eval()
    labels = _labels()
    labels[0, 0, 0] = 7
    with pytest.raises(InputError, match="class index 7.*5 classes"):
        model.generate(labels)
    with pytest.raises(InputError, match="multiples of 2"):
        model.generate(torch.zeros((1, 31, 32), dtype=torch.long))
    with pytest.raises(InputError, match=r"\[B, H, W\]"):
        model.generate(torch.zeros((32, 32), dtype=torch.long))
    with pytest.raises(InputError, match="whole numbers"):
        model.generate(torch.full((1, 32, 32), 0.5))
    with pytest.raises(InputError, match="noise .* must have shape"):
        model.generate(_labels(), noise=torch.zeros(2, 3))
    diffusion = build_model("semantic_diffusion", SMALL["semantic_diffusion"], META).eval()
    with pytest.raises(InputError, match="DDIM steps"):
        diffusion.generate(_labels(), steps=0)
    with pytest.raises(InputError, match="Guidance"):
        diffusion.generate(_labels(), steps=2, guidance=float("nan"))
    with pytest.raises(InputError, match="unknown model settings"):
        build_model("spade_gan", {"chanels": [8, 8]}, META)
    with pytest.raises(InputError, match="Unknown model family"):
        build_model("vae", {}, META)
    translator = build_model("pix2pix", SMALL["pix2pix"], META).eval()
    with pytest.raises(InputError, match=r"\[B, 1, H, W\]"):
        translator.translate(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputError, match="NaN"):
        translator.translate(torch.full((1, 1, 32, 32), float("nan")))


def test_pixel_spacing_must_match_the_training_spacing():
    model = build_model("spade_gan", SMALL["spade_gan"], META)
    model.check_pixel_spacing(5.5)
    model.check_pixel_spacing((5.0, 6.0))  # within 20 %
    with pytest.raises(InputError, match="0.7 mm pixels.*trained on 5.5 mm"):
        model.check_pixel_spacing((0.7, 0.7))
    with pytest.raises(InputError, match="positive"):
        model.check_pixel_spacing(-1)


def test_intensity_window_round_trip():
    window = IntensityWindow.from_dict({"level": 40, "width": 400})
    assert (window.low, window.high) == (-160.0, 240.0)
    hu = np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0])
    unit = window.to_unit(hu)
    np.testing.assert_allclose(unit, [-1, -1, 0, 1, 1])
    np.testing.assert_allclose(window.from_unit(unit)[1:4], hu[1:4])
    assert torch.allclose(window.to_unit(torch.tensor([40.0])), torch.tensor([0.0]))
    with pytest.raises(InputError, match="low < high"):
        IntensityWindow(10, 10)
    with pytest.raises(InputError, match="low/high or level/width"):
        IntensityWindow.from_dict({"center": 1})
