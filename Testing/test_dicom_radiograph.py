"""A 2D radiograph given where a CT is expected is named as such (issue 14), not answered with
another series of its folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from medsynth.errors import DicomError
from medsynth.io import read_volume

ROOT = Path(__file__).resolve().parents[1]
DIGITAL_XRAY_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"


def make_radiograph(ct_slice: Path, out: Path) -> Path:
    """pydicom's real CT slice turned into a DX radiograph: its own series, no patient position."""
    dataset = pydicom.dcmread(ct_slice)
    dataset.Modality = "DX"
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = DIGITAL_XRAY_STORAGE
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.ImagerPixelSpacing = dataset.PixelSpacing
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "SliceLocation", "SliceThickness", "PixelSpacing"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.save_as(out)
    return out


@pytest.fixture
def folder_with_radiograph_and_ct(pydicom_dir, tmp_path) -> Path:
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(pydicom_dir / "CT_small.dcm", folder / "CT_small.dcm")  # an unrelated CT series beside it
    make_radiograph(pydicom_dir / "CT_small.dcm", folder / "chest_dx.dcm")
    return folder


def test_a_radiograph_file_says_a_ct_series_is_needed(folder_with_radiograph_and_ct):
    with pytest.raises(DicomError) as raised:
        read_volume(folder_with_radiograph_and_ct / "chest_dx.dcm", modality="CT")
    message = str(raised.value)
    assert "chest_dx.dcm is a 2D radiograph (DX, digital X-ray), not a CT" in message
    assert "A CT series is needed" in message and "CT_small" not in message and "\n" not in message


def test_a_folder_with_only_radiographs_says_so(pydicom_dir, tmp_path):
    make_radiograph(pydicom_dir / "CT_small.dcm", tmp_path / "dx.dcm")
    with pytest.raises(DicomError, match="holds no CT series: dx.dcm is a 2D radiograph"):
        read_volume(tmp_path, modality="CT")


def test_the_ct_beside_a_radiograph_still_reads(folder_with_radiograph_and_ct):
    ct = read_volume(folder_with_radiograph_and_ct / "CT_small.dcm")
    assert ct.metadata.modality == "CT" and ct.array.shape[0] == 1


def test_the_drr_batch_script_exits_2_naming_the_radiograph(folder_with_radiograph_and_ct, tmp_path):
    pytest.importorskip("slicer")
    poses = tmp_path / "poses.json"
    poses.write_text('[{"name": "AP"}]')
    result = subprocess.run([sys.executable, str(ROOT / "DRRProjection" / "Batch" / "DRRProjectionBatch.py"),
                             "--ct", str(folder_with_radiograph_and_ct / "chest_dx.dcm"), "--poses", str(poses),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "is a 2D radiograph (DX, digital X-ray), not a CT. A CT series is needed" in result.stderr


def test_a_radiograph_node_given_to_the_drr_logic_says_a_ct_is_needed(pydicom_dir, tmp_path):
    """In Slicer the DICOM browser loads a DX as a one-slice volume node: the DRR logic names it too."""
    pytest.importorskip("slicer")
    from medsynth.errors import NotHUError
    from medsynth.module_logic.drr import DRRLogic, looks_like_ct
    from medsynth.mrml import volume_to_node

    dataset = pydicom.dcmread(make_radiograph(pydicom_dir / "CT_small.dcm", tmp_path / "dx.dcm"))
    ct = read_volume(pydicom_dir / "CT_small.dcm")
    ct.metadata.modality = str(dataset.Modality)
    node = volume_to_node(ct, name="chest DX")
    assert not looks_like_ct(node)  # never pre-selected as the CT
    with pytest.raises(NotHUError, match=r"2D radiograph \(DX, digital X-ray\), not a CT. A CT series is needed"):
        DRRLogic().ct_volume(node)
