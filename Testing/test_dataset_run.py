"""A small recipe on the real LIDC CT: images, projected masks, manifest, DICOM, resume, bad inputs."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from dataset_cases import write_recipe, write_small_lidc
from medsynth.errors import InputError


@pytest.fixture(scope="module")
def small_lidc(lidc_dir, tmp_path_factory):
    return write_small_lidc(lidc_dir, tmp_path_factory.mktemp("small_lidc"))


@pytest.fixture(scope="module")
def made(small_lidc, tmp_path_factory):
    from medsynth.dataset import load_recipe, run_local

    recipe = load_recipe(write_recipe(small_lidc, views=2))
    out = tmp_path_factory.mktemp("dataset")
    return recipe, out, run_local(recipe, out)


def test_recipe_makes_images_masks_and_manifest(made):
    import pyarrow.parquet as pq

    from medsynth.io import read_volume

    recipe, out, summary = made
    assert (summary.planned, summary.made, summary.failed) == (4, 4, {})
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    assert [row["item"] for row in table] == ["lidc/original/view_0000", "lidc/original/view_0001",
                                              "lidc/variant_000/view_0000", "lidc/variant_000/view_0001"]
    document = json.loads((out / "manifest.json").read_text())
    def present(rows):  # Parquet has every column in every row (None where a row has no such key)
        return [{key: value for key, value in row.items() if value is not None} for row in rows]

    assert document["complete"] and present(document["rows"]) == present(table)
    for row in table:
        assert len(row["ct_sha256"]) == 64 and row["labels_sha256"] and row["medsynth_version"]
        assert row["drr.detector_rows"] == 48 and row["drr.add_noise"] and row["seed"] == row["drr.seed"]
        log = read_volume(out / row["file.log"]).array[0]
        tumor = read_volume(out / row["file.mask.tumor"]).array[0]
        liver = read_volume(out / row["file.mask.liver"]).array[0]
        assert log.shape == tumor.shape == (48, 48) and log.max() > 1.0
        assert liver.sum() > 50 and row["pixels.liver"] == liver.sum()
        if row["variant"] == "original":
            assert tumor.sum() == 0 and row["tumors"] == 0
        else:  # the tumors lie in the liver, so their projection lies in the liver's
            assert tumor.sum() > 5 and row["tumors"] == 2 and row["tumor.tumor_type"] == "medium"
            assert (tumor & liver).sum() / tumor.sum() > 0.95
            density = read_volume(out / row["file.density.tumor"]).array[0]
            assert density[tumor > 0].min() > 0 and density[tumor == 0].max() < 0.2
        # the manifest's 3x4 matrix maps the isocenter onto the detector centre
        matrix = np.array(row["projection_matrix"]).reshape(3, 4)
        iso = np.array([row["drr.pose.isocenter_r"], row["drr.pose.isocenter_a"], row["drr.pose.isocenter_s"], 1.0])
        u, v, w = matrix @ iso
        assert (u / w, v / w) == pytest.approx((23.5, 23.5), abs=1e-6)
    # paired views: the variant is seen from the original's poses, with its own noise seed
    assert table[0]["projection_matrix"] == table[2]["projection_matrix"] and table[0]["seed"] != table[2]["seed"]
    assert (out / "contact_sheet.png").stat().st_size > 1000


def test_dicom_is_synthetic_and_de_identified(made):
    import pydicom

    _recipe, out, _summary = made
    ds = pydicom.dcmread(out / "lidc/variant_000/view_0000/drr.dcm")
    assert "DERIVED" in ds.ImageType and ds.ConversionType == "SYN" and ds.PatientIdentityRemoved == "YES"
    assert ds.PatientName == "SYNTHETIC^DRR" and ds.StudyDate == "" and ds.get("PatientBirthDate", "") == ""
    other = pydicom.dcmread(out / "lidc/variant_000/view_0001/drr.dcm")
    assert ds.SOPInstanceUID != other.SOPInstanceUID


def test_rerun_skips_everything_and_keeps_files(made):
    from medsynth.dataset import run_local

    recipe, out, _summary = made
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii")}
    summary = run_local(recipe, out)
    assert (summary.made, summary.skipped) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.nii")} == before


def test_keep_identifiers_is_an_opt_in(lidc_dicom_dir, tmp_path):
    import pydicom

    from medsynth.dataset import recipe_from_dict, run_local

    document = {"cases": [{"name": "lidc", "ct": str(lidc_dicom_dir)}], "drr": {"detector_pixels": 16},
                "output": {"formats": ["dicom"], "keep_identifiers": True, "contact_sheet": 0}}
    run_local(recipe_from_dict(document, tmp_path), tmp_path / "kept")
    ds = pydicom.dcmread(tmp_path / "kept/lidc/original/view_0000/drr.dcm")
    source = pydicom.dcmread(sorted(lidc_dicom_dir.glob("*.dcm"))[0], stop_before_pixels=True)
    assert ds.PatientID == source.PatientID and ds.PatientIdentityRemoved == "NO"
    assert ds.SOPInstanceUID != source.SOPInstanceUID


def test_label_map_on_another_grid_fails_before_any_output(small_lidc, tmp_path):
    from medsynth.dataset import load_recipe, run_local
    from medsynth.io import read_labelmap, write_volume
    from medsynth.volume import LabelMap

    labels = read_labelmap(small_lidc / "labels.nii.gz")
    write_volume(LabelMap(np.ascontiguousarray(labels.array[:, :, ::2]), labels.ijk_to_ras @ np.diag([2.0, 1, 1, 1])),
                 tmp_path / "coarse.nii.gz")
    text = write_recipe(small_lidc).read_text().replace("labels: labels.nii.gz", f"labels: {tmp_path / 'coarse.nii.gz'}")
    (tmp_path / "recipe.yaml").write_text(text.replace("ct.nii.gz", str(small_lidc / "ct.nii.gz"))
                                          .replace("structures.csv", str(small_lidc / "structures.csv")))
    with pytest.raises(InputError, match=r"case lidc: the label map coarse.nii.gz .* not on the CT's grid.*resample"):
        run_local(load_recipe(tmp_path / "recipe.yaml"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_full_disk_names_the_item_and_keeps_the_others(small_lidc, tmp_path, monkeypatch):
    import medsynth.io
    from medsynth.dataset import load_recipe, run_local
    from medsynth.dataset.runner import raise_failures

    real = medsynth.io.write_volume

    def full_disk(volume, path, compress=True):
        if "view_0001" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(volume, path, compress)

    monkeypatch.setattr(medsynth.io, "write_volume", full_disk)
    summary = run_local(load_recipe(write_recipe(small_lidc, views=2)), tmp_path / "out")
    assert summary.made == 2 and sorted(summary.failed) == ["lidc/original/view_0001", "lidc/variant_000/view_0001"]
    with pytest.raises(InputError, match=r"lidc/original/view_0001: the disk is full .* finished items are kept"):
        raise_failures(summary)
    assert not list((tmp_path / "out").rglob("*.partial")) and not (tmp_path / "out/lidc/original/view_0001").exists()
    assert json.loads((tmp_path / "out/manifest.json").read_text())["complete"] is False


def test_command_line_runs_a_recipe_and_reports_bad_keys(made, tmp_path, capsys):
    from medsynth.cli.main import main

    recipe, out, _summary = made
    assert main(["dataset", "run", str(recipe.source), "--out", str(out), "--quiet"]) == 0
    assert "0 image(s) made, 4 already done, 0 failed of 4" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.source.read_text().replace("views:", "veiws:"))
    assert main(["dataset", "run", str(bad), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "unknown key 'veiws'; did you mean 'views'?" in error
    assert main(["dataset", "schema"]) == 0 and '"MedSynth dataset recipe"' in capsys.readouterr().out


def test_model_stage_translates_every_view(small_lidc, tmp_path):
    """The optional model stage: each view's -log image through the shipped pix2pix bone model."""
    pytest.importorskip("torch")
    from medsynth.dataset import load_recipe, run_local
    from medsynth.io import read_volume

    path = write_recipe(small_lidc, views=1, extra="model: {id: pix2pix-bone}\n")
    text = path.read_text().replace("detector_pixels: 48", "detector_pixels: 64")
    path.write_text(text.replace("keep_original: true", "keep_original: false"))
    summary = run_local(load_recipe(path), tmp_path / "out")
    assert summary.made == 1 and not summary.failed
    row = json.loads((tmp_path / "out/lidc/variant_000/view_0000/item.json").read_text())
    bone = read_volume(tmp_path / "out" / row["file.model.pix2pix-bone"]).array[0]
    log = read_volume(tmp_path / "out" / row["file.log"]).array[0]
    assert bone.shape == log.shape == (64, 64) and np.isfinite(bone).all()
    # a bone-only image: below the full line integral, and brightest where the full image is
    assert bone.mean() < log.mean() and np.corrcoef(bone.ravel(), log.ravel())[0, 1] > 0.5
    with pytest.raises(InputError, match="recipe.model.id: 'spade-ct' is a .* image-to-image"):
        load_recipe(write_recipe(small_lidc, views=1, extra="model: {id: spade-ct}\n"))


