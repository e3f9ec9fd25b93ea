"""HTTP for public collections: JSON calls and resumable, checksummed downloads (standard library only).

Built for cluster jobs as much as laptops: no desktop app, no prompt, progress through a callback.
A download goes to ``<target>.partial``; a dropped connection is retried with an HTTP Range request
from the bytes already on disk (a server that ignores Range is answered by starting over), and the
file is renamed to its final name only after its size and checksum match. Running the same download
again resumes an interrupted one, or skips a complete one.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from medsynth import __version__
from medsynth.errors import DataFetchError
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

USER_AGENT = f"medsynth/{__version__} (+https://github.com/medsynth)"
BLOCK = 1 << 20
#: Tries after a dropped connection, and the first wait between them (doubling, at most 10 s).
RETRIES = int(os.environ.get("MEDSYNTH_HTTP_RETRIES", "8"))
BACKOFF_S = 0.2
#: What a dropped or stalled connection looks like from urllib.
TRANSIENT = (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError, socket.timeout,
             TimeoutError, urllib.error.URLError)


class HttpStatusError(DataFetchError):
    """The server answered with an error status; sources turn it into advice (401: renew the token)."""

    def __init__(self, status: int, url: str, body: str = "") -> None:
        super().__init__(f"HTTP {status} from {redact(url)}" + (f": {body[:200]}" if body else ""))
        self.status, self.url, self.body = status, url, body


def redact(url: str) -> str:
    """``url`` without secrets in its query (access_token, token), for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, "***" if "token" in k.lower() else v) for k, v in urllib.parse.parse_qsl(parts.query)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def with_query(url: str, params: Mapping[str, object] | None) -> str:
    if not params:
        return url
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return url + ("&" if "?" in url else "?") + query


def _request(url: str, headers: Mapping[str, str] | None, data: bytes | None = None,
             method: str | None = None) -> urllib.request.Request:
    merged = {"User-Agent": USER_AGENT, **(headers or {})}
    return urllib.request.Request(url, data=data, headers=merged, method=method)


def _open(request: urllib.request.Request, timeout: float):
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8", "replace") if error.fp else ""
        raise HttpStatusError(error.code, request.full_url, body) from None


def get_bytes(url: str, params: Mapping[str, object] | None = None, headers: Mapping[str, str] | None = None,
              json_body: object | None = None, timeout: float = 60.0, retries: int = 3) -> bytes:
    """The body of a GET (or a POST of ``json_body``), retried on dropped connections."""
    url = with_query(url, params)
    data = None if json_body is None else json.dumps(json_body).encode()
    all_headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
    for attempt in range(retries + 1):
        try:
            with _open(_request(url, all_headers, data, "POST" if data else "GET"), timeout) as response:
                return response.read()
        except TRANSIENT as error:
            if attempt == retries:
                raise DataFetchError(f"{redact(url)} did not answer ({_reason(error)}) after {retries + 1} tries; "
                                     "check the network and run the command again.") from None
            time.sleep(min(BACKOFF_S * 2.0**attempt, 5.0))
    raise AssertionError("unreachable")


def get_json(url: str, params: Mapping[str, object] | None = None, headers: Mapping[str, str] | None = None,
             json_body: object | None = None, timeout: float = 60.0):
    body = get_bytes(url, params, headers, json_body, timeout)
    try:
        return json.loads(body)
    except ValueError:
        raise DataFetchError(f"{redact(url)} did not answer with JSON ({body[:80]!r}); "
                             "the service may be down or the address wrong.") from None


def _reason(error: BaseException) -> str:
    return str(getattr(error, "reason", "") or error.__class__.__name__)


@dataclass(frozen=True)
class Checksum:
    """An expected digest: ``Checksum("md5", "9e10...")``; ``parse("md5:9e10...")`` reads Zenodo's form."""

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> "Checksum":
        algorithm, _, digest = text.partition(":")
        return cls(algorithm.lower(), digest.lower())

    def of(self, path: Path) -> str:
        digest = hashlib.new(self.algorithm)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(BLOCK), b""):
                digest.update(block)
        return digest.hexdigest()


def download(url: str, target: str | Path, *, headers: Mapping[str, str] | None = None, size: int | None = None,
             checksum: Checksum | None = None, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None, retries: int | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` resumably; verify ``size`` and ``checksum`` when given."""
    target = Path(target)
    if target.exists() and (checksum is None or checksum.of(target) == checksum.hexdigest) and (
            size is None or target.stat().st_size == size):
        report(progress, 1.0, f"{target.name}: already here")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    retries = RETRIES if retries is None else retries
    failures = 0
    while True:
        check_cancel(cancel)
        have = partial.stat().st_size if partial.exists() else 0
        if size is not None and have == size:
            break
        request_headers = dict(headers or {})
        if have:
            request_headers["Range"] = f"bytes={have}-"
        try:
            with _open(_request(url, request_headers), timeout) as response:
                resumed = have and response.status == 206
                total = _total(response, have if resumed else 0, size)
                with open(partial, "ab" if resumed else "wb") as out:
                    done = have if resumed else 0
                    while True:
                        check_cancel(cancel)
                        block = response.read(BLOCK)
                        if not block:
                            break
                        out.write(block)
                        done += len(block)
                        report(progress, done / total if total else 0.0, f"{target.name}: {done >> 20} MiB")
                if total is not None and done < total:
                    raise http.client.IncompleteRead(b"", total - done)
            break
        except HttpStatusError as error:
            if error.status == 416 and have:  # asked beyond the end: what we have is the whole file
                break
            raise
        except TRANSIENT as error:
            failures += 1
            if failures > retries:
                raise DataFetchError(f"Download of {target.name} kept failing ({_reason(error)}); "
                                     f"{partial.stat().st_size if partial.exists() else 0} bytes are kept in "
                                     f"{partial}: run the same command again to resume.") from None
            time.sleep(min(BACKOFF_S * 2.0**failures, 10.0))
    _verify(partial, target.name, size, checksum)
    os.replace(partial, target)
    report(progress, 1.0, f"{target.name}: done")
    return target


def _total(response, offset: int, size: int | None) -> int | None:
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else size


def _verify(path: Path, name: str, size: int | None, checksum: Checksum | None) -> None:
    if size is not None and path.stat().st_size != size:
        got = path.stat().st_size
        path.unlink()
        raise DataFetchError(f"{name} arrived with {got} bytes instead of {size}; it was removed: run the command "
                             "again to download it afresh.")
    if checksum is not None:
        got = checksum.of(path)
        if got != checksum.hexdigest:
            path.unlink()
            raise DataFetchError(f"{name} failed its {checksum.algorithm.upper()} check (got {got}, expected "
                                 f"{checksum.hexdigest}); the corrupt file was removed: run the command again.")
