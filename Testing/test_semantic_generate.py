"""Registry, model cache, inference and `medsynth generate` on the shipped demo GAN and real LIDC labels."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from medsynth.errors import GeometryError, InputError
from medsynth.generative import registry
from medsynth.generative.inference import generate, parse_slices, slice_noise
from medsynth.generative.model_cache import ModelChecksumError

LUNG = range(10, 15)
LIVER = 5
BONE = list(range(25, 51)) + list(range(92, 118))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test gets its own model cache and user registry."""
    monkeypatch.setenv("MEDSYNTH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "config" / "settings.json"))
    from medsynth.generative import inference

    inference._MODELS.clear()


def test_shipped_registry_is_valid_and_current():
    data = json.loads(registry.SHIPPED_REGISTRY.read_text())
    registry.validate_registry(data)
    assert data == registry.build_shipped_registry(write=False), "run: python -m medsynth.generative.registry"
    entry = registry.get_model("spade-ct")
    assert entry.task == "labels_to_ct_slice" and "lung" in entry.classes and entry.licence
    assert "Licence" in entry.describe()


def test_registry_schema_rejects_bad_entries():
    data = json.loads(registry.SHIPPED_REGISTRY.read_text())
    data["models"][0]["task"] = "make coffee"
    del data["models"][0]["sha256"]
    with pytest.raises(InputError, match=r"'make coffee' is not one of.*missing 'sha256'"):
        registry.validate_registry(data)
    maisi = next(m for m in data["models"] if m["id"] == "maisi-ct")
    del maisi["bundle"]  # a model with neither weights nor a bundle cannot run
    with pytest.raises(InputError, match="'maisi-ct': needs 'file'.*or 'bundle'"):
        registry.validate_registry(data)
    with pytest.raises(InputError, match="No model with id 'nope'"):
        registry.get_model("nope")


def test_corrupted_cached_weights_are_repaired_and_a_bad_source_is_a_clear_error(tmp_path):
    entry = registry.get_model("spade-ct")
    cached = entry.weights()
    cached.write_bytes(b"garbage")  # damaged cache copy: copied again from the package
    assert entry.weights().read_bytes()[:2] == b"PK"
    entry.sha256 = "0" * 64  # the file is not the one the registry lists
    shutil.rmtree(cached.parent)
    with pytest.raises(ModelChecksumError, match="corrupted or are not the file"):
        entry.weights()


def test_user_checkpoint_registration_and_tampering(tmp_path):
    source = registry.get_model("spade-ct").source
    mine = tmp_path / "mine.pt"
    shutil.copyfile(source, mine)
    entry = registry.register_checkpoint(mine, "my-gan")
    assert registry.get_model("my-gan").user and entry.classes == registry.get_model("spade-ct").classes
    with pytest.raises(InputError, match="shipped model's id"):
        registry.register_checkpoint(mine, "spade-ct")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable MedSynth checkpoint"):
        registry.register_checkpoint(tmp_path / "junk.pt", "junk")
    registry.get_model("my-gan").weights().write_bytes(b"tampered")
    with pytest.raises(ModelChecksumError):
        registry.load_registered_model("my-gan")


def test_generated_lidc_slab_has_plausible_hu_per_organ_and_stays_on_grid(lidc_labels):
    first, last = 55, 64
    volumes = generate(lidc_labels, "spade-ct", slices=f"{first}..{last}", samples=2, seed=3)
    assert len(volumes) == 2
    ct = volumes[0]
    assert ct.array.shape == (last - first + 1, 512, 512)
    assert np.allclose(ct.spacing, lidc_labels.spacing)
    assert np.allclose(ct.origin, lidc_labels.ijk_to_ras_points(np.array([0, 0, first])))
    labels = lidc_labels.array[first:last + 1]
    lung = np.median(ct.array[np.isin(labels, LUNG)])
    liver = np.median(ct.array[labels == LIVER])
    bone = np.median(ct.array[np.isin(labels, BONE)])
    assert lung < -600 and -100 < liver < 150 and bone > liver + 50, (lung, liver, bone)
    assert ct.metadata.units == "HU" and ct.metadata.extra["synthetic"]
    # two samples: same anatomy, different images
    difference = np.abs(volumes[0].array - volumes[1].array)[labels > 0]
    assert difference.mean() > 1.0
    # neighbouring slices share their noise: a slice differs less from its neighbour than from a far one
    body = labels[4] > 0
    near = np.abs(ct.array[4] - ct.array[5])[body].mean()
    assert near < 200


def test_slices_are_reproducible_whatever_else_is_generated(lidc_labels):
    part = generate(lidc_labels, "spade-ct", slices="60..61", seed=7)[0]
    wider = generate(lidc_labels, "spade-ct", slices="58..63", seed=7)[0]
    assert np.allclose(part.array, wider.array[2:4], atol=1.0)
    later = generate(lidc_labels, "spade-ct", slices="60..61", seed=7, first_sample=1)[0]
    both = generate(lidc_labels, "spade-ct", slices="60..61", seed=7, samples=2)
    assert np.allclose(both[1].array, later.array, atol=1.0) and not np.allclose(both[0].array, later.array, atol=1.0)


def test_noise_is_smooth_between_neighbours_and_unit_variance():
    positions = np.arange(0, 200, 2.5)
    noise = slice_noise((1, 256), positions, 40.0, seed=1).numpy()
    assert abs(noise.std() - 1.0) < 0.15
    neighbours = np.linalg.norm(noise[1:] - noise[:-1], axis=1).mean()
    far = np.linalg.norm(noise[32:] - noise[:-32], axis=1).mean()
    assert neighbours < 0.3 * far


def test_bad_inputs_are_clear_errors(lidc_labels):
    from medsynth.volume import LabelMap, LabelTable

    renamed = LabelMap(lidc_labels.array, lidc_labels.ijk_to_ras, table=LabelTable(dict(lidc_labels.table.names)))
    renamed.table.names[5] = "my liver tumour blob"
    with pytest.raises(InputError, match="my liver tumour blob"):
        generate(renamed, "spade-ct", slices="60")
    unnamed = LabelMap(lidc_labels.array, lidc_labels.ijk_to_ras)
    with pytest.raises(InputError, match="have no names"):
        generate(unnamed, "spade-ct", slices="60")
    empty = LabelMap(np.zeros((2, 8, 8), np.int32), table=LabelTable({1: "liver"}))
    with pytest.raises(InputError, match="empty"):
        generate(empty, "spade-ct")
    with pytest.raises(InputError, match="outside the label map"):
        parse_slices("120..140", 133)
    with pytest.raises(InputError, match="use 'all'"):
        parse_slices("a..b", 133)
    oblique = np.eye(4)
    oblique[:3, :3] = [[0.7071, -0.7071, 0], [0.7071, 0.7071, 0], [0, 0, 1]]
    tilted = LabelMap(np.ones((1, 8, 8), np.int32), oblique @ np.diag([1, 1, 1, 1.0]), table=LabelTable({1: "liver"}))
    tilted.ijk_to_ras = np.array([[0.7, 0, 0.7, 0], [0, 1, 0, 0], [-0.7, 0, 0.7, 0], [0, 0, 0, 1]])
    with pytest.raises(GeometryError, match="oblique"):
        generate(tilted, "spade-ct")
    with pytest.raises(InputError, match="not a label-map model|evaluation segmenter"):
        generate(lidc_labels, "ct-segmenter", slices="60")


def test_generate_command_writes_nifti_png_and_summary(tmp_path, lidc_dir):
    from medsynth.cli.main import main
    from medsynth.io import read_volume

    out = tmp_path / "gen"
    code = main(["generate", "--model", "spade-ct", "--labels", str(lidc_dir / "labels.nii.gz"), "--table",
                 str(lidc_dir / "structures.csv"), "--slices", "60..61", "--samples", "2", "--quiet", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["generation.json", "sample_00.nii.gz", "sample_00.png",
                                                     "sample_01.nii.gz", "sample_01.png"]
    assert read_volume(out / "sample_01.nii.gz").array.shape == (2, 512, 512)
    summary = json.loads((out / "generation.json").read_text())
    assert summary["unknown"] == {} and any("liver" in line for line in summary["class_mapping"])
    assert main(["generate", "--model", "spade-ct", "--labels", str(lidc_dir / "labels.nii.gz"), "--out",
                 str(tmp_path / "x")]) == 2  # no names: a clear error, exit code 2
    assert main(["generate", "--list"]) == 0
