"""Reading and writing volumes on real scans, and the errors bad input gets."""

import shutil

import numpy as np
import pydicom
import pytest

from medsynth.errors import DicomError, InputError, MemoryBudgetError, MultipleSeriesError, NotHUError
from medsynth.io import list_dicom_series, read_dicom_series, read_labelmap, read_numpy, read_volume, write_volume
from medsynth.volume import Volume, reorient_like


@pytest.fixture(scope="module")
def lidc_from_dicom(lidc_dicom_dir):
    return read_dicom_series(lidc_dicom_dir)


def test_dicom_series_is_voxel_identical_to_the_nifti(lidc_from_dicom, lidc_ct):
    assert lidc_from_dicom.metadata.modality == "CT"
    assert lidc_from_dicom.metadata.units == "HU"
    assert lidc_from_dicom.array.shape == (133, 512, 512)
    same_axes = reorient_like(lidc_ct, lidc_from_dicom)  # the NIfTI stores rows flipped
    np.testing.assert_array_equal(same_axes.array, lidc_from_dicom.array)
    np.testing.assert_allclose(same_axes.ijk_to_ras, lidc_from_dicom.ijk_to_ras, atol=1e-4)
    # and physically: voxel centres map to the same RAS points without reorienting
    corner = lidc_ct.ijk_to_ras_points([0, 0, 0])
    ijk = lidc_from_dicom.ras_to_ijk_points(corner)
    assert np.allclose(ijk, np.rint(ijk), atol=1e-4)


def test_liver_label_lies_on_the_liver(lidc_ct, lidc_labels):
    lidc_ct.require_same_grid(lidc_labels)
    liver_hu = lidc_ct.array[lidc_labels.mask("liver")]
    assert 40 < liver_hu.mean() < 120  # soft tissue (contrast-enhanced liver parenchyma)
    lung_hu = lidc_ct.array[lidc_labels.mask("lung_upper_lobe_left")]
    assert lung_hu.mean() < -600


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".nii"])
def test_round_trip_is_exact_for_oblique_volumes(tmp_path, suffix):
    angle = np.deg2rad(20)
    rotation = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    array = np.random.default_rng(1).integers(-1000, 2000, (7, 9, 11)).astype(np.int16)
    volume = Volume.from_spacing(array, (0.7, 0.8, 2.5), (-12.5, 40.25, -300.0), rotation)
    path = write_volume(volume, tmp_path / f"oblique{suffix}")
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, array)
    np.testing.assert_allclose(back.ijk_to_ras, volume.ijk_to_ras, atol=1e-5)
    assert not list(tmp_path.glob(".*")), "no temporary file is left behind"


def test_real_ct_round_trips_through_nrrd(tmp_path, lidc_ct):
    back = read_volume(write_volume(lidc_ct, tmp_path / "ct.nrrd"))
    np.testing.assert_array_equal(back.array, lidc_ct.array)
    np.testing.assert_allclose(back.ijk_to_ras, lidc_ct.ijk_to_ras, atol=1e-5)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(DicomError, match="No DICOM image series"):
        read_volume(tmp_path)


def copy_series(source, target, count=None):
    target.mkdir()
    files = sorted(source.glob("*.dcm"))[:count]
    for path in files:
        shutil.copy(path, target / path.name)
    return sorted(target.glob("*.dcm"))


def test_corrupt_dicom_file_is_named(tmp_path, lidc_dicom_dir):
    files = copy_series(lidc_dicom_dir, tmp_path / "s", 5)
    files[2].write_bytes(b"\x00" * 128 + b"DICM" + b"garbage" * 10)
    with pytest.raises(DicomError, match=files[2].name):
        read_dicom_series(tmp_path / "s")


def test_truncated_dicom_file_is_named(tmp_path, lidc_dicom_dir):
    files = copy_series(lidc_dicom_dir, tmp_path / "s", 5)
    data = files[3].read_bytes()
    files[3].write_bytes(data[: len(data) - 20000])
    with pytest.raises(DicomError, match=f"{files[3].name}.*(truncated|corrupt)"):
        read_dicom_series(tmp_path / "s")


