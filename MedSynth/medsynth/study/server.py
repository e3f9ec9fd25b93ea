"""``serve_study``: the reader study as a local web page, served by the standard library.

One image at a time; the page asks for a reader name, and the server keeps each reader's answers
in their own file, rewritten atomically after every answer. A reader who closes the browser, or a
server that stops, loses nothing: the next visit under the same name resumes at the first
unanswered image. Only the page, the study's title and the blinded PNGs are ever served; the
answer key is not reachable from the web.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from medsynth.errors import InputError
from medsynth.study.store import Study

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


def _page() -> bytes:
    return resources.files("medsynth.study").joinpath("web/reader.html").read_bytes()


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, study: Study, address: tuple[str, int]) -> None:
        self.study = study
        self.page = _page()
        super().__init__(address, StudyRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class StudyRequestHandler(BaseHTTPRequestHandler):
    server: StudyServer
    server_version = "MedSynthStudy"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the standard library's name
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _progress(self, reader: str) -> dict:
        study = self.server.study
        answered = len(study.answers(reader))
        next_id = study.next_image(reader)
        image = None if next_id is None else {"id": next_id, "url": f"/images/{next_id}.png"}
        return {"reader": reader, "answered": answered, "total": len(study.image_ids), "image": image}

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        url = urlparse(self.path)
        study = self.server.study
        try:
            if url.path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
            elif url.path == "/api/study":
                self._json({"title": study.title, "reasons": list(study.reasons), "total": len(study.image_ids)})
            elif url.path == "/api/next":
                self._json(self._progress(parse_qs(url.query).get("reader", [""])[0]))
            elif url.path.startswith("/images/") and url.path.endswith(".png"):
                path = study.image_path(url.path[len("/images/"):-len(".png")])
                if path is None:
                    self._json({"error": "no such image"}, HTTPStatus.NOT_FOUND)
                else:
                    self._send(HTTPStatus.OK, path.read_bytes(), "image/png")
            else:
                self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
        except InputError as error:
            self._json({"error": str(error)}, HTTPStatus.BAD_REQUEST)

    def do_POST(self) -> None:  # noqa: N802
        if urlparse(self.path).path != "/api/answer":
            self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise InputError("The answer is too long; shorten the comment.")
            body = json.loads(self.rfile.read(length) or b"{}")
            reader = str(body.get("reader", ""))
            self.server.study.record(reader, str(body.get("image", "")), str(body.get("answer", "")),
                                     body.get("reasons") or [], str(body.get("comment") or ""), body.get("seconds"))
            self._json(self._progress(reader))
        except (InputError, ValueError, AttributeError) as error:
            self._json({"error": str(error)}, HTTPStatus.BAD_REQUEST)


def make_server(study: Study | str | Path, host: str = "127.0.0.1", port: int = 8000) -> StudyServer:
    """A server for ``study`` bound to ``host:port`` (port 0: any free port); call ``serve_forever``."""
    study = study if isinstance(study, Study) else Study.load(study)
    try:
        return StudyServer(study, (host, int(port)))
    except OSError as error:
        raise InputError(f"Cannot listen on {host}:{port} ({error.strerror}); choose another --port.") from error


def serve_study(study: Study | str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until Ctrl-C; every answer is already on disk when it is acknowledged."""
    server = make_server(study, host, port)
    print(f"Reader study at {server.url} (Ctrl-C to stop; answers are saved as they come)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
