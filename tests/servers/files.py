"""A small file server for download tests, on 127.0.0.1 only.

It serves in-memory files by URL path, with HTTP Range support, and mimics the few things the downloader relies on
from each real service:

- Google Drive (`/download?id=...&export=download`): a file added with `confirm=True` is first answered with the
  "can't scan this file for viruses" page; its form (`confirm`, `uuid`) must come back to get the file; a shared
  folder (`/embeddedfolderview?id=...`) is answered with the entries of Drive's embedded folder view;
- Zenodo (`/records/RECORD/files/NAME`), GitHub raw (`/OWNER/REPO/COMMIT/PATH`, a Git LFS pointer for an LFS file)
  and GitHub media (`/media/OWNER/REPO/COMMIT/PATH`): plain files at those paths;
- the Hugging Face Hub's `resolve` route (HEAD and GET, with `X-Repo-Commit`, `ETag`, `Content-Length`).

Faults, set as attributes between requests: `ignore_range` (answer 200 with the whole file), `range_from_zero`
(answer a Range with 206 and the whole file, `Content-Range: bytes 0-...`), `corrupt` (serve other bytes of the same
length), `drop_after` + `drops` (send only `drop_after` bytes of the next `drops` file bodies, then close the
connection), `hold` (an event: send half of each file body, then wait for it). Per path: `add_stream` (a body sent
chunk by chunk, possibly slowly, possibly far longer than any file; `sent` counts what left), `add_redirect`. Every
request is recorded in `requests`; every wait is bounded, and ends when the server stops.

    with FileServer() as server:
        url = server.add("/model.bin", b"...")
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from .loopback import LoopbackServer

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    status: int  # 0 when the connection was dropped mid-body


@dataclass(frozen=True)
class _File:
    content: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Stream:
    chunk: bytes
    count: int  # the body is `chunk` this many times, sent with chunked transfer encoding
    interval: float  # seconds between chunks
    headers: dict[str, str]


HOLD_TIMEOUT = 30.0  # the longest a held body waits for its release


class FileServer(LoopbackServer):
    """Start with `start()` (or `with`), stop with `stop()`; `url` is the base URL of every route."""

    def __init__(self) -> None:
        self.files: dict[str, _File] = {}  # URL path -> file
        self.drive: dict[str, tuple[bytes, bool, str]] = {}  # Google Drive id -> (content, needs confirmation, name)
        self.folders: dict[str, dict[str, str]] = {}  # Google Drive folder id -> {name: id of a file or folder}
        self.streams: dict[str, _Stream] = {}
        self.redirects: dict[str, str] = {}
        self.sent: defaultdict[str, int] = defaultdict(int)  # path of a stream -> body bytes that left
        self.requests: list[Request] = []
        self.ignore_range = False
        self.range_from_zero = False
        self.corrupt = False
        self.drop_after: int | None = None
        self.drops = 0
        self.hold: threading.Event | None = None
        self.stopping = threading.Event()  # set by stop(): every wait ends
        self._confirmations: set[str] = set()  # uuids of the confirmation pages handed out
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.stopping.set()
        if self.hold is not None:
            self.hold.set()
        super().stop()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"server_state": self})

    # ------------------------------------------------------------------ content

    def add(self, path: str, content: bytes, headers: dict[str, str] | None = None) -> str:
        """Serve `content` at `path` (as application/octet-stream unless `headers` say otherwise); returns its URL."""
        self.files[path] = _File(content, headers or {})
        return self.url + path

    def add_zenodo(self, record: str, name: str, content: bytes) -> str:
        return self.add(f"/records/{record}/files/{quote(name)}", content)

    def add_github(self, repository: str, commit: str, path: str, content: bytes, *, lfs: bool = False) -> None:
        """A file of `owner/repo` at `commit`; kept in LFS: the raw route serves a pointer, the media route the file."""
        name = f"{repository}/{commit}/{quote(path)}"
        if lfs:
            pointer = LFS_POINTER.format(oid=hashlib.sha256(content).hexdigest(), size=len(content))
            self.add(f"/{name}", pointer.encode())
            self.add(f"/media/{name}", content)
        else:
            self.add(f"/{name}", content)

    def add_drive(self, file_id: str, content: bytes, *, confirm: bool = True, name: str | None = None) -> None:
        """A Google Drive file; `confirm`: too large to scan, so first answered with the confirmation page; `name`:
        the file name its download carries (Content-Disposition), its id by default."""
        self.drive[file_id] = (content, confirm, name or file_id)

    def add_drive_folder(self, folder_id: str, children: dict[str, str]) -> None:
        """A shared Google Drive folder: {name: id}, each id a file (`add_drive`) or folder (`add_drive_folder`)."""
        self.folders[folder_id] = children

    def add_stream(
        self, path: str, chunk: bytes, count: int, *, interval: float = 0.0, headers: dict[str, str] | None = None
    ) -> str:
        """Serve `chunk` `count` times at `path`, `interval` seconds apart, without a Content-Length."""
        self.streams[path] = _Stream(chunk, count, interval, headers or {})
        return self.url + path

    def add_redirect(self, path: str, location: str) -> str:
        """Answer `path` with a 302 to `location` (itself, for a loop)."""
        self.redirects[path] = location
        return self.url + path

    def add_hub(self, repo_id: str, revision: str, path: str, content: bytes) -> None:
        """A file of a Hub model repository at `revision` (a commit id, answered as the repository's commit)."""
        headers = {"X-Repo-Commit": revision, "ETag": f'"{hashlib.sha256(content).hexdigest()}"'}
        self.add(f"/{repo_id}/resolve/{revision}/{quote(path)}", content, headers)

    # ------------------------------------------------------------------ used by the handler

    def take_drop(self) -> int | None:
        """How many body bytes the current answer may send before the connection is dropped (None: all)."""
        with self._lock:
            if self.drop_after is None or self.drops <= 0:
                return None
            self.drops -= 1
            return self.drop_after

    def confirmation(self) -> str:
        with self._lock:
            token = str(uuid.uuid4())
            self._confirmations.add(token)
            return token

    def confirmed(self, token: str | None) -> bool:
        with self._lock:
            return token in self._confirmations


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries a Content-Length
    server_state: FileServer  # set on the subclass made by FileServer.start

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # quiet: `requests` is the log
        pass

    def _handle(self) -> None:
        # Read the body first and always: unread bytes would be taken for the next request on this connection.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server_state
        parts = urlsplit(self.path)
        path, query = parts.path, dict(parse_qsl(parts.query))
        self._request = functools.partial(
            Request, self.command, path, query, {key.lower(): value for key, value in self.headers.items()}
        )
        if path == "/download" and query.get("id") in state.drive:
            self._drive(query)
        elif path == "/embeddedfolderview" and query.get("id") in state.folders:
            self._folder(state.folders[query["id"]])
        elif path in state.redirects:
            self._send(302, b"", "text/plain", {"Location": state.redirects[path]})
        elif path in state.streams:
            self._stream(path, state.streams[path])
        elif path in state.files:
            self._file(state.files[path].content, state.files[path].headers)
        else:
            self._send(404, b"Not Found", "text/plain")

    def _drive(self, query: dict[str, str]) -> None:
        content, confirm, name = self.server_state.drive[query["id"]]
        if confirm and not (query.get("confirm") == "t" and self.server_state.confirmed(query.get("uuid"))):
            page = CONFIRMATION_PAGE.format(
                url=self.server_state.url, id=query["id"], uuid=self.server_state.confirmation()
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._file(content, {"Content-Disposition": f'attachment; filename="{name}"'})

    def _folder(self, children: dict[str, str]) -> None:
        state = self.server_state
        entries = "".join(
            FOLDER_ENTRY.format(
                id=child,
                name=html.escape(name),
                href=(FOLDER_HREF if child in state.folders else FILE_HREF).format(id=child),
            )
            for name, child in children.items()
        )
        self._send(200, FOLDER_PAGE.format(entries=entries).encode(), "text/html; charset=utf-8")

    def _stream(self, path: str, stream: _Stream) -> None:
        """A chunked body, chunk by chunk, until `count` chunks or the client leaves; `sent` counts what left."""
        state = self.server_state
        state.requests.append(self._request(200))
        self.send_response(200, "OK")
        headers = {"Content-Type": "application/octet-stream", **stream.headers, "Transfer-Encoding": "chunked"}
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for index in range(stream.count):
                if index and stream.interval and state.stopping.wait(stream.interval):
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(stream.chunk), stream.chunk))
                state.sent[path] += len(stream.chunk)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up: what it refused is not counted
            pass
        self.close_connection = True

    def _file(self, content: bytes, headers: dict[str, str]) -> None:
        """The file, or the part of it a `Range: bytes=START-[END]` asks for; faults applied."""
        state = self.server_state
        if state.corrupt:
            content = bytes(byte ^ 0xFF for byte in content)
        headers = {"Accept-Ranges": "bytes", **headers}
        content_type = headers.pop("Content-Type", "application/octet-stream")
        status, start, end = 200, 0, len(content)
        wanted = None if state.ignore_range else self.headers.get("Range")
        if wanted is not None and state.range_from_zero:
            status, headers["Content-Range"] = 206, f"bytes 0-{len(content) - 1}/{len(content)}"
        elif wanted is not None:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if match is None or int(match[1]) >= len(content):
                self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{len(content)}"})
                return
            start, end = int(match[1]), min(int(match[2]) + 1 if match[2] else len(content), len(content))
            status, headers["Content-Range"] = 206, f"bytes {start}-{end - 1}/{len(content)}"
        self._send(status, content[start:end], content_type, headers, droppable=True)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        droppable: bool = False,
    ) -> None:
        limit = self.server_state.take_drop() if droppable and self.command != "HEAD" else None
        dropped = limit is not None and limit < len(body)
        # Recorded before answering: once the client has its answer, the test sees the request.
        self.server_state.requests.append(self._request(0 if dropped else status))
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if dropped:
            self.wfile.write(body[:limit])
            self.close_connection = True  # the client sees the connection end before Content-Length bytes
            return
        hold = self.server_state.hold if droppable else None
        if hold is not None:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            hold.wait(HOLD_TIMEOUT)
            body = body[len(body) // 2 :]
        self.wfile.write(body)


# The shape of Google Drive's answer for a file too large to scan: the form "Download anyway" submits.
CONFIRMATION_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption">This file is too large for Google to scan for viruses.
Would you still like to download this file?</p>
<form id="download-form" action="{url}/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action"
 value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}">
</form></div></div></body></html>"""


# The shape of Google Drive's embedded folder view (`/embeddedfolderview?id=FOLDER`): one `flip-entry` per item.
FOLDER_PAGE = """<!DOCTYPE html><html><head><title>Shared folder</title></head><body>
<div class="flip-entries">{entries}</div></body></html>"""
FOLDER_ENTRY = """<div class="flip-entry" id="entry-{id}" tabindex="0" role="link"><div class="flip-entry-info">
<a href="{href}" target="_blank"><div class="flip-entry-visual"><div class="flip-entry-visual-card">
</div></div><div class="flip-entry-list-icon"><div aria-label="icon"></div></div>
<div class="flip-entry-title">{name}</div></a></div>
<div class="flip-entry-last-modified"><div>Jan 1, 2024</div></div></div>
"""
FOLDER_HREF = "https://drive.google.com/drive/folders/{id}"
FILE_HREF = "https://drive.google.com/file/d/{id}/view?usp=drive_web"