def test_impossible_pose_fails_its_item_alone(small_lidc, tmp_path, capsys):
    """A drawn pose whose source would lie inside the CT fails by name; the other views are made."""
    from medsynth.cli.main import main

    (tmp_path / "recipe.yaml").write_text(
        f"cases: [{{name: lidc, ct: {small_lidc / 'ct.nii.gz'}}}]\n"
        "drr: {views: 6, detector_pixels: 16, primary: [-90, 90], isocenter_jitter_mm: 60,\n"
        "      parameters: {pose: {sod: 200}}}\n"
        "output: {contact_sheet: 0}\n")
    assert main(["dataset", "run", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "5 image(s) made, 0 already done, 1 failed of 6" in captured.out
    error = captured.err.strip()
    assert error.count("\n") == 0 and "lidc/original/view_0001: The X-ray source" in error
    assert "Increase SOD" in error and "the other items are done and kept" in error
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert len(manifest["rows"]) == 5 and list(manifest["failed"]) == ["lidc/original/view_0001"]


def test_joining_a_running_scheduler_writes_what_a_local_run_writes(made, tmp_path):
    """--scheduler: the items run on an existing Dask cluster; every file equals the local run's."""
    from distributed import LocalCluster

    from medsynth.dataset.distributed import run_dask

    recipe, out, _summary = made
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        summary = run_dask(recipe, tmp_path / "joined", scheduler=cluster.scheduler_address)
    assert summary.made == 4 and summary.dashboard

    def files(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert files(tmp_path / "joined") == files(out)


def test_a_folder_that_is_not_a_dataset_is_never_touched(small_lidc, tmp_path):
    from medsynth.dataset import load_recipe, run_local
    from medsynth.dataset.runner import remove_partials

    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / ".settings.json").write_text("{}")
    with pytest.raises(InputError, match="is not empty and holds no dataset"):
        run_local(load_recipe(write_recipe(small_lidc, views=1)), tmp_path)
    assert remove_partials(tmp_path) == 0 and (tmp_path / ".settings.json").exists()
    (tmp_path / ".manifest.ab12cd34.json").write_text("half")
    (tmp_path / "case" / "original" / ".view_0001.x1y2z3w4.partial").mkdir(parents=True)
    assert remove_partials(tmp_path) == 2 and (tmp_path / "notes.txt").exists()


def test_manifest_without_pyarrow_is_json_alone(made, monkeypatch):
    """A core install (no 'distributed' extra) still gets the full manifest, as JSON."""
    import sys

    from medsynth.dataset.manifest import write_manifest
    from medsynth.dataset.plan import plan

    recipe, out, _summary = made
    before = (out / "manifest.json").read_bytes()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    parquet, json_path, rows = write_manifest(out, recipe, plan(recipe))
    assert parquet is None and rows == 4 and json_path.read_bytes() == before
