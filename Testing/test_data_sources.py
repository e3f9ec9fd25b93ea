"""Public collections against a local server answering like TCIA, Zenodo and IDC (no internet).

The answers are recorded in the real APIs' shapes (Testing/recorded/README.md); the bytes are the
fetched LIDC-IDRI-0001 series and TotalSegmentator's test CT.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsynth.cli.main import main
from medsynth.data import http
from medsynth.data.sources import idc, tcia, zenodo
from medsynth.errors import DataFetchError, InputError
from medsynth.io import read_volume
from recorded_payloads import LIDC_SERIES_UID, ZENODO_RECORD
from recorded_server import VALID_TOKEN, RecordedServer

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(lidc_dicom_dir, totalseg_dir):
    running = RecordedServer(lidc_dicom_dir, totalseg_dir)
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(http, "BACKOFF_S", 0.0)
    monkeypatch.delenv("ZENODO_TOKEN", raising=False)


@pytest.fixture(scope="module")
def lidc_series(lidc_dicom_dir):
    """The fetched series read directly: what every source's NIfTI must equal, voxel and geometry."""
    from medsynth.io.dicom import read_dicom_series

    return read_dicom_series(lidc_dicom_dir)


def assert_same_volume(path, reference) -> None:
    volume = read_volume(path)
    assert volume.same_grid(reference)
    np.testing.assert_array_equal(volume.array, reference.array)


def test_tcia_lists_collections_and_series(server):
    base = server.url + "tcia"
    assert "LIDC-IDRI" in tcia.collections(base)
    rows = tcia.series("lidc-idri", modality="CT", url=base)  # names are matched case-insensitively
    assert [r["SeriesInstanceUID"] for r in rows] == [LIDC_SERIES_UID] and rows[0]["ImageCount"] == 133
    assert tcia.series("LIDC-IDRI", modality="MR", url=base) == []


def test_tcia_wrong_collection_suggests_the_right_one(server):
    with pytest.raises(InputError, match=r"no public collection 'LIDC-IDR'\. Did you mean LIDC-IDRI\?"):
        tcia.series("LIDC-IDR", url=server.url + "tcia")


def test_tcia_unknown_series_uid_is_named(server, tmp_path):
    with pytest.raises(InputError, match=r"no public series 1\.2\.3; copy the SeriesInstanceUID"):
        tcia.download_series(["1.2.3"], tmp_path, url=server.url + "tcia")


