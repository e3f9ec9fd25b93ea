"""A local HTTP server that answers like TCIA's NBIA API, Zenodo's API and IDC (API v2 + its bucket).

JSON answers come from Testing/recorded/ (see its README); file bytes from recorded_payloads.py.
Mounted under /tcia, /zenodo, /idc and /s3/<bucket>. It honours HTTP Range like the real download
servers, checks Zenodo's bearer token, and can cut a download short to test resuming.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import hashlib

import recorded_payloads as payloads

RECORDED = Path(__file__).parent / "recorded"
VALID_TOKEN = "valid-test-token"
REAL_BASES = {"zenodo": "https://zenodo.org/api"}


@dataclass
class Drop:
    """Cut the answers to paths starting with ``prefix`` after ``after`` bytes, ``times`` times."""

    prefix: str
    after: int
    times: int = 1


@dataclass
class ServerState:
    files: dict[str, bytes]
    s3: dict[str, dict[str, bytes]]
    drops: list[Drop] = field(default_factory=list)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range
    lock: threading.Lock = field(default_factory=threading.Lock)


def _recorded(name: str):
    return json.loads((RECORDED / name).read_text())


class Handler(BaseHTTPRequestHandler):
    server: "RecordedServer"

    def log_message(self, format, *args):  # noqa: A002
        pass

    # -- helpers
    def _json(self, data, status: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _xml(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _bytes(self, data: bytes, path: str) -> None:
        """Send ``data`` honouring Range, or cut it short when a Drop says so."""
        start = 0
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            start = int(header[len("bytes="):].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        chunk = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(chunk)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        drop = self._take_drop(path)
        if drop is not None:
            self.wfile.write(chunk[: drop.after])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.wfile.write(chunk)

    def _take_drop(self, path: str) -> Drop | None:
        state = self.server.state
        with state.lock:
            for drop in state.drops:
                if path.startswith(drop.prefix) and drop.times > 0:
                    drop.times -= 1
                    return drop
        return None

    # -- routes
    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        state = self.server.state
        with state.lock:
            state.log.append((method, self.path, self.headers.get("Range")))
        parts = url.path.strip("/").split("/")
        service, rest = parts[0], "/".join(parts[1:])
        body = None
        if method == "POST":
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        handler = {"tcia": self._tcia, "zenodo": self._zenodo, "idc": self._idc, "s3": self._s3}.get(service)
        if handler is None:
            self._json({"error": "not found"}, 404)
        else:
            handler(rest, query, body, url.path)

    def _tcia(self, rest: str, query: dict, body, path: str) -> None:
        if rest == "getCollectionValues":
            self._json(_recorded("tcia/getCollectionValues.json"))
        elif rest == "getSeries":
            name = f"tcia/getSeries_{query.get('Collection', '')}.json"
            rows = _recorded(name) if (RECORDED / name).exists() else []  # NBIA answers [] for unknown names
            rows = [r for r in rows if all(query.get(k) in (None, r.get(k)) for k in ("Modality", "PatientID"))]
            self._json(rows)
        elif rest == "getSeriesSize":
            name = f"tcia/getSeriesSize_{query.get('SeriesInstanceUID', '')}.json"
            self._json(_recorded(name) if (RECORDED / name).exists() else [])
        elif rest == "getImageWithMD5Hash" and query.get("SeriesInstanceUID") == payloads.LIDC_SERIES_UID:
            self._bytes(self.server.state.files["tcia"], path)
        else:
            self._json({"error": "not found"}, 404)

    def _zenodo(self, rest: str, query: dict, body, path: str) -> None:
        if self.headers.get("Authorization") != f"Bearer {VALID_TOKEN}":
            self._json(_recorded("zenodo/401.json"), 401)
            return
        parts = rest.split("/")
        if len(parts) < 3 or parts[0] != "records" or parts[1] != payloads.ZENODO_RECORD:
            self._json(_recorded("zenodo/404.json"), 404)
        elif len(parts) == 3 and parts[2] == "files":
            text = (RECORDED / f"zenodo/records_{parts[1]}_files.json").read_text()
            self._json(json.loads(text.replace(REAL_BASES["zenodo"], self.server.url + "zenodo")))
        elif len(parts) == 5 and parts[2] == "files" and parts[4] == "content":
            data = self.server.state.files.get("zenodo/" + urllib.parse.unquote(parts[3]))
            self._bytes(data, path) if data is not None else self._json(_recorded("zenodo/404.json"), 404)
        else:
            self._json(_recorded("zenodo/404.json"), 404)

    def _idc(self, rest: str, query: dict, body, path: str) -> None:
        if rest == "collections":
            self._json(_recorded("idc/collections.json"))
        elif rest == "cohorts/manifest/preview" and body is not None:
            filters = body["cohort_def"]["filters"]
            name = f"idc/manifest_{filters['collection_id'][0]}.json"
            answer = _recorded(name) if (RECORDED / name).exists() else {
                "code": 200, "manifest": {"manifest_data": [], "rowsReturned": 0, "totalFound": 0}, "next_page": ""}
            rows = [r for r in answer["manifest"]["manifest_data"]
                    if all(r.get(k) in v for k, v in filters.items() if k in ("Modality", "PatientID"))]
            answer["manifest"].update(manifest_data=rows, rowsReturned=len(rows), totalFound=len(rows))
            self._json(answer)
        else:
            self._json({"code": 404, "message": "not found"}, 404)

    def _s3(self, rest: str, query: dict, body, path: str) -> None:
        bucket, _, key = rest.partition("/")
        objects = self.server.state.s3.get(bucket)
        if objects is None:
            self._json({"error": "NoSuchBucket"}, 404)
        elif not key and query.get("list-type") == "2":
            self._xml(list_objects_v2(bucket, objects, query.get("prefix", ""), query.get("continuation-token")))
        elif key in objects:
            self._bytes(objects[key], path)
        else:
            self._json({"error": "NoSuchKey"}, 404)


def list_objects_v2(bucket: str, objects: dict[str, bytes], prefix: str, token: str | None, page: int = 100) -> str:
    """S3's ListObjectsV2 answer (XML, pages of ``page`` keys with continuation tokens)."""
    keys = sorted(k for k in objects if k.startswith(prefix))
    start = int(token or 0)
    chunk = keys[start:start + page]
    truncated = start + page < len(keys)
    contents = "".join(
        f"<Contents><Key>{escape(k)}</Key><LastModified>2024-03-01T00:00:00.000Z</LastModified>"
        f"<ETag>&quot;{hashlib.md5(objects[k]).hexdigest()}&quot;</ETag><Size>{len(objects[k])}</Size>"
        f"<StorageClass>INTELLIGENT_TIERING</StorageClass></Contents>" for k in chunk)
    more = f"<NextContinuationToken>{start + page}</NextContinuationToken>" if truncated else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(chunk)}</KeyCount>"
            f"<MaxKeys>{page}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"{contents}{more}</ListBucketResult>")


class RecordedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lidc_dicom_dir: Path, totalseg_dir: Path) -> None:
        files = {"tcia": payloads.tcia_series_zip(lidc_dicom_dir)}
        files.update({f"zenodo/{k}": v for k, v in payloads.zenodo_files(totalseg_dir).items()})
        self.state = ServerState(files=files, s3={"idc-open-data": payloads.idc_objects(lidc_dicom_dir)})
        super().__init__(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def handle_error(self, _request, _client_address) -> None:
        """A client that hung up mid-download (the resume tests do it on purpose) is no server error."""

    def drop(self, prefix: str, after: int, times: int = 1) -> None:
        with self.state.lock:
            self.state.drops.append(Drop(prefix, after, times))

    def requests(self, prefix: str = "") -> list[tuple[str, str, str | None]]:
        with self.state.lock:
            return [entry for entry in self.state.log if urllib.parse.urlsplit(entry[1]).path.startswith(prefix)]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
