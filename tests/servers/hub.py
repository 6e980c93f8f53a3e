"""A small Hugging Face Hub-compatible server for tests, on 127.0.0.1 only.

It speaks just enough of the Hub's HTTP API for huggingface_hub 2.4 (`whoami`, `create_repo`,
`upload_folder` / `create_commit`, `repo_info`) and for transformers' `from_pretrained` (revision lookup and
`resolve` downloads). Repositories live in memory; each has one branch, `main`, with a linear history.

Choices that keep it small, and differ from the real Hub:

- every file is a regular git blob: preupload always answers `uploadMode: "regular"`, so contents travel
  base64-encoded inside the commit request and neither LFS nor Xet is involved;
- a new repository is empty (the real Hub makes an initial `.gitattributes` commit);
- reads are public (any token or none); writes need a token the server knows, of role "write";
- a request it does not understand gets a 400 with the reason (the client does not retry 400s).

Fault injection: `drop_commits(n)` makes the next `n` commit requests be read in full and then have their
connection closed without any answer, before anything is stored, as a dropped connection would.

    with HubServer(tokens={"hf_writer": "write", "hf_reader": "read"}) as hub:
        HfApi(endpoint=hub.url, token="hf_writer").create_repo("user/model")
        hub.commits("user/model"), hub.files("user/model")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .loopback import LoopbackServer

BRANCH = "main"
REPO = r"(?P<repo>[^/]+/[^/]+)"
REV = r"(?P<rev>[^/]+)"


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob: what the Hub returns as a regular file's `oid` and `ETag`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    summary: str
    description: str
    files: dict[str, bytes]  # the whole tree after this commit, path -> content


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit | None:
        return self.commits[-1] if self.commits else None

    def at(self, revision: str) -> Commit | None:
        """The commit a revision (the branch or a full commit id) points to; None if it is unknown."""
        if revision == BRANCH:
            return self.head
        return next((commit for commit in self.commits if commit.oid == revision), None)


class HubError(Exception):
    """An error answer: status, the Hub's `X-Error-Code` (may be empty), and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _DropConnection(Exception):
    pass