def test_tcia_download_verifies_unpacks_and_converts(server, tmp_path, lidc_series, capsys):
    out = tmp_path / "tcia"
    argv = ["data", "tcia", "--url", server.url + "tcia", "download", "--collection", "LIDC-IDRI",
            "--patient", "LIDC-IDRI-0001", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert "1 items" in capsys.readouterr().out
    assert len(list((out / "dicom" / LIDC_SERIES_UID).glob("*.dcm"))) == 133
    assert not list((out / "downloads").iterdir())  # the zip is removed once unpacked
    assert_same_volume(out / "nifti" / f"{LIDC_SERIES_UID}.nii.gz", lidc_series)
    entry = json.loads((out / "manifest.json").read_text())["items"][LIDC_SERIES_UID]
    assert entry["source"] == "tcia" and entry["files"] == 133 and entry["nifti"].startswith("nifti/")
    before = len(server.requests("/tcia/getImageWithMD5Hash"))
    assert main(argv) == 0  # a second run finds everything done
    assert len(server.requests("/tcia/getImageWithMD5Hash")) == before


def test_dropped_connection_mid_series_resumes_with_a_range_request(server, tmp_path):
    server.drop("/tcia/getImageWithMD5Hash", after=20 * MIB)
    before = len(server.requests("/tcia/getImageWithMD5Hash"))
    tcia.download_series([LIDC_SERIES_UID], tmp_path, nifti=False, url=server.url + "tcia")
    ranges = [r for _, _, r in server.requests("/tcia/getImageWithMD5Hash")[before:]]
    assert ranges == [None, f"bytes={20 * MIB}-"]
    assert len(list((tmp_path / "dicom" / LIDC_SERIES_UID).glob("*.dcm"))) == 133  # every MD5 matched


def test_a_download_that_keeps_failing_resumes_on_the_next_run(server, tmp_path, monkeypatch):
    monkeypatch.setattr(http, "RETRIES", 1)
    server.drop("/tcia/getImageWithMD5Hash", after=10 * MIB, times=2)
    with pytest.raises(DataFetchError, match="run the same command again to resume"):
        tcia.download_series([LIDC_SERIES_UID], tmp_path, nifti=False, url=server.url + "tcia")
    partial = tmp_path / "downloads" / f"{LIDC_SERIES_UID}.zip.partial"
    assert partial.stat().st_size == 20 * MIB
    before = len(server.requests("/tcia/getImageWithMD5Hash"))
    tcia.download_series([LIDC_SERIES_UID], tmp_path, nifti=False, url=server.url + "tcia")
    assert server.requests("/tcia/getImageWithMD5Hash")[before][2] == f"bytes={20 * MIB}-"
    assert not partial.exists() and (tmp_path / "dicom" / LIDC_SERIES_UID).is_dir()


def test_a_corrupt_file_fails_its_md5_and_nothing_is_kept(server, tmp_path):
    import io
    import zipfile

    original = server.state.files["tcia"]
    corrupt = io.BytesIO()  # a well-formed zip whose 10th file is not the one md5hashes.csv describes
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(corrupt, "w") as target:
        for number, name in enumerate(source.namelist()):
            data = bytearray(source.read(name))
            if number == 9:
                data[-1] ^= 0xFF
            target.writestr(name, bytes(data))
    server.state.files["tcia"] = corrupt.getvalue()
    try:
        with pytest.raises(DataFetchError, match="failed its MD5 check"):
            tcia.download_series([LIDC_SERIES_UID], tmp_path, nifti=False, url=server.url + "tcia")
    finally:
        server.state.files["tcia"] = original
    assert not (tmp_path / "dicom" / LIDC_SERIES_UID).exists()
    assert not list((tmp_path / "downloads").iterdir())


def test_zenodo_token_problems_are_one_line_errors(server, tmp_path, monkeypatch, capsys):
    base = server.url + "zenodo"
    with pytest.raises(InputError, match="refused the access token .*expired.*--token or ZENODO_TOKEN"):
        zenodo.record_files(ZENODO_RECORD, token="expired-token", url=base)
    with pytest.raises(InputError, match="is restricted .*request access"):
        zenodo.record_files(ZENODO_RECORD, url=base)
    with pytest.raises(InputError, match="no record 999"):
        zenodo.record_files("999", token=VALID_TOKEN, url=base)
    monkeypatch.setenv("ZENODO_TOKEN", "expired-token")
    assert main(["data", "zenodo", "--url", base, "download", ZENODO_RECORD, "--out", str(tmp_path), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "expired" in error and "expired-token" not in error


def test_zenodo_download_checks_md5_and_converts_numpy_and_dicom(server, tmp_path, totalseg_dir, monkeypatch):
    monkeypatch.setenv("ZENODO_TOKEN", VALID_TOKEN)
    server.drop(f"/zenodo/records/{ZENODO_RECORD}/files/example_ct_dicom.zip", after=MIB)
    assert main(["data", "zenodo", "--url", server.url + "zenodo", "download", ZENODO_RECORD, "--out", str(tmp_path),
                 "--spacing", "0.8", "0.8", "0.8", "--quiet"]) == 0
    npz = read_volume(tmp_path / "nifti" / "trn00001.nii.gz")
    reference = read_volume(totalseg_dir / "ct_sm.nii.gz").array
    assert npz.array.shape == reference.shape and np.allclose(npz.spacing, 0.8)
    np.testing.assert_array_equal(npz.array, reference.astype(np.int16))
    dicom = read_volume(tmp_path / "nifti" / "example_ct_dicom" / "example_ct_dicom.nii.gz")
    assert dicom.array.shape[0] == 20
    manifest = json.loads((tmp_path / "manifest.json").read_text())["items"]
    assert manifest[f"{ZENODO_RECORD}/trn00001.npz"]["checksum"] == "md5:80e353d52a93672f30059d24096bb39f"
    ranges = [r for _, _, r in server.requests(f"/zenodo/records/{ZENODO_RECORD}/files/example_ct_dicom.zip")]
    assert ranges[-2:] == [None, f"bytes={MIB}-"]


def test_idc_collection_names_and_wrong_names(server):
    base = server.url + "idc"
    assert "lidc_idri" in idc.collections(base)
    assert idc.check_collection("LIDC-IDRI", base) == "lidc_idri"
    with pytest.raises(InputError, match=r"no collection 'lidc_idr'\. Did you mean lidc_idri\?"):
        idc.series("lidc_idr", url=base)


def test_idc_download_lists_the_bucket_in_pages_and_converts(server, tmp_path, lidc_series):
    bucket = server.url + "s3/{bucket}"
    rows = idc.series("lidc_idri", modality="CT", url=server.url + "idc")
    assert rows[0]["SeriesInstanceUID"] == LIDC_SERIES_UID and rows[0]["aws_bucket"] == "idc-open-data"
    first_key = sorted(server.state.s3["idc-open-data"])[0]
    server.drop(f"/s3/idc-open-data/{first_key}", after=100_000)
    assert main(["data", "idc", "--url", server.url + "idc", "--bucket-url", bucket, "download", "lidc_idri",
                 "--series", LIDC_SERIES_UID, "--out", str(tmp_path), "--quiet"]) == 0
    listings = [path for _, path, _ in server.requests("/s3/idc-open-data/") if "list-type=2" in path]
    assert len(listings) == 2 and "continuation-token=100" in listings[1]  # 133 keys, pages of 100
    assert [r for _, _, r in server.requests(f"/s3/idc-open-data/{first_key}")][-1] == "bytes=100000-"
    assert_same_volume(tmp_path / "nifti" / f"{LIDC_SERIES_UID}.nii.gz", lidc_series)


def test_download_removes_a_file_that_fails_its_checksum(server, tmp_path):
    url = f"{server.url}zenodo/records/{ZENODO_RECORD}/files/trn00001.npz/content"
    target = tmp_path / "trn00001.npz"
    with pytest.raises(DataFetchError, match="failed its MD5 check .*run the command again"):
        http.download(url, target, headers={"Authorization": f"Bearer {VALID_TOKEN}"},
                      checksum=http.Checksum("md5", "0" * 32))
    assert not target.exists() and not (tmp_path / "trn00001.npz.partial").exists()
    assert http.redact("https://x/api?access_token=secret&q=1") == "https://x/api?access_token=%2A%2A%2A&q=1"
