"""``medsynth drr``: a pose sweep on the real CT written as NIfTI, PNG, synthetic-marked DICOM and
JSON; resuming; placing images in the detector plane; and its error messages."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from medsynth.cli.drr_cmd import parse_angles
from medsynth.cli.main import main
from medsynth.drr import detector_volume
from medsynth.errors import InputError
from medsynth.geometry import CArm
from medsynth.io import read_volume


def test_sweep_writes_every_view_with_geometry(lidc_dir, tmp_path, capsys):
    out = tmp_path / "drr"
    argv = [
        "drr", str(lidc_dir / "ct.nii.gz"), "--out", str(out), "--lao=-90:90", "--views", "3", "--cran", "10",
        "--size", "32", "--dual-energy", "--material-images", "--photons", "20000", "--scatter", "--quiet",
    ]
    assert main(argv) == 0
    index = json.loads((out / "views.json").read_text())
    assert index["synthetic"] is True
    folders = [v["folder"] for v in index["views"]]
    assert folders == ["view_000_RAO90_CRAN10", "view_001_LAO0_CRAN10", "view_002_LAO90_CRAN10"]
    first = index["views"][0]
    carm = CArm.from_dict(first["geometry"])
    assert carm.primary_angle == -90.0 and carm.secondary_angle == 10.0
    np.testing.assert_allclose(np.array(first["geometry"]["projection_matrix"]), carm.projection_matrix())
    view = out / folders[1]
    for name in ("log.nii.gz", "intensity.nii.gz", "low_log.nii.gz", "high_log.nii.gz", "bone_log.nii.gz",
                 "area_density_bone.nii.gz", "drr.png", "drr.dcm", "view.json"):
        assert (view / name).exists(), name
    image = read_volume(view / "log.nii.gz")
    assert image.shape_ijk == (32, 32, 1)
    # the NIfTI sits in the detector plane: its centre is the detector centre in RAS
    centre = CArm.from_dict(index["views"][1]["geometry"]).detector_center()
    np.testing.assert_allclose(image.ijk_to_ras_points([15.5, 15.5, 0.0]), centre, atol=1e-3)
    png_window = json.loads((view / "view.json").read_text())["png_window"]
    assert png_window["low"] < png_window["high"]
    # DICOM: calibrated, and unmistakably synthetic
    dataset = pydicom.dcmread(view / "drr.dcm")
    assert "DERIVED" in dataset.ImageType and "SYNTHETIC" in dataset.ImageType
    assert dataset.ConversionType == "SYN" and dataset.ContentQualification == "RESEARCH"
    assert "SYNTHETIC" in str(dataset.PatientName) and "NOT a real radiograph" in dataset.SeriesDescription
    values = dataset.pixel_array * float(dataset.RescaleSlope)
    np.testing.assert_allclose(values, image.array[0], atol=1e-3)
    # running the same command again resumes: nothing is redone
    assert main(argv) == 0
    assert "0 view(s) written, 3 already present" in capsys.readouterr().out


def test_label_materials_and_plastimatch_model_from_the_command_line(lidc_dir, tmp_path):
    out = tmp_path / "labels"
    assert main(["drr", str(lidc_dir / "ct.nii.gz"), "--out", str(out), "--labels", str(lidc_dir / "labels.nii.gz"),
                 "--table", str(lidc_dir / "structures.csv"), "--materials", "vertebrae_*=bone,lung_*=lung",
                 "--size", "16", "--formats", "nifti", "--quiet"]) == 0
    description = json.loads(next(out.glob("view_*/view.json")).read_text())
    assert description["materials"] == ["air", "soft_tissue", "bone", "lung"]
    out = tmp_path / "mono"
    assert main(["drr", str(lidc_dir / "ct.nii.gz"), "--out", str(out), "--plastimatch-model", "--kv", "60",
                 "--size", "16", "--formats", "png", "--quiet"]) == 0
    assert json.loads(next(out.glob("view_*/view.json")).read_text())["materials"] == ["plastimatch_mu"]


def test_bad_command_lines_name_the_fix(lidc_dir, tmp_path, capsys):
    ct = str(lidc_dir / "ct.nii.gz")
    cases = [
        (["--lao", "200", "--preset", "angio"], "mechanical range"),
        (["--sod", "2000"], "Lower SOD"),
        (["--lao=-90:90"], "--views"),
        (["--materials", "rib_*=bone"], "--labels"),
        (["--kv", "300"], "outside"),
        (["--photons", "-3"], "photon count"),
        (["--preset", "portable"], "Choose one of"),
    ]
    for extra, message in cases:
        assert main(["drr", ct, "--out", str(tmp_path / "x"), "--size", "8", "--quiet", *extra]) == 2
        assert message in capsys.readouterr().err, extra
    assert not (tmp_path / "x").exists()


def test_parse_angles():
    assert parse_angles("30", None, "lao") == [30.0]
    assert parse_angles("-90:90", 3, "lao") == [-90.0, 0.0, 90.0]
    assert parse_angles("-90:90:45", None, "lao") == [-90.0, -45.0, 0.0, 45.0, 90.0]
    with pytest.raises(InputError, match="step"):
        parse_angles("0:90:-10", None, "lao")
    with pytest.raises(InputError, match="number"):
        parse_angles("left", None, "lao")


def test_detector_volume_places_pixels_on_the_detector():
    carm = CArm(35.0, -15.0, sid=1000.0, sod=600.0, detector_rows=6, detector_columns=9, pixel_spacing=(2.0, 3.0),
                isocenter=(5.0, -3.0, 8.0))
    volume = detector_volume(carm, np.zeros((6, 9), np.float32))
    assert volume.shape_ijk == (9, 6, 1)
    np.testing.assert_allclose(volume.spacing[:2], [3.0, 2.0])
    for col, row in ((0, 0), (8, 5), (3, 2)):
        np.testing.assert_allclose(volume.ijk_to_ras_points([col, row, 0]), carm.pixel_to_ras(col, row), atol=1e-9)


def test_resumed_noisy_sweep_draws_the_noise_of_an_uninterrupted_one(lidc_dir, tmp_path, capsys):
    """Each view has its own seed: a view made again after the sweep stopped gets exactly its noise."""
    import shutil

    out = tmp_path / "noisy"
    argv = ["drr", str(lidc_dir / "ct.nii.gz"), "--out", str(out), "--lao=0:20", "--views", "3", "--size", "24",
            "--photons", "3000", "--formats", "nifti", "dicom", "--quiet"]
    assert main(argv) == 0
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    before = {p.name: read_volume(p / "intensity.nii.gz").array for p in folders}
    dicom_before = (folders[1] / "drr.dcm").read_bytes()
    for folder in folders[1:]:  # the sweep stopped after its first view
        shutil.rmtree(folder)
    assert main(argv) == 0
    assert "2 view(s) written, 1 already present" in capsys.readouterr().out
    for name, image in before.items():
        np.testing.assert_array_equal(read_volume(out / name / "intensity.nii.gz").array, image)
    assert pydicom.dcmread(out / folders[1].name / "drr.dcm").SOPInstanceUID == pydicom.dcmread(
        pydicom.filebase.DicomBytesIO(dicom_before)).SOPInstanceUID


def test_pose_file_is_the_batch_scripts_format(lidc_dir, tmp_path):
    poses = tmp_path / "poses.json"
    poses.write_text(json.dumps({"defaults": {"secondary": 10}, "poses": [{"name": "AP", "primary": 0}],
                                 "sweep": {"axis": "primary", "start": 30, "stop": 60, "step": 30}}))
    out = tmp_path / "posed"
    assert main(["drr", str(lidc_dir / "ct.nii.gz"), "--out", str(out), "--poses", str(poses), "--size", "16",
                 "--formats", "nifti", "--quiet"]) == 0
    views = json.loads((out / "views.json").read_text())["views"]
    assert [(v["geometry"]["primary_angle"], v["geometry"]["secondary_angle"]) for v in views] == [
        (0.0, 10.0), (30.0, 10.0), (60.0, 10.0)]