class HubServer(LoopbackServer):
    """Start with `start()` (or `with`), stop with `stop()`; `url` is the endpoint to give huggingface_hub."""

    def __init__(self, tokens: Iterable[str] | Mapping[str, str] = ("hf_test",), user: str = "tester") -> None:
        # token -> role ("write" or "read"), as whoami reports it; a plain list of tokens may all write
        self.tokens = dict(tokens) if isinstance(tokens, Mapping) else dict.fromkeys(tokens, "write")
        self.user = user
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status), 0 for a dropped connection
        self.dropped = 0  # commit requests dropped so far
        self._drop_remaining = 0
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ lifecycle and accessors

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"hub": self})

    def drop_commits(self, n: int) -> None:
        """Close the connection of the next `n` commit requests without answering (0 turns this off)."""
        with self._lock:
            self._drop_remaining = n

    def commits(self, repo_id: str) -> list[Commit]:
        """The history of `main`, oldest first."""
        with self._lock:
            return list(self.repos[repo_id].commits)

    def files(self, repo_id: str) -> dict[str, bytes]:
        """The files at the head of `main` (empty for an empty repository)."""
        with self._lock:
            head = self.repos[repo_id].head
            return dict(head.files) if head else {}

    # ------------------------------------------------------------------ the API, one method per route

    def whoami(self, token: str | None) -> dict[str, Any]:
        role = self._authorise(token, "read")
        return {
            "type": "user",
            "name": self.user,
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": role}},
        }

    def create_repo(self, token: str | None, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._authorise(token)
        if payload.get("type", "model") != "model":
            raise HubError(400, "", "this test server holds model repositories only")
        repo_id = f"{payload.get('organization') or self.user}/{payload['name']}"
        with self._lock:
            if repo_id in self.repos:
                return 409, {"error": "You already created this model repo", "url": self._repo_url(repo_id)}
            self.repos[repo_id] = Repo(repo_id, private=payload.get("visibility") == "private")
        return 200, {"url": self._repo_url(repo_id), "name": repo_id, "id": repo_id}

    def preupload(self, token: str | None, repo_id: str, revision: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._authorise(token)
        head = self._commit(repo_id, revision, allow_empty=True)
        files = head.files if head else {}
        answer = []
        for entry in payload["files"]:
            info = {"path": entry["path"], "uploadMode": "regular", "shouldIgnore": False}
            if entry["path"] in files:
                info["oid"] = git_blob_sha1(files[entry["path"]])
            answer.append(info)
        return {"files": answer, "commitOid": head.oid if head else None}

    def commit(self, token: str | None, repo_id: str, revision: str, body: bytes) -> dict[str, Any]:
        self._authorise(token)
        with self._lock:
            if self._drop_remaining > 0:
                self._drop_remaining -= 1
                self.dropped += 1
                raise _DropConnection
            head = self._commit(repo_id, revision, allow_empty=True)
            if revision != BRANCH:
                raise HubError(400, "", f"commits go to '{BRANCH}' only on this test server")
            files = dict(head.files) if head else {}
            header: dict[str, Any] = {}
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise HubError(400, "", f"unsupported encoding {value.get('encoding')!r}")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise HubError(404, "EntryNotFound", f"A file with this name doesn't exist: {value['path']}")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {path: data for path, data in files.items() if not path.startswith(prefix)}
                else:  # lfsFile, or anything newer: this server answered "regular" for every file
                    raise HubError(400, "", f"unsupported commit operation {key!r}")
            parent = header.get("parentCommit")
            if parent is not None and (head is None or not head.oid.startswith(parent)):
                raise HubError(412, "", f"parent commit {parent} is not the head of {BRANCH}")
            repo = self.repos[repo_id]
            seed = json.dumps([repo_id, len(repo.commits), head.oid if head else None, header.get("summary")])
            tree = "".join(f"{path}\0{git_blob_sha1(data)}\n" for path, data in sorted(files.items()))
            oid = hashlib.sha1((seed + tree).encode()).hexdigest()
            repo.commits.append(
                Commit(oid, head.oid if head else None, header.get("summary", ""), header.get("description", ""), files)
            )
        return {
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{self._repo_url(repo_id)}/commit/{oid}",
            "hookOutput": "",
            "pullRequestUrl": None,
        }

    def repo_info(self, repo_id: str, revision: str) -> dict[str, Any]:
        with self._lock:
            commit = self._commit(repo_id, revision, allow_empty=True)
            repo = self.repos[repo_id]
            files = commit.files if commit else {}
            return {
                "id": repo_id,
                "modelId": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.oid if commit else None,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "tags": [],
                "createdAt": repo.created_at,
                "lastModified": repo.created_at,
                "siblings": [
                    {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
                    for path, data in sorted(files.items())
                ],
            }

    def tree(self, repo_id: str, revision: str, folder: str, recursive: bool) -> list[dict[str, Any]]:
        with self._lock:
            commit = self._commit(repo_id, revision, allow_empty=True)
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        files = {path: data for path, data in (commit.files if commit else {}).items() if path.startswith(prefix)}
        if prefix and not files:
            raise HubError(404, "EntryNotFound", f"{folder} does not exist on {revision}")
        entries: dict[str, dict[str, Any]] = {}

        def add_directory(directory: str) -> None:
            entries[directory] = {"type": "directory", "path": directory, "oid": git_blob_sha1(directory.encode())}

        for path, data in sorted(files.items()):
            parts = path[len(prefix) :].split("/")
            if len(parts) > 1 and not recursive:
                add_directory(prefix + parts[0])
                continue
            for depth in range(1, len(parts)):
                add_directory(prefix + "/".join(parts[:depth]))
            entries[path] = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        return list(entries.values())

    def resolve(self, repo_id: str, revision: str, path: str) -> tuple[Commit, bytes]:
        with self._lock:
            commit = self._commit(repo_id, revision, allow_empty=True)
            if commit is None or path not in commit.files:
                raise HubError(404, "EntryNotFound", f"Entry not found: {path}")
            return commit, commit.files[path]

    # ------------------------------------------------------------------ helpers

    def _authorise(self, token: str | None, need: str = "write") -> str:
        role = self.tokens.get(token or "")
        if role is None:
            raise HubError(401, "", "Invalid credentials in Authorization header")
        if need == "write" and role != "write":
            raise HubError(403, "", "This token has no write access")
        return role

    def _commit(self, repo_id: str, revision: str, *, allow_empty: bool) -> Commit | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "RepoNotFound", f"Repository Not Found for url: {self._repo_url(repo_id)}")
        commit = repo.at(revision)
        if commit is None and not (allow_empty and revision == BRANCH):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _repo_url(self, repo_id: str) -> str:
        return f"{self.url}/{repo_id}"


# (method, path pattern, handler method name without its leading underscore)
ROUTES = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in [
        ("GET", r"/api/whoami-v2", "whoami"),
        ("POST", r"/api/repos/create", "create_repo"),
        ("POST", r"/api/validate-yaml", "validate_yaml"),
        ("POST", rf"/api/models/{REPO}/preupload/{REV}", "preupload"),
        ("POST", rf"/api/models/{REPO}/commit/{REV}", "commit"),
        ("GET", rf"/api/models/{REPO}", "repo_info"),
        ("GET", rf"/api/models/{REPO}/revision/{REV}", "repo_info"),
        ("GET", rf"/api/models/{REPO}/tree/{REV}(?:/(?P<path>.+))?", "tree"),
        ("GET", rf"/{REPO}/resolve/{REV}/(?P<path>.+)", "resolve"),
        ("HEAD", rf"/{REPO}/resolve/{REV}/(?P<path>.+)", "resolve"),
    ]
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub; every answer carries a Content-Length
    hub: HubServer  # set on the subclass made by HubServer.start

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the request list is the log
        pass

    def _handle(self, method: str) -> None:
        # Read the body first and always: unread bytes would be taken for the next request on this connection.
        body = self._read_body()
        path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        self._query = {key: values[-1] for key, values in query.items()}
        try:
            for route_method, pattern, name in ROUTES:
                match = pattern.fullmatch(path)
                if route_method == method and match:
                    params = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                    getattr(self, f"_{name}")(body=body, **params)
                    break
            else:
                raise HubError(404, "", f"no route for {method} {path}")
        except _DropConnection:
            self.hub.requests.append((method, path, 0))
            self.close_connection = True
            return
        except HubError as error:
            self._send_json(error.status, {"error": error.message}, {"X-Error-Code": error.code} if error.code else {})
        except Exception as error:  # a request this server does not understand: 400, which clients do not retry
            self._send_json(400, {"error": f"the test server could not handle {method} {path}: {error!r}"})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, up to the blank line
            pass
        return b"".join(chunks)

    # ------------------------------------------------------------------ routes

    def _whoami(self, body: bytes) -> None:
        self._send_json(200, self.hub.whoami(self._token()))

    def _create_repo(self, body: bytes) -> None:
        self._send_json(*self.hub.create_repo(self._token(), json.loads(body)))

    def _validate_yaml(self, body: bytes) -> None:
        self._send_json(200, {"errors": [], "warnings": []})

    def _preupload(self, body: bytes, repo: str, rev: str) -> None:
        self._send_json(200, self.hub.preupload(self._token(), repo, rev, json.loads(body)))

    def _commit(self, body: bytes, repo: str, rev: str) -> None:
        if "create_pr" in self._query:
            raise HubError(400, "", "pull requests are not supported by this test server")
        self._send_json(200, self.hub.commit(self._token(), repo, rev, body))

    def _repo_info(self, body: bytes, repo: str, rev: str = BRANCH) -> None:
        self._send_json(200, self.hub.repo_info(repo, rev))

    def _tree(self, body: bytes, repo: str, rev: str, path: str = "") -> None:
        recursive = self._query.get("recursive", "false").lower() == "true"
        self._send_json(200, self.hub.tree(repo, rev, path, recursive))

    def _resolve(self, body: bytes, repo: str, rev: str, path: str) -> None:
        commit, content = self.hub.resolve(repo, rev, path)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_sha1(content)}"'}
        self._send(200, content, "application/octet-stream", headers)

    # ------------------------------------------------------------------ answers

    def _token(self) -> str | None:
        authorization = self.headers.get("Authorization", "")
        return authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else None

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if status >= 400:
            headers = {"X-Error-Message": payload.get("error", ""), **(headers or {})}
        self._send(status, json.dumps(payload).encode(), "application/json", headers or {})

    def _send(self, status: int, content: bytes, content_type: str, headers: dict[str, str]) -> None:
        # recorded before answering: once the client has its answer, the test may look at the log
        self.hub.requests.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)
