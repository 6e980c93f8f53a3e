"""A small file server for download tests, on 127.0.0.1 only.

It serves in-memory files by URL path, with HTTP Range support, and mimics the few things the downloader relies on
from each real service:

- Google Drive (`/download?id=...&export=download`): a file added with `confirm=True` is first answered with the
  "can't scan this file for viruses" page; its form (`confirm`, `uuid`) must come back to get the file;
- Zenodo (`/records/RECORD/files/NAME`), GitHub raw (`/OWNER/REPO/COMMIT/PATH`, a Git LFS pointer for an LFS file)
  and GitHub media (`/media/OWNER/REPO/COMMIT/PATH`): plain files at those paths;
- the Hugging Face Hub's `resolve` route (HEAD and GET, with `X-Repo-Commit`, `ETag`, `Content-Length`).

Faults, set as attributes between requests: `ignore_range` (answer 200 with the whole file), `corrupt` (serve other
bytes of the same length), `drop_after` + `drops` (send only `drop_after` bytes of the next `drops` file bodies, then
close the connection). Every request is recorded in `requests`.

    with FileServer() as server:
        url = server.add("/model.bin", b"...")
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import uuid
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


class FileServer(LoopbackServer):
    """Start with `start()` (or `with`), stop with `stop()`; `url` is the base URL of every route."""

    def __init__(self) -> None:
        self.files: dict[str, _File] = {}  # URL path -> file
        self.drive: dict[str, tuple[bytes, bool]] = {}  # Google Drive id -> (content, needs confirmation)
        self.requests: list[Request] = []
        self.ignore_range = False
        self.corrupt = False
        self.drop_after: int | None = None
        self.drops = 0
        self._confirmations: set[str] = set()  # uuids of the confirmation pages handed out
        self._lock = threading.Lock()

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

    def add_drive(self, file_id: str, content: bytes, *, confirm: bool = True) -> None:
        """A Google Drive file; `confirm`: too large to scan, so first answered with the confirmation page."""
        self.drive[file_id] = (content, confirm)

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
        elif path in state.files:
            self._file(state.files[path].content, state.files[path].headers)
        else:
            self._send(404, b"Not Found", "text/plain")

    def _drive(self, query: dict[str, str]) -> None:
        content, confirm = self.server_state.drive[query["id"]]
        if confirm and not (query.get("confirm") == "t" and self.server_state.confirmed(query.get("uuid"))):
            page = CONFIRMATION_PAGE.format(
                url=self.server_state.url, id=query["id"], uuid=self.server_state.confirmation()
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._file(content, {"Content-Disposition": f'attachment; filename="{query["id"]}"'})

    def _file(self, content: bytes, headers: dict[str, str]) -> None:
        """The file, or the part of it a `Range: bytes=START-[END]` asks for; faults applied."""
        state = self.server_state
        if state.corrupt:
            content = bytes(byte ^ 0xFF for byte in content)
        headers = {"Accept-Ranges": "bytes", **headers}
        content_type = headers.pop("Content-Type", "application/octet-stream")
        status, start, end = 200, 0, len(content)
        wanted = None if state.ignore_range else self.headers.get("Range")
        if wanted is not None:
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
