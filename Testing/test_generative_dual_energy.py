"""Dual-energy pairs from the DRR engine on the real chest CT, and pix2pix trained on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsynth.errors import InputError, NotHUError
from medsynth.generative.datasets import load_split


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, lidc_ct):
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, build_dual_energy_pairs

    spec = DualEnergySpec(poses=12, size=32, val_fraction=0.25, seed=1)
    return build_dual_energy_pairs(lidc_ct, tmp_path_factory.mktemp("pairs") / "pairs", spec, patient="LIDC-IDRI-0001")


def test_pairs_obey_polychromatic_physics(pairs):
    manifest = json.loads((pairs / "manifest.json").read_text())
    assert manifest["kind"] == "medsynth-pairs" and manifest["counts"] == {"val": 3, "train": 9}
    assert (pairs / "preview.png").is_file()
    train = load_split(pairs, "train", "medsynth-pairs")
    source, bone, soft = train["source"], train["bone"], train["soft_tissue"]
    assert source.shape == (9, 32, 32) and bone.shape == source.shape
    # one material alone attenuates less than all of them; because the beam hardens, the materials
    # together attenuate less than the sum of each alone (Chebyshev's inequality on the spectrum)
    assert np.all(source >= np.maximum(bone, soft) - 1e-4)
    assert np.all(source <= bone + soft + train["air"] + 1e-4)  # "air" holds the lungs (HU <= -800)
    assert np.mean(source < bone + soft + train["air"] - 0.01) > 0.5  # beam hardening is visible
    assert bone.max() > 0.5 and soft.max() > 1.0  # the rays cross the spine, ribs and the body
    assert np.mean(bone > 1e-3) > 0.2
    val = load_split(pairs, "val", "medsynth-pairs")
    train_poses = set(zip(train["primary_angle"].round(3), train["secondary_angle"].round(3)))
    assert not train_poses & set(zip(val["primary_angle"].round(3), val["secondary_angle"].round(3)))
    assert manifest["source_window"]["high"] >= np.percentile(source, 99)


def test_pairs_errors(tmp_path, lidc_ct):
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, build_dual_energy_pairs

    with pytest.raises(InputError, match="at least 2 poses"):
        build_dual_energy_pairs(lidc_ct, tmp_path / "one", DualEnergySpec(poses=1))
    with pytest.raises(InputError, match="val_fraction"):
        build_dual_energy_pairs(lidc_ct, tmp_path / "val", DualEnergySpec(val_fraction=1.0))
    not_ct = lidc_ct.with_array(np.full(lidc_ct.array.shape, 100, np.int16), modality="MR")
    with pytest.raises(NotHUError):
        build_dual_energy_pairs(not_ct, tmp_path / "mr", DualEnergySpec(poses=2, size=8))
    assert not list(tmp_path.iterdir())


def test_pix2pix_learns_bone_images(pairs, tmp_path):
    torch = pytest.importorskip("torch")
    from medsynth.generative.checkpoint import load_model
    from medsynth.generative.training import train

    config = {"family": "pix2pix", "data": {"dataset": str(pairs)}, "model": {"channels": [8, 16, 32]},
              "train": {"steps": 30, "batch_size": 4, "lr": 5e-3, "lr_discriminator": 5e-3, "checkpoint_every": 30,
                        "validate_every": 15, "log_every": 1, "val_samples": 3, "threads": 1, "track_emissions": False},
              "output": str(tmp_path / "run")}
    result = train(config)
    l1 = [row["loss_g_l1"] for row in result.history if row["kind"] == "train"]
    assert np.mean(l1[-8:]) < 0.8 * np.mean(l1[:8])
    model = load_model(result.output / "best.pt", expected_family="pix2pix")
    assert model.hparams["target"] == "bone" and model.window.units == "line integral"
    val = load_split(pairs, "val", "medsynth-pairs")
    manifest = json.loads((pairs / "manifest.json").read_text())
    from medsynth.generative.intensity import IntensityWindow

    source = IntensityWindow.from_dict(manifest["source_window"]).to_unit(torch.from_numpy(val["source"]))[:, None]
    out = model.translate(source)
    assert torch.equal(out, load_model(result.output / "best.pt").translate(source))
    with pytest.raises(InputError, match="not 'lung'"):
        train({**config, "model": {**config["model"], "target": "lung"}, "output": str(tmp_path / "lung")})
