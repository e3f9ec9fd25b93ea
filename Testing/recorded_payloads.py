"""The bytes behind the recorded API answers, built from the fetched real scans (never committed).

Deterministic (stored zips with fixed timestamps), so the sizes and MD5s written in the recorded
JSON files stay true: ``python Testing/recorded_payloads.py`` prints them again.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from pathlib import Path

import numpy as np

LIDC_SERIES_UID = "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192"
#: IDC names objects by CRDC UUIDs; these are stand-ins derived from the DICOM UIDs (uuid5), same shape.
IDC_SERIES_UUID = str(uuid.uuid5(uuid.NAMESPACE_OID, LIDC_SERIES_UID))
ZENODO_RECORD = "7654321"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _stored_zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME), data)
    return buffer.getvalue()


def lidc_files(lidc_dicom_dir: Path) -> list[Path]:
    return sorted(lidc_dicom_dir.glob("*.dcm"))


def tcia_series_zip(lidc_dicom_dir: Path) -> bytes:
    """What NBIA's getImageWithMD5Hash answers: the series' files plus md5hashes.csv."""
    members = [(path.name, path.read_bytes()) for path in lidc_files(lidc_dicom_dir)]
    table = "Filename,MD5Hash\n" + "".join(f"{name},{hashlib.md5(data).hexdigest()}\n" for name, data in members)
    return _stored_zip(members + [("md5hashes.csv", table.encode())])


def idc_objects(lidc_dicom_dir: Path) -> dict[str, bytes]:
    """Bucket key -> bytes, as IDC stores a series: <crdc_series_uuid>/<crdc_instance_uuid>.dcm."""
    import pydicom

    objects = {}
    for path in lidc_files(lidc_dicom_dir):
        sop = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        objects[f"{IDC_SERIES_UUID}/{uuid.uuid5(uuid.NAMESPACE_OID, sop)}.dcm"] = path.read_bytes()
    return objects


def zenodo_files(totalseg_dir: Path) -> dict[str, bytes]:
    """A RAD-ChestCT-style record: a NumPy volume (key 'ct', no geometry) and a zipped DICOM series."""
    from medsynth.io import read_volume

    ct = read_volume(totalseg_dir / "ct_sm.nii.gz").array.astype(np.int16)  # slices first, as RAD-ChestCT
    npy = io.BytesIO()
    np.save(npy, np.ascontiguousarray(ct))
    dicom = sorted((totalseg_dir / "dicom").iterdir())
    return {
        "trn00001.npz": _stored_zip([("ct.npy", npy.getvalue())]),
        "example_ct_dicom.zip": _stored_zip([(f"example_ct_dicom/{p.name}", p.read_bytes()) for p in dicom]),
    }


if __name__ == "__main__":
    from medsynth.data import fetch

    series = fetch("lidc_dicom") / "series"
    print("tcia zip", len(tcia_series_zip(series)), "files", len(lidc_files(series)),
          "dicom bytes", sum(p.stat().st_size for p in lidc_files(series)))
    for name, data in zenodo_files(fetch("totalseg")).items():
        print("zenodo", name, len(data), "md5:" + hashlib.md5(data).hexdigest())
    print("idc uuid", IDC_SERIES_UUID)
