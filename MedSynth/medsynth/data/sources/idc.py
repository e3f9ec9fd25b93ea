"""NCI Imaging Data Commons (IDC) through its documented HTTP interfaces, without ``idc-index``.

``idc-index`` ships a 79 MB table of every IDC file; for fetching a few series that is more than
needed, so this module uses what that table is built on:

- the IDC API v2 (https://api.imaging.datacommons.cancer.gov/v2): ``GET /collections`` for names and
  ``POST /cohorts/manifest/preview`` for the series of a collection (fields SeriesInstanceUID,
  crdc_series_uuid, aws_bucket, ...), and
- IDC's public, anonymous AWS bucket (``https://<aws_bucket>.s3.amazonaws.com``): the S3
  ``ListObjectsV2`` call lists a series' files under ``<crdc_series_uuid>/`` with size and ETag
  (the MD5 of files uploaded in one part), and a plain GET downloads each.

Files are checked against size and MD5, the series is converted to NIfTI.
"""

from __future__ import annotations

import difflib
import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path, PurePosixPath

from medsynth.data.http import Checksum, HttpStatusError, download, get_bytes, get_json
from medsynth.data.sources.arrival import convert_series, record
from medsynth.errors import DataFetchError, InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress

DEFAULT_URL = "https://api.imaging.datacommons.cancer.gov/v2"
DEFAULT_BUCKET_URL = "https://{bucket}.s3.amazonaws.com"
S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"
FIELDS = ["collection_id", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "crdc_series_uuid",
          "aws_bucket"]
PAGE_SIZE = 5000


def base_url(url: str | None = None) -> str:
    return (url or os.environ.get("MEDSYNTH_IDC_URL") or DEFAULT_URL).rstrip("/")


def bucket_url(bucket: str, template: str | None = None) -> str:
    return (template or os.environ.get("MEDSYNTH_IDC_BUCKET_URL") or DEFAULT_BUCKET_URL).format(bucket=bucket).rstrip("/")


def collections(url: str | None = None) -> list[str]:
    return sorted(row["collection_id"] for row in get_json(f"{base_url(url)}/collections")["collections"])


def check_collection(name: str, url: str | None = None) -> str:
    known = collections(url)
    wanted = name.lower().replace("-", "_")
    if wanted in known:
        return wanted
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise InputError(f"IDC has no collection {name!r}.{hint} IDC names are lower case with underscores "
                     "(lidc_idri); list them with `medsynth data idc collections`.")


def series(collection: str, modality: str | None = None, patient_id: str | None = None,
           url: str | None = None) -> list[dict]:
    """One row per series: SeriesInstanceUID, Modality, PatientID, crdc_series_uuid, aws_bucket, instance_count."""
    filters: dict[str, list] = {"collection_id": [check_collection(collection, url)]}
    if modality:
        filters["Modality"] = [modality]
    if patient_id:
        filters["PatientID"] = [patient_id]
    body = {"cohort_def": {"name": "medsynth", "description": "series to fetch", "filters": filters},
            "fields": FIELDS, "counts": True, "group_size": True, "sql": False, "page_size": PAGE_SIZE}
    answer = get_json(f"{base_url(url)}/cohorts/manifest/preview", json_body=body)
    if answer.get("next_page"):
        raise InputError(f"IDC collection {collection} has more than {PAGE_SIZE} matching series; narrow the "
                         "request with --modality or --patient.")
    rows = answer["manifest"]["manifest_data"]
    return sorted(rows, key=lambda row: (row.get("PatientID", ""), row["SeriesInstanceUID"]))


def _list_objects(bucket: str, prefix: str, template: str | None) -> list[tuple[str, int, str]]:
    """(key, size, etag) of every object under ``prefix``, following S3's continuation tokens."""
    objects, token = [], None
    while True:
        params = {"list-type": 2, "prefix": prefix, "continuation-token": token}
        root = ElementTree.fromstring(get_bytes(bucket_url(bucket, template) + "/", params))
        for item in root.iter(f"{S3}Contents"):
            objects.append((item.findtext(f"{S3}Key"), int(item.findtext(f"{S3}Size")),
                            item.findtext(f"{S3}ETag").strip('"')))
        if root.findtext(f"{S3}IsTruncated") != "true":
            return objects
        token = root.findtext(f"{S3}NextContinuationToken")


def download_series(rows: list[dict], out: str | Path, nifti: bool = True, bucket_template: str | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[dict]:
    """Download manifest rows (from ``series``) into OUT (layout: medsynth.data.sources.arrival)."""
    out = Path(out)
    results = []
    for index, row in enumerate(rows):
        check_cancel(cancel)
        step = sub_progress(progress, index / len(rows), (index + 1) / len(rows))
        uid, uuid, bucket = row["SeriesInstanceUID"], row["crdc_series_uuid"], row["aws_bucket"]
        dicom = out / "dicom" / uid
        marker = dicom / ".complete"
        if not marker.exists():
            objects = _list_objects(bucket, f"{uuid}/", bucket_template)
            if not objects:
                raise DataFetchError(f"IDC's bucket {bucket} holds no files for series {uid} ({uuid}/); the IDC "
                                     "release may have moved it: list the series again.")
            for number, (key, size, etag) in enumerate(objects):
                name = PurePosixPath(key).name
                checksum = None if "-" in etag else Checksum("md5", etag.lower())  # multipart ETags are no MD5
                try:
                    download(f"{bucket_url(bucket, bucket_template)}/{key}", dicom / name, size=size,
                             checksum=checksum, progress=sub_progress(step, number / len(objects),
                                                                      (number + 1) / len(objects) * 0.85),
                             cancel=cancel)
                except HttpStatusError as error:
                    raise DataFetchError(f"IDC's bucket refused {key} (HTTP {error.status}); run again later.") from None
            marker.write_text(f"{len(objects)}\n")
        entry = {"series_uid": uid, "crdc_series_uuid": uuid, "dicom": str(dicom.relative_to(out)),
                 "files": sum(1 for p in dicom.iterdir() if not p.name.startswith("."))}
        if nifti:
            report(step, 0.9, f"{uid[-12:]}: NIfTI")
            path, why = convert_series(dicom, out / "nifti" / f"{uid}.nii.gz")
            entry.update(nifti=str(Path(path).relative_to(out)) if path else None, **({"not_converted": why} if why else {}))
        record(out, "idc", uid, entry)
        results.append(entry)
        report(step, 1.0, f"{uid[-12:]}: done")
    return results


def download_collection(collection: str, out: str | Path, modality: str | None = None,
                        patient_id: str | None = None, limit: int | None = None, nifti: bool = True,
                        url: str | None = None, bucket_template: str | None = None,
                        progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[dict]:
    rows = series(collection, modality, patient_id, url)
    if not rows:
        raise InputError(f"IDC collection {collection!r} has no series with modality={modality} "
                         f"patient={patient_id}; loosen --modality / --patient.")
    return download_series(rows[: limit or None], out, nifti, bucket_template, progress, cancel)


def download_by_uid(uids: list[str], collection: str, out: str | Path, nifti: bool = True, url: str | None = None,
                    bucket_template: str | None = None, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None) -> list[dict]:
    rows = {row["SeriesInstanceUID"]: row for row in series(collection, url=url)}
    missing = [uid for uid in uids if uid not in rows]
    if missing:
        raise InputError(f"IDC collection {collection} has no series {missing[0]}; list them with "
                         f"`medsynth data idc series {collection}`.")
    return download_series([rows[uid] for uid in uids], out, nifti, bucket_template, progress, cancel)
