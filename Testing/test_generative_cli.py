"""``medsynth dataset ...`` on the real scans, and its errors as exit code 2 with one clear line."""

from __future__ import annotations

import json

import numpy as np
import yaml

from medsynth.cli.main import main


def test_dataset_slices_from_a_yaml_spec_and_flags(tmp_path, totalseg_dir, lidc_dir, capsys):
    spec = {"cases": [{"patient": "small", "ct": str(totalseg_dir / "ct_sm.nii.gz"),
                       "labels": str(totalseg_dir / "seg_sm.nii.gz"), "table": str(lidc_dir / "structures.csv")}],
            "unknown": "soft_tissue", "split_fractions": {"train": 1.0}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "slices"
    assert main(["dataset", "slices", str(out), "--spec", str(path), "--size", "32", "--axis", "coronal",
                 "--classes", "background,soft_tissue,lung,liver,bone", "--map", "aorta=soft_tissue"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["axis"] == "coronal" and manifest["classes"][-1] == "bone"
    assert manifest["counts"]["train"] > 50  # coronal slices through a 101-row CT
    mapping = "\n".join(manifest["cases"][0]["class_mapping"])
    assert "aorta: user mapping" in mapping and "liver: same name" in mapping
    capsys.readouterr()
    assert main(["dataset", "slices", str(tmp_path / "bad"), "--case", "x=" + str(totalseg_dir / "ct_sm.nii.gz")]) == 2
    assert "PATIENT=CT,LABELS" in capsys.readouterr().err
    assert main(["dataset", "slices", str(tmp_path / "bad"), "--spec", str(path), "--classes", "liver,bone"]) == 2
    assert "start with 'background'" in capsys.readouterr().err


def test_dataset_lidc_nodules_writes_a_merged_label_map(tmp_path, lidc_dicom_dir, lidc_dir, capsys):
    from medsynth.io import read_labelmap

    out = tmp_path / "nodules.nii.gz"
    assert main(["dataset", "lidc-nodules", str(lidc_dicom_dir / "069.xml"), "--ct", str(lidc_dir / "ct.nii.gz"),
                 "--labels", str(lidc_dir / "labels.nii.gz"), "--table", str(lidc_dir / "structures.csv"),
                 "--out", str(out)]) == 0
    assert "lung_nodule" in capsys.readouterr().out
    merged = read_labelmap(out)
    original = read_labelmap(lidc_dir / "labels.nii.gz")
    changed = merged.array != original.array
    assert 1000 < changed.sum() < 20000 and np.unique(merged.array[changed]).size == 1
    assert main(["dataset", "lidc-nodules", str(tmp_path / "missing.xml"), "--ct", str(lidc_dir / "ct.nii.gz"),
                 "--labels", str(lidc_dir / "labels.nii.gz"), "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "does not exist" in capsys.readouterr().err
