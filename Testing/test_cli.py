"""The medsynth command line on real scans: convert, info, data, errors and exit codes."""

import subprocess
import sys

import numpy as np

from medsynth.cli.main import main
from medsynth.io import read_volume
from medsynth.volume import reorient_like


def test_convert_a_dicom_tree_and_resume(tmp_path, lidc_dicom_dir, lidc_ct, capsys):
    out = tmp_path / "nifti"
    assert main(["convert", str(lidc_dicom_dir.parent), str(out)]) == 0
    converted = read_volume(out / "series.nii.gz")
    np.testing.assert_array_equal(reorient_like(lidc_ct, converted).array, converted.array)
    assert "converted 1" in capsys.readouterr().out
    assert main(["convert", str(lidc_dicom_dir.parent), str(out)]) == 0
    assert "converted 0, already there 1" in capsys.readouterr().out


def test_convert_numpy_needs_spacing_and_reports_failures(tmp_path, capsys):
    source = tmp_path / "in"
    source.mkdir()
    np.save(source / "scan.npy", np.zeros((2, 3, 4), np.int16))
    assert main(["convert", str(source), str(tmp_path / "out")]) == 1
    assert "spacing" in capsys.readouterr().out
    assert main(["convert", str(source), str(tmp_path / "out"), "--spacing", "1", "1", "2"]) == 0
    assert read_volume(tmp_path / "out" / "scan.nii.gz").spacing.tolist() == [1.0, 1.0, 2.0]


def test_info_names_the_organs(lidc_dir, capsys):
    assert main(["info", str(lidc_dir / "ct.nii.gz"), "--labels", str(lidc_dir / "labels.nii.gz"),
                 "--table", str(lidc_dir / "structures.csv")]) == 0
    text = capsys.readouterr().out
    assert "liver" in text and "0.7031" in text


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "medsynth.cli.main", "info", str(tmp_path / "missing.nii.gz")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    assert "lidc" in capsys.readouterr().out
