"""TCIA collections through the public NBIA REST API (v1; no desktop app, no account for public data).

Calls used (https://services.cancerimagingarchive.net/nbia-api/services/v1/...):
``getCollectionValues`` (names), ``getSeries?Collection=`` (series rows), ``getSeriesSize`` (object
count) and ``getImageWithMD5Hash?SeriesInstanceUID=`` (a zip of the series' DICOM files with an
``md5hashes.csv`` of every file). Every file is checked against its MD5 and the count against
``getSeriesSize`` before the series is unpacked and converted to NIfTI.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import zipfile
from pathlib import Path, PurePosixPath

from medsynth.data.http import HttpStatusError, download, get_json
from medsynth.data.sources.arrival import convert_series, record
from medsynth.errors import DataFetchError, InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress

DEFAULT_URL = "https://services.cancerimagingarchive.net/nbia-api/services/v1"


def base_url(url: str | None = None) -> str:
    return (url or os.environ.get("MEDSYNTH_TCIA_URL") or DEFAULT_URL).rstrip("/")


def collections(url: str | None = None) -> list[str]:
    """Names of TCIA's public collections."""
    return sorted(row["Collection"] for row in get_json(f"{base_url(url)}/getCollectionValues"))


def check_collection(name: str, url: str | None = None) -> str:
    """The collection's exact name; an unknown name is an error that suggests the nearest ones."""
    known = collections(url)
    by_lower = {n.lower(): n for n in known}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"TCIA has no public collection {name!r}.{hint} "
                     "List them with `medsynth data tcia collections`.")


def series(collection: str, modality: str | None = None, patient_id: str | None = None,
           url: str | None = None) -> list[dict]:
    """The collection's series (NBIA rows: SeriesInstanceUID, Modality, PatientID, ImageCount, ...)."""
    name = check_collection(collection, url)
    rows = get_json(f"{base_url(url)}/getSeries", {"Collection": name, "Modality": modality, "PatientID": patient_id})
    return sorted(rows, key=lambda row: (row.get("PatientID", ""), row["SeriesInstanceUID"]))


def _object_count(uid: str, url: str | None) -> int:
    """How many files the series has; an unknown (or non-public) UID is an input error."""
    rows = get_json(f"{base_url(url)}/getSeriesSize", {"SeriesInstanceUID": uid})
    row = rows[0] if isinstance(rows, list) and rows else rows
    count = row.get("ObjectCount") if isinstance(row, dict) else None
    if count in (None, "") or int(float(count)) == 0:
        raise InputError(f"TCIA has no public series {uid}; copy the SeriesInstanceUID from "
                         "`medsynth data tcia series COLLECTION`.")
    return int(float(count))


def _unpack_verified(archive: Path, destination: Path, expected: int) -> int:
    """Check every DICOM member against md5hashes.csv (and the count), then unpack atomically."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            names = zipped.namelist()
            if "md5hashes.csv" not in names:
                raise DataFetchError(f"{archive.name} has no md5hashes.csv; TCIA's answer was not a "
                                     "getImageWithMD5Hash archive.")
            rows = list(csv.DictReader(io.StringIO(zipped.read("md5hashes.csv").decode("utf-8-sig"))))
            if len(rows) != expected:
                raise DataFetchError(f"{archive.name} holds {len(rows)} files but TCIA lists {expected}.")
            with atomic_output(destination, directory=True) as staging:
                for row in rows:
                    name = PurePosixPath(row["Filename"])
                    if name.is_absolute() or ".." in name.parts:
                        raise DataFetchError(f"{archive.name} has an unsafe member name {name}.")
                    data = zipped.read(str(name))
                    if hashlib.md5(data).hexdigest() != row["MD5Hash"].lower():
                        raise DataFetchError(f"{name} in {archive.name} failed its MD5 check.")
                    (staging / name.name).write_bytes(data)
            return len(rows)
    except zipfile.BadZipFile as error:
        raise DataFetchError(f"{archive.name} is not a complete zip ({error}).") from None


def download_series(uids: list[str], out: str | Path, nifti: bool = True, url: str | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[dict]:
    """Download series by SeriesInstanceUID into OUT (layout: medsynth.data.sources.arrival)."""
    out = Path(out)
    results = []
    for index, uid in enumerate(uids):
        check_cancel(cancel)
        step = sub_progress(progress, index / len(uids), (index + 1) / len(uids))
        dicom = out / "dicom" / uid
        target = out / "nifti" / f"{uid}.nii.gz"
        if not dicom.is_dir():
            expected = _object_count(uid, url)
            archive = out / "downloads" / f"{uid}.zip"
            try:
                download(f"{base_url(url)}/getImageWithMD5Hash?SeriesInstanceUID={uid}", archive,
                         progress=sub_progress(step, 0.0, 0.8), cancel=cancel)
            except HttpStatusError as error:
                raise DataFetchError(f"TCIA refused series {uid} (HTTP {error.status}); check the UID with "
                                     "`medsynth data tcia series COLLECTION` (restricted collections need "
                                     "TCIA's v2 API and an account).") from None
            try:
                _unpack_verified(archive, dicom, expected)
            except DataFetchError:
                archive.unlink(missing_ok=True)  # corrupt: the next run downloads it afresh
                raise
            archive.unlink()
        entry = {"series_uid": uid, "dicom": str(dicom.relative_to(out)), "files": len(list(dicom.iterdir()))}
        if nifti:
            report(step, 0.9, f"{uid[-12:]}: NIfTI")
            path, why = convert_series(dicom, target)
            entry.update(nifti=str(Path(path).relative_to(out)) if path else None, **({"not_converted": why} if why else {}))
        record(out, "tcia", uid, entry)
        results.append(entry)
        report(step, 1.0, f"{uid[-12:]}: done")
    return results


def download_collection(collection: str, out: str | Path, modality: str | None = None,
                        patient_id: str | None = None, limit: int | None = None, nifti: bool = True,
                        url: str | None = None, progress: ProgressCallback | None = None,
                        cancel: CancelToken | None = None) -> list[dict]:
    """Download a collection's series (optionally one modality, one patient, the first ``limit``)."""
    rows = series(collection, modality, patient_id, url)
    if not rows:
        raise InputError(f"TCIA collection {collection!r} has no series with modality={modality} "
                         f"patient={patient_id}; loosen --modality / --patient.")
    uids = [row["SeriesInstanceUID"] for row in rows][: limit or None]
    return download_series(uids, out, nifti, url, progress, cancel)