def test_missing_slice_is_reported(tmp_path, lidc_dicom_dir):
    files = copy_series(lidc_dicom_dir, tmp_path / "s", 8)
    by_position = sorted(files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    by_position[4].unlink()
    with pytest.raises(DicomError, match="1 slice\\(s\\) missing"):
        read_dicom_series(tmp_path / "s")


def test_unevenly_spaced_series_is_reported(tmp_path, lidc_dicom_dir):
    files = copy_series(lidc_dicom_dir, tmp_path / "s", 6)
    dataset = pydicom.dcmread(files[0])
    position = list(dataset.ImagePositionPatient)
    position[2] = float(position[2]) + 0.9
    dataset.ImagePositionPatient = position
    dataset.save_as(files[0])
    with pytest.raises(DicomError, match="not evenly spaced"):
        read_dicom_series(tmp_path / "s")


def test_several_series_must_be_chosen(tmp_path, lidc_dicom_dir, totalseg_dir):
    folder = tmp_path / "mixed"
    copy_series(lidc_dicom_dir, folder, 4)
    for path in sorted((totalseg_dir / "dicom").iterdir())[:3]:
        shutil.copy(path, folder / path.name)
    with pytest.raises(MultipleSeriesError, match="choose one") as caught:
        read_dicom_series(folder)
    uids = [s.uid for s in caught.value.series]
    assert len(uids) == 2 and uids == [s.uid for s in list_dicom_series(folder)]
    chosen = read_dicom_series(folder, series_uid=uids[0])
    assert chosen.metadata.extra["SeriesInstanceUID"] == uids[0]


def test_non_ct_modality_is_refused_where_hu_is_needed(pydicom_dir, tmp_path):
    folder = tmp_path / "mr"
    folder.mkdir()
    shutil.copy(pydicom_dir / "MR_small.dcm", folder / "MR_small.dcm")
    mr = read_volume(folder)
    assert mr.metadata.modality == "MR"
    with pytest.raises(NotHUError, match="not CT"):
        mr.require_hu()


def test_single_real_ct_slice_reads(pydicom_dir, tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(pydicom_dir / "CT_small.dcm", folder / "CT_small.dcm")
    volume = read_volume(folder)
    assert volume.array.shape[0] == 1 and volume.metadata.modality == "CT"


def test_volume_too_large_for_memory(monkeypatch, lidc_dir):
    monkeypatch.setenv("MEDSYNTH_MEMORY_LIMIT_MB", "10")
    with pytest.raises(MemoryBudgetError, match="GiB"):
        read_volume(lidc_dir / "ct.nii.gz")


def test_numpy_volumes_need_explicit_spacing(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    np.save(tmp_path / "v.npy", array)
    with pytest.raises(InputError, match="spacing"):
        read_volume(tmp_path / "v.npy")
    volume = read_volume(tmp_path / "v.npy", spacing=(0.8, 0.8, 1.5))
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.spacing, [0.8, 0.8, 1.5])
    np.savez(tmp_path / "two.npz", a=array, b=array)
    with pytest.raises(InputError, match="several arrays"):
        read_numpy(tmp_path / "two.npz", spacing=(1, 1, 1))
    ijk = read_numpy(tmp_path / "two.npz", spacing=(1, 1, 1), key="a", axis_order="ijk")
    assert ijk.shape_ijk == array.shape


def test_labelmap_reads_as_integers_with_names(lidc_dir):
    labels = read_labelmap(lidc_dir / "labels.nii.gz", lidc_dir / "structures.csv")
    assert np.issubdtype(labels.array.dtype, np.integer)
    assert labels.table.name(5) == "liver" and 5 in labels.present_labels()


def test_unreadable_file_is_reported(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="broken.nii.gz"):
        read_volume(bad)


def test_a_single_dicom_file_reads_its_own_series(pydicom_dir):
    # pydicom's folder holds a CT and an MR slice: naming a file picks its series
    ct = read_volume(pydicom_dir / "CT_small.dcm")
    mr = read_volume(pydicom_dir / "MR_small.dcm")
    assert ct.metadata.modality == "CT" and mr.metadata.modality == "MR"
