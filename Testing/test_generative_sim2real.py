"""The CycleGAN simulated -> real recipe end to end on a tiny folder of "real" radiographs (PNG + DICOM):
DRRs rendered, unpaired set built, CycleGAN trained, registered and used by translate()."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.errors import InputError  # noqa: E402

TINY = {"simulated": {"poses": 6, "size": 32, "photons": 5000}, "unpaired": {"size": 32},
        "model": {"channels": [8, 16, 32]},
        "train": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "validate_every": 2, "val_samples": 2,
                  "log_every": 1, "track_emissions": False}}


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory, totalseg_dir):
    """Four radiograph-like images of another patient (blurred, 8-bit PNG and one DICOM), as a user would bring."""
    import pydicom
    from PIL import Image
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    from scipy import ndimage

    from medsynth.generative.sim2real import simulated_radiographs

    folder = tmp_path_factory.mktemp("real")
    images = simulated_radiographs({"ct": totalseg_dir / "ct_sm.nii.gz", "poses": 4, "size": 48, "preset": "mobile",
                                    "spectrum": "120kV", "photons": None, "seed": 5})
    for index, image in enumerate(images):
        image = ndimage.gaussian_filter(image, 1.5)
        scaled = (255 * (image - image.min()) / (np.ptp(image) + 1e-6)).astype(np.uint8)
        if index < 3:
            Image.fromarray(scaled).save(folder / f"xray_{index}.png")
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / "xray_3.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "DX", "MONOCHROME2", 1
        ds.Rows, ds.Columns = scaled.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = scaled.astype(np.uint16).tobytes()
        ds.save_as(folder / "xray_3.dcm", enforce_file_format=True)
    return folder


def test_sim_to_real_recipe_trains_registers_and_translates(real_folder, tmp_path, monkeypatch):
    from medsynth.cli.main import main
    from medsynth.generative.inference import translate
    from medsynth.generative.registry import get_model
    from medsynth.generative.sim2real import load_recipe, train_sim_to_real
    from medsynth.volume import Volume, VolumeMetadata

    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "settings" / "settings.json"))
    monkeypatch.setenv("MEDSYNTH_MODELS", str(tmp_path / "models"))
    summary = train_sim_to_real(real_folder, tmp_path / "run", load_recipe(TINY), register_as="my-sim2real")
    assert summary["steps"] == 4 and summary["registered"] == "my-sim2real"
    manifest = json.loads((tmp_path / "run" / "unpaired" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["train"]["a"] + counts["val"]["a"] == 6  # six simulated poses
    assert counts["train"]["b"] + counts["val"]["b"] == 4  # the four real images (PNG + DICOM)
    assert get_model("my-sim2real").task == "sim_to_real_radiograph"
    drr = np.load(tmp_path / "run" / "unpaired" / "val.npz")["a"][0]
    image = Volume(drr[None].astype(np.float32), np.diag([0.5, 0.5, 1.0, 1.0]), VolumeMetadata(modality="DX"))
    result = translate(image, "my-sim2real")
    assert result.array.shape == image.array.shape and np.isfinite(result.array).all()
    assert result.metadata.extra["synthetic"]
    # the command line resumes the same run with the same recipe: more steps continue from the last checkpoint
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(load_recipe(TINY)))
    code = main(["train", "--sim-to-real", str(real_folder), "--recipe", str(recipe), "--out", str(tmp_path / "run"),
                 "--steps", "6", "--quiet"])
    assert code == 0
    assert json.loads((tmp_path / "run" / "run" / "summary.json").read_text())["steps"] == 6


def test_sim_to_real_errors(tmp_path):
    from medsynth.cli.main import main
    from medsynth.generative.sim2real import load_recipe, train_sim_to_real

    with pytest.raises(InputError, match="not a folder"):
        train_sim_to_real(tmp_path / "nothing", tmp_path / "out", load_recipe(TINY))
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.png").write_bytes(b"")
    with pytest.raises(InputError, match="fewer than 2 radiographs"):
        train_sim_to_real(tmp_path / "one", tmp_path / "out", load_recipe(TINY))
    with pytest.raises(InputError, match="Unknown sim-to-real recipe section"):
        load_recipe({"optimizer": {}})
    assert main(["train", "--sim-to-real", str(tmp_path / "one")]) == 2  # --out missing: a one-line error
