"""Single-energy DRR -> bone with the shipped pix2pix demo model; label inputs from Slicer files."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.errors import InputError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "config" / "settings.json"))


@pytest.fixture(scope="module")
def drr_pair(lidc_ct, tmp_path_factory):
    """A held-out pose (seed never used in training) of LIDC-IDRI-0001: single-energy DRR and physical bone image."""
    from medsynth.generative.datasets.dual_energy import DualEnergySpec, build_dual_energy_pairs

    folder = build_dual_energy_pairs(lidc_ct, tmp_path_factory.mktemp("pairs") / "pairs",
                                     DualEnergySpec(poses=2, size=64, seed=4242, val_fraction=0.5))
    data = np.load(folder / "val.npz")
    return data["source"][0], data["bone"][0], float(data["pixel_spacing_mm"][0])


def test_pix2pix_predicts_the_physical_bone_image_better_than_the_input(drr_pair):
    from medsynth.generative.inference import translate
    from medsynth.generative.metrics import image_metrics
    from medsynth.volume import Volume

    source, bone, pixel = drr_pair
    image = Volume.from_spacing(source[None], (pixel, pixel, 1.0))
    predicted = translate(image, "pix2pix-bone")
    assert predicted.same_grid(image) and predicted.metadata.units == "line integral"
    data_range = (0.0, float(np.percentile(bone, 99.9)) * 1.05)
    model = image_metrics(predicted.array[0], bone, data_range)
    identity = image_metrics(np.clip(source, *data_range), bone, data_range)
    assert model["psnr"] > identity["psnr"] + 3 and model["ssim"] > identity["ssim"], (model, identity)
    # a DRR on a finer detector is resampled to the model's grid and back
    fine = Volume.from_spacing(np.kron(source, np.ones((2, 2)))[None], (pixel / 2, pixel / 2, 1.0))
    assert translate(fine, "pix2pix-bone").array.shape == (1, 128, 128)


def test_translate_bad_inputs(drr_pair, lidc_ct):
    from medsynth.generative.inference import translate
    from medsynth.volume import Volume

    source, _, pixel = drr_pair
    with pytest.raises(InputError, match="one 2D image"):
        translate(lidc_ct, "pix2pix-bone")
    with pytest.raises(InputError, match="image-to-image model"):
        translate(Volume.from_spacing(source[None], (pixel, pixel, 1.0)), "spade-ct")
    broken = source.copy()
    broken[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        translate(Volume.from_spacing(broken[None], (pixel, pixel, 1.0)), "pix2pix-bone")


def test_seg_nrrd_and_color_table_inputs_keep_their_names(tmp_path, mrml_scene, lidc_labels):
    from medsynth.io.label_files import read_color_table, read_labels
    from medsynth.io import write_volume
    from medsynth.mrml import labelmap_to_segmentation, save_node
    from medsynth.volume import LabelMap

    small = LabelMap(lidc_labels.array[60:62], lidc_labels.ijk_to_ras, table=lidc_labels.table)
    segmentation = labelmap_to_segmentation(small, name="small")
    save_node(segmentation, str(tmp_path / "small.seg.nrrd"))
    labels = read_labels(tmp_path / "small.seg.nrrd")
    assert "liver" in labels.table and labels.present_labels()
    table = tmp_path / "colors.txt"
    table.write_text("# value name r g b a\n0 background 0 0 0 0\n5 liver 200 100 80 255\n")
    write_volume(small, tmp_path / "small.nii.gz")
    assert read_color_table(table).names == {5: "liver"}
    assert read_labels(tmp_path / "small.nii.gz", table).table.name(5) == "liver"
    (tmp_path / "bad.txt").write_text("five liver\n")
    with pytest.raises(InputError, match="value name r g b a"):
        read_color_table(tmp_path / "bad.txt")


def test_generate_command_translates_a_drr_file(tmp_path, drr_pair):
    from medsynth.cli.main import main
    from medsynth.io import read_volume, write_volume
    from medsynth.volume import Volume

    source, _, pixel = drr_pair
    write_volume(Volume.from_spacing(source[None], (pixel, pixel, 1.0)), tmp_path / "drr.nii.gz")
    out = tmp_path / "bone"
    assert main(["generate", "--model", "pix2pix-bone", "--image", str(tmp_path / "drr.nii.gz"), "--quiet",
                 "--out", str(out)]) == 0
    assert read_volume(out / "translated.nii.gz").array.shape == (1, 64, 64)
    assert (out / "translated.png").stat().st_size > 0
    assert main(["generate", "--model", "pix2pix-bone", "--out", str(out)]) == 2  # no input: clear error
