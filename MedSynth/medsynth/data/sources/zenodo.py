"""Zenodo records, open or restricted, through Zenodo's REST API (InvenioRDM) with an access token.

Calls used (https://zenodo.org/api/...): ``records/<id>/files`` (entries with key, size and
``md5:`` checksum) and ``records/<id>/files/<key>/content``. The token (``--token`` or
ZENODO_TOKEN) travels in the Authorization header, never in a URL or a log. Restricted sets such
as RAD-ChestCT are granted per user on their Zenodo page; the token then reads them.
Zip archives are unpacked, and DICOM series, NRRD, MHA and NumPy volumes are converted to NIfTI
(``medsynth.io.convert``; NumPy volumes carry no geometry, so give ``spacing``).
"""

from __future__ import annotations

import fnmatch
import os
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from medsynth.data.http import Checksum, HttpStatusError, download, get_json
from medsynth.data.sources.arrival import record
from medsynth.errors import DataFetchError, InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress

DEFAULT_URL = "https://zenodo.org/api"
TOKEN_PAGE = "https://zenodo.org/account/settings/applications/"


def base_url(url: str | None = None) -> str:
    return (url or os.environ.get("MEDSYNTH_ZENODO_URL") or DEFAULT_URL).rstrip("/")


def _headers(token: str | None) -> dict[str, str]:
    token = token or os.environ.get("ZENODO_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _explain(error: HttpStatusError, record_id: str, token: str | None) -> Exception:
    has_token = bool(token or os.environ.get("ZENODO_TOKEN"))
    if error.status in (401, 403) and has_token:
        return InputError(f"Zenodo refused the access token for record {record_id} (HTTP {error.status}): it is "
                          f"expired, revoked or lacks access; create a new one at {TOKEN_PAGE} and pass it with "
                          "--token or ZENODO_TOKEN.")
    if error.status in (401, 403):
        return InputError(f"Zenodo record {record_id} is restricted (HTTP {error.status}): request access on its "
                          f"page, then pass a personal access token ({TOKEN_PAGE}) with --token or ZENODO_TOKEN.")
    if error.status == 404:
        return InputError(f"Zenodo has no record {record_id}; use the number in https://zenodo.org/records/<id>.")
    return DataFetchError(f"Zenodo answered HTTP {error.status} for record {record_id}; try again later.")


def record_files(record_id: str, token: str | None = None, url: str | None = None) -> list[dict]:
    """The record's files: key, size, checksum ("md5:...") and links."""
    record_id = str(record_id).removeprefix("zenodo.")
    try:
        answer = get_json(f"{base_url(url)}/records/{record_id}/files", headers=_headers(token))
    except HttpStatusError as error:
        raise _explain(error, record_id, token) from None
    return sorted(answer.get("entries", []), key=lambda entry: entry["key"])


def _unzip(archive: Path, destination: Path) -> None:
    if destination.is_dir():
        return
    with zipfile.ZipFile(archive) as zipped, atomic_output(destination, directory=True) as staging:
        for name in zipped.namelist():
            member = PurePosixPath(name)
            if member.is_absolute() or ".." in member.parts:
                raise DataFetchError(f"{archive.name} has an unsafe member name {name}.")
            if not name.endswith("/"):
                (staging / member).parent.mkdir(parents=True, exist_ok=True)
                (staging / member).write_bytes(zipped.read(name))


def download_record(record_id: str, out: str | Path, token: str | None = None, patterns: list[str] | None = None,
                    nifti: bool = True, spacing: tuple[float, float, float] | None = None, url: str | None = None,
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[dict]:
    """Download the record's files matching ``patterns`` (shell globs on the file name) into OUT/files."""
    from medsynth.io.convert import convert

    out = Path(out)
    record_id = str(record_id).removeprefix("zenodo.")
    entries = [e for e in record_files(record_id, token, url)
               if not patterns or any(fnmatch.fnmatch(e["key"], p) for p in patterns)]
    if not entries:
        raise InputError(f"No file of Zenodo record {record_id} matches {patterns}; "
                         "list them with `medsynth data zenodo files RECORD`.")
    results = []
    for index, entry in enumerate(entries):
        check_cancel(cancel)
        step = sub_progress(progress, index / len(entries), (index + 1) / len(entries))
        key = PurePosixPath(entry["key"])
        if key.is_absolute() or ".." in key.parts:
            raise DataFetchError(f"Zenodo record {record_id} lists an unsafe file name {key}.")
        target = out / "files" / key
        link = entry.get("links", {}).get("content") or f"{base_url(url)}/records/{record_id}/files/{quote(str(key))}/content"
        checksum = Checksum.parse(entry["checksum"]) if entry.get("checksum") else None
        try:
            download(link, target, headers=_headers(token), size=entry.get("size"), checksum=checksum,
                     progress=sub_progress(step, 0.0, 0.8), cancel=cancel)
        except HttpStatusError as error:
            raise _explain(error, record_id, token) from None
        item = {"record": record_id, "file": str(target.relative_to(out)), "size": target.stat().st_size,
                "checksum": entry.get("checksum")}
        if nifti and key.name.endswith((".nii.gz", ".nii")):
            item["nifti"] = [item["file"]]
        elif nifti:
            report(step, 0.85, f"{key.name}: NIfTI")
            source, nifti_dir = target, out / "nifti" / key.parent
            if key.suffix.lower() == ".zip":  # unpacked beside it; its volumes go to nifti/<zip name>/
                source = target.with_suffix("")
                nifti_dir = nifti_dir / source.name
                _unzip(target, source)
            try:
                converted = convert(source, nifti_dir, spacing=spacing)
            except InputError as error:
                item["not_converted"] = str(error)
            else:
                item["nifti"] = sorted(str(p.relative_to(out)) for p in converted.converted + converted.skipped)
                if converted.failed:
                    item["not_converted"] = converted.failed
        record(out, "zenodo", f"{record_id}/{key}", item)
        results.append(item)
    return results
