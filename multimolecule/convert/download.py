"""Fetch an upstream checkpoint into the local cache, verified against the catalogue.

A download is written to `<cache>/<sha256>/<name>.part` (resumed with an HTTP Range request when an earlier attempt
left one), its size and sha256 are checked, and only then is it moved to `<cache>/<sha256>/<filename>` with
`os.replace`: anything under a final name has been verified, and a verified file is reused without a request.
Bytes that fail the check are deleted.

A source ending in `#member` is a file inside an archive (tar, tar.gz, zip). The archive is downloaded once, to
`<cache>/.archives/<key of its URL>/`, and every catalogued member of it is extracted in the same pass, each checked
against its own catalogue entry; then the archive is deleted. A `config.json` beside a member is kept next to it.

What a server can send is bounded: a file stops at its catalogued size (an archive at its catalogued members' sizes,
each member's extraction at its own), a web page at `PAGE_LIMIT`, anything without a catalogued size at
`$MULTIMOLECULE_MAX_DOWNLOAD_BYTES`; a transfer with no progress for `$MULTIMOLECULE_DOWNLOAD_STALL_SECONDS` stops.
Each cache entry (and each archive) is locked with `filelock` while it is fetched (`<cache>.locks/`): a second
process waits, then reuses the verified file.

Source forms are described in `checkpoints/README.md`. The base URLs of the services can be pointed elsewhere (a
mirror, or a test server) with `HF_ENDPOINT` and the `MULTIMOLECULE_*_ENDPOINT` variables in `ENDPOINTS`.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import re
import shutil
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode, urljoin

from filelock import FileLock, Timeout
from huggingface_hub import hf_hub_download, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from tqdm.auto import tqdm

from .catalogue import Entry, catalogue
from .digest import file_sha256
from .errors import ChecksumError, ConversionError

try:  # huggingface_hub 2.x ships httpx under the name httpx2; 1.x ships httpx itself
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

# Service -> (environment variable, default base URL). Read at every call, so tests can point them at 127.0.0.1.
ENDPOINTS = {
    "google_drive": ("MULTIMOLECULE_GOOGLE_DRIVE_ENDPOINT", "https://drive.usercontent.google.com"),
    "google_drive_folder": ("MULTIMOLECULE_GOOGLE_DRIVE_FOLDER_ENDPOINT", "https://drive.google.com"),
    "zenodo": ("MULTIMOLECULE_ZENODO_ENDPOINT", "https://zenodo.org"),
    "github_raw": ("MULTIMOLECULE_GITHUB_RAW_ENDPOINT", "https://raw.githubusercontent.com"),
    "github_media": ("MULTIMOLECULE_GITHUB_MEDIA_ENDPOINT", "https://media.githubusercontent.com"),
}

CHUNK_SIZE = 1 << 20
ATTEMPTS = 5  # per fetch; an attempt that was cut off is retried (resumed) only if it made progress
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX_SIZE = 1024  # the Git LFS specification keeps pointer files below this
PAGE_LIMIT = 4 << 20  # a web page (Drive's warning page, a folder listing) is never larger than this
SIDECAR = "config.json"  # kept beside an archive member: the converter reads hyperparameters from it
SIDECAR_LIMIT = 1 << 20
ARCHIVE_SLACK = 16 << 20  # an archive may exceed its catalogued members by 10% and this (headers, small files)
# Without a catalogued size, a download stops at this many bytes (no published checkpoint comes near it).
MAX_DOWNLOAD = ("MULTIMOLECULE_MAX_DOWNLOAD_BYTES", 32 << 30)
# A transfer that moves fewer than PROGRESS_BYTES in this many seconds has stalled.
STALL_SECONDS = ("MULTIMOLECULE_DOWNLOAD_STALL_SECONDS", 60.0)
PROGRESS_BYTES = 64 << 10
STAGING_SUFFIXES = (".part", ".extracting")


class DownloadError(ConversionError):
    """A source could not be downloaded: an HTTP error, a dropped connection, or not the file that was asked for."""


class _Stalled(DownloadError):
    """No progress within the stall deadline; what came is kept, to be resumed."""


class _TooLarge(DownloadError):
    """More bytes than the bound allows; what came is deleted."""


@dataclass(frozen=True)
class _Bound:
    """At most `size` bytes may come, because of `why`; `catalogued`: exceeding it means not the catalogued file."""

    size: int
    why: str
    catalogued: bool = False


def default_cache_dir() -> Path:
    """`$MULTIMOLECULE_CACHE`, else `~/.cache/multimolecule`."""
    return Path(os.environ.get("MULTIMOLECULE_CACHE") or "~/.cache/multimolecule").expanduser()


def fetch(
    entry: Entry,
    cache_dir: str | Path | None = None,
    *,
    progress: bool = True,
    catalogued: Iterable[Entry] | None = None,
) -> Path:
    """Download entry.source into the cache (unless already there and verified) and return the verified file path.

    A cached file is checked again (size, sha256) before it is returned; one that no longer matches is deleted and
    downloaded again. Raises `DownloadError` when the source cannot be downloaded (a partial download is kept and
    resumed by the next call) and `ChecksumError` when what came is not the catalogued file (nothing is kept).
    `catalogued` (default: the catalogue) is where the other members of an archive are looked up, to be extracted
    in the same pass.
    """
    cache = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser()
    try:
        return _fetch(entry, cache, progress, catalogue().values() if catalogued is None else catalogued)
    except OSError as error:  # the cache's disk: full, read-only, over a quota or a file size limit
        if error.errno not in _DISK_ERRORS:
            raise
        where = f" ({error.filename})" if error.filename else ""
        raise DownloadError(f"cannot write to the download cache {cache}{where}: {error.strerror}") from error


_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _fetch(entry: Entry, cache: Path, progress: bool, catalogued: Iterable[Entry]) -> Path:
    directory = cache / entry.sha256
    location, _, member = entry.source.partition("#")
    with ExitStack() as locks:
        if member:  # the archive first, always: whoever holds it may extract this entry too
            locks.enter_context(_locked(_lock_path(cache, f"archive-{_key(location)}"), location))
        locks.enter_context(_locked(_lock_path(cache, entry.sha256), entry.source))
        cached = _cached(directory, entry)
        if cached is not None:
            return cached
        directory.mkdir(parents=True, exist_ok=True)
        if member:
            siblings = [other for other in catalogued if _archive_of(other) == location]
            _fetch_archive(entry, location, cache, siblings, locks, progress)
            return directory / entry.filename
        part = directory / f"{_basename(location)}.part"
        bound = _Bound(entry.size, "the catalogued size", True) if entry.size is not None else _ceiling()
        name = _download(entry, location, part, bound, expected_size=entry.size, progress=progress)
        _verify(part, entry)
        target = directory / (name if _unnamed(entry) and name else entry.filename)
        os.replace(part, target)
        return target


# ---------------------------------------------------------------------------------------------------- the cache


def _cached(directory: Path, entry: Entry) -> Path | None:
    """The verified file of `entry` in its cache directory, if there is one (a changed one is deleted)."""
    for path in _candidates(directory, entry):
        try:
            _verify(path, entry)
            return path
        except ChecksumError as error:  # changed since it was verified: _verify deleted it, fetch it again
            logger.warning("%s; downloading it again", error)
    return None


def _candidates(directory: Path, entry: Entry) -> list[Path]:
    """`<filename>`; for a source that names no file, whatever name the server gave it (one file, not staging)."""
    if not _unnamed(entry):
        path = directory / entry.filename
        return [path] if path.is_file() else []
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith(STAGING_SUFFIXES)
    )


def _unnamed(entry: Entry) -> bool:
    """`google_drive://ID`: the source gives no file name, so the file keeps the one Drive sends."""
    scheme, _, rest = entry.source.partition("://")
    return scheme == "google_drive" and "/" not in rest.rstrip("/")


def _lock_path(cache: Path, name: str) -> Path:
    """Locks live beside the cache (`<cache>.locks/`), not in it: the cache holds only verified files and parts to
    resume. They stay after release, as filelock leaves them on Unix (removing one can let two processes in)."""
    directory = cache.with_name(f"{cache.name}.locks") if cache.name else cache / ".locks"
    return directory / f"{name}.lock"


def _key(location: str) -> str:
    return hashlib.sha256(location.encode()).hexdigest()[:32]


@contextmanager
def _locked(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at `path`, saying so when another process has it (it is released when that process ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("%s is being fetched by another process; waiting for it (lock %s)", what, path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _try_lock(path: Path) -> FileLock | None:
    """The lock at `path` if it is free now, else None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def _ceiling() -> _Bound:
    variable, default = MAX_DOWNLOAD
    value = os.environ.get(variable)
    return _Bound(int(value) if value else default, f"${variable}, for a file the catalogue gives no size of")


# ---------------------------------------------------------------------------------------------------- sources


def _download(
    entry: Entry, location: str, part: Path, bound: _Bound, *, expected_size: int | None, progress: bool
) -> str | None:
    """Bring the file `location` names to `part`, by whichever protocol its scheme asks for; returns the file name
    the server gave (Content-Disposition), if any. Every HTTP failure is a `DownloadError` naming the URL."""
    scheme, _, rest = location.partition("://")
    if scheme == "huggingface":
        _download_from_hub(rest, part, progress)
        return None
    if scheme not in {"http", "https", "zenodo", "google_drive", "upstream-file"}:
        raise ConversionError(f"{entry.variant}: unknown source form {location!r} (see checkpoints/README.md)")
    url = location
    try:
        with _client() as client:
            if scheme == "zenodo":
                url = _zenodo_url(rest)
            elif scheme == "google_drive":
                url = _google_drive_url(client, rest)
            elif scheme == "upstream-file":
                url = _upstream_file_url(client, rest, entry)
            return _download_url(client, url, part, bound, expected_size, progress)
    except (httpx.HTTPError, httpx.InvalidURL) as error:  # what _download_url does not handle itself
        raise DownloadError(f"GET {_url_of(error, url)} failed: {_describe(error)}") from error


def _endpoint(service: str) -> str:
    variable, default = ENDPOINTS[service]
    return (os.environ.get(variable) or default).rstrip("/")


def _zenodo_url(rest: str) -> str:
    """`10.5281/zenodo.RECORD/file` -> the record's file URL (the DOI's last part is the record id)."""
    match = re.fullmatch(r"10\.5281/zenodo\.(\d+)/(.+)", rest)
    if match is None:
        raise ConversionError(f"zenodo://{rest} is not of the form zenodo://10.5281/zenodo.RECORD/file")
    record, name = match.groups()
    return f"{_endpoint('zenodo')}/records/{record}/files/{quote(name)}?download=1"


def _google_drive_url(client: httpx.Client, rest: str) -> str:
    """The URL that serves the file itself: Drive answers large files with a "can't scan for viruses" page whose
    form must be submitted (its hidden `confirm` and `uuid` fields) to get the file."""
    url = f"{_endpoint('google_drive')}/download?" + urlencode(
        {"id": _google_drive_file(client, rest), "export": "download"}
    )
    with client.stream("GET", url) as response:
        _raise_for_status(response, url)
        if not response.headers.get("Content-Type", "").startswith("text/html"):
            return url  # no warning page: the file itself (downloaded again below, with resume)
        form = _DownloadForm()
        form.feed(_read_page(response, url))
    if form.action is None:
        raise DownloadError(
            f"Google Drive answered {url} with a web page instead of the file: is the file shared with anyone with "
            "the link, and is its download quota not exceeded?"
        )
    return urljoin(str(response.url), form.action) + "?" + urlencode(form.fields)


def _google_drive_file(client: httpx.Client, rest: str) -> str:
    """The file id of `FILE_ID[/name]`, or of `FOLDER_ID/sub/folders/file` (more than one name after the id):
    found by listing the shared folder and each subfolder by name."""
    folder, *path = rest.strip("/").split("/")
    if len(path) <= 1:
        return folder
    shown = folder
    for depth, name in enumerate(path):
        is_folder = depth < len(path) - 1
        entries = _list_drive_folder(client, folder)
        matches = [item for item in entries if item[1] == name and item[2] == is_folder]
        kind = "folder" if is_folder else "file"
        if len(matches) != 1:
            held = ", ".join(sorted(f"{item[1]}/" if item[2] else item[1] for item in entries))
            held = held or "nothing (is the folder shared with anyone with the link?)"
            problem = f"{len(matches)} {kind}s named {name!r}" if matches else f"no {kind} {name!r}"
            raise DownloadError(f"the Google Drive folder {shown} has {problem}; it holds: {held}")
        folder, shown = matches[0][0], f"{shown}/{name}"
    return folder


def _list_drive_folder(client: httpx.Client, folder: str) -> list[tuple[str, str, bool]]:
    """(id, name, is a folder) of each entry of a shared folder, from Drive's embedded folder view."""
    url = f"{_endpoint('google_drive_folder')}/embeddedfolderview?" + urlencode({"id": folder})
    with client.stream("GET", url) as response:
        _raise_for_status(response, url)
        listing = _FolderListing()
        listing.feed(_read_page(response, url))
        listing.close()
    return listing.entries


class _FolderListing(HTMLParser):
    """The entries of Drive's embedded folder view: `<div class="flip-entry" id="entry-ID">` holding a link
    (`.../drive/folders/ID` for a folder, `.../file/d/ID/...` for a file) and `<div class="flip-entry-title">`."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str, str, bool]] = []
        self._entry: list[Any] | None = None  # [id, name parts, is folder]
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "div" and "flip-entry" in classes and (attributes.get("id") or "").startswith("entry-"):
            self._close()
            self._entry = [(attributes.get("id") or "").removeprefix("entry-"), [], False]
        elif self._entry is not None and tag == "a":
            self._entry[2] = self._entry[2] or "/folders/" in (attributes.get("href") or "")
        elif self._entry is not None and tag == "div" and "flip-entry-title" in classes:
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and self._entry is not None:
            self._entry[1].append(data)

    def close(self) -> None:
        super().close()
        self._close()

    def _close(self) -> None:
        if self._entry is not None:
            identifier, name, is_folder = self._entry
            self.entries.append((identifier, "".join(name).strip(), is_folder))
            self._entry = None


class _DownloadForm(HTMLParser):
    """The action and the named inputs of Google Drive's `download-form`: what "Download anyway" submits."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "download-form":
            self._inside, self.action = True, attributes.get("action") or ""
        elif tag == "input" and self._inside and attributes.get("name"):
            self.fields[attributes["name"] or ""] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _upstream_file_url(client: httpx.Client, path: str, entry: Entry) -> str:
    """The file of the upstream repository at the pinned commit; GitHub's raw URL serves a Git LFS pointer for a
    file kept in LFS, whose content is then at the media URL."""
    match = re.fullmatch(r"https?://github\.com/([^/]+/[^/]+?)(?:\.git)?/?", entry.repository)
    if match is None:
        raise ConversionError(
            f"{entry.variant}: upstream-file sources need a GitHub repository, not {entry.repository}"
        )
    name = f"{match.group(1)}/{entry.commit}/{quote(path)}"
    raw = f"{_endpoint('github_raw')}/{name}"
    with client.stream("GET", raw) as response:
        _raise_for_status(response, raw)
        head = _read_at_most(response, raw, LFS_POINTER_MAX_SIZE)
    if head is not None and head.startswith(LFS_POINTER_PREFIX):
        return f"{_endpoint('github_media')}/media/{name}"
    return raw


def _read_at_most(response: httpx.Response, url: str, limit: int) -> bytes | None:
    """The whole body if it is at most `limit` bytes, else None (reading no more than that)."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    try:
        return b"".join(_body(response, url, _Bound(limit, "")))
    except _TooLarge:
        return None


def _read_page(response: httpx.Response, url: str) -> str:
    """A web page, read up to PAGE_LIMIT bytes: a larger one is not a page the downloader can use."""
    bound = _Bound(PAGE_LIMIT, "no page the downloader reads is larger")
    try:
        body = b"".join(_body(response, url, bound))
    except _TooLarge as error:
        raise DownloadError(f"GET {url} answered with a web page of more than {PAGE_LIMIT} bytes; stopped") from error
    return body.decode(response.encoding or "utf-8", errors="replace")


def _download_from_hub(rest: str, part: Path, progress: bool) -> None:
    """`owner/repo@revision/path` through huggingface_hub (tokens, Xet, redirects), staged next to `part`."""
    match = re.fullmatch(r"([^/@]+/[^/@]+)@([^/]+)/(.+)", rest)
    if match is None:
        raise ConversionError(f"huggingface://{rest} is not of the form huggingface://owner/repo@revision/path")
    repo_id, revision, path = match.groups()
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now: huggingface_hub reads it once, at import
    staging = part.parent / ".huggingface"
    try:
        local = hf_hub_download(
            repo_id,
            path,
            revision=revision,
            local_dir=staging,
            endpoint=endpoint,
            tqdm_class=None if progress else _SilentBar,
        )
        os.replace(local, part)
    except (HfHubHTTPError, LocalEntryNotFoundError, httpx.HTTPError) as error:
        url = hf_hub_url(repo_id, path, revision=revision, endpoint=endpoint)
        raise DownloadError(f"GET {url} failed: {_hub_failure(error)}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _hub_failure(error: BaseException) -> str:
    """The HTTP status behind a huggingface_hub error (often wrapped in LocalEntryNotFoundError), else its text."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            return f"HTTP {cause.response.status_code} {cause.response.reason_phrase}".rstrip()
        cause = cause.__cause__
    return str(error)


class _SilentBar(tqdm):
    """huggingface_hub takes a progress-bar class, not a switch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "disable": True})


# ---------------------------------------------------------------------------------------------------- HTTP


def _client() -> httpx.Client:
    # identity: a .gz served with Content-Encoding: gzip must not be decoded, and Range offsets are of the file
    headers = {"Accept-Encoding": "identity", "User-Agent": "multimolecule"}
    timeout = httpx.Timeout(_stall_seconds(), connect=30.0)  # no byte for this long is a stall, too
    return httpx.Client(follow_redirects=True, timeout=timeout, headers=headers)


def _stall_seconds() -> float:
    variable, default = STALL_SECONDS
    value = os.environ.get(variable)
    return float(value) if value else default


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 400:
        raise DownloadError(f"GET {url} failed: HTTP {response.status_code} {response.reason_phrase}".rstrip())


def _url_of(error: Exception, fallback: str) -> str:
    try:
        return str(error.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when the error has no request
        return fallback


def _describe(error: Exception) -> str:
    """One line for an httpx error: what happened, in words, then httpx's own text."""
    if isinstance(error, httpx.TooManyRedirects):
        return f"too many redirects (a redirect loop?): {error}"
    if isinstance(error, httpx.DecodingError):
        return f"the body does not decode as its Content-Encoding says: {error}"
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within the time allowed ({type(error).__name__})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _body(response: httpx.Response, url: str, bound: _Bound) -> Iterator[bytes]:
    """The body as it arrives, stopped with `_TooLarge` past `bound.size` bytes, and with `_Stalled` when fewer
    than PROGRESS_BYTES come within the stall deadline (a server trickling bytes keeps no fetch alive)."""
    stall, received = _stall_seconds(), 0
    window_start, window_bytes = time.monotonic(), 0
    try:
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > bound.size:
                raise _TooLarge(f"GET {url} sent more than {bound.size} bytes ({bound.why}); stopped")
            window_bytes += len(chunk)
            now = time.monotonic()
            if window_bytes >= PROGRESS_BYTES:
                window_start, window_bytes = now, 0
            elif now - window_start > stall:
                raise _Stalled(f"GET {url} stalled: less than {PROGRESS_BYTES} bytes in {stall:g} s")
            yield chunk
    except httpx.TimeoutException as error:
        raise _Stalled(f"GET {url} stalled: nothing came for {stall:g} s") from error


def _download_url(
    client: httpx.Client, url: str, part: Path, bound: _Bound, expected_size: int | None, progress: bool
) -> str | None:
    """Stream `url` to `part`, continuing what is already there; a cut-off attempt is resumed while it progresses.
    Returns the file name the server gave, if any."""
    attempt, restarted = 0, False
    while True:
        attempt, before = attempt + 1, _size(part)
        try:
            answer = _download_once(client, url, part, bound, expected_size, progress)
        except _Stalled as error:
            variable = STALL_SECONDS[0]
            raise DownloadError(f"{error} (${variable} sets the deadline){_resume_hint(part)}") from error
        except (httpx.TransportError, httpx.DecodingError) as error:  # refused, dropped mid-way, undecodable
            if isinstance(error, httpx.DecodingError):
                part.unlink(missing_ok=True)  # decoded bytes do not resume
            if isinstance(error, httpx.DecodingError) or attempt == ATTEMPTS or _size(part) <= before:
                raise DownloadError(f"GET {url} failed: {_describe(error)}{_resume_hint(part)}") from error
            logger.info("download of %s was cut off at %d bytes; resuming", url, _size(part))
            continue
        if answer is not _RESTART:
            return answer
        if restarted:
            raise DownloadError(f"GET {url}: the server answers a request for the whole file with a part of it")
        restarted = True


_RESTART = "\0restart"  # _download_once discarded a part the server would not resume: start over, once


def _resume_hint(part: Path) -> str:
    return f"; run again to resume from the {_size(part)} bytes kept in {part}" if _size(part) else ""


def _download_once(
    client: httpx.Client, url: str, part: Path, bound: _Bound, expected_size: int | None, progress: bool
) -> str | None:
    offset = _size(part)
    if offset and offset == expected_size:
        return None  # complete already, e.g. interrupted before it was verified
    if offset > bound.size:
        part.unlink()
        offset = 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        name = _disposition_name(response)
        if response.status_code == 416 and offset:  # nothing at or after offset: complete, or not this file
            if _content_range(response)[2] == offset:
                return name
            part.unlink()
            return _RESTART
        _raise_for_status(response, url)
        if response.status_code == 206:
            start, _, total = _content_range(response)
            if start != offset:  # e.g. every Range answered from byte 0: this part cannot be resumed here
                logger.warning("GET %s answered bytes from %s, not %d: starting over", url, start, offset)
                part.unlink(missing_ok=True)
                return _RESTART
        else:  # 200: a full answer, also when the server ignored Range; start over
            offset, length = 0, response.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
        _check_total(url, part, total, expected_size, bound)
        allowed = _Bound(bound.size - offset, bound.why, bound.catalogued)
        with part.open("ab" if offset else "wb") as file, _bar(total, offset, part.name, progress) as bar:
            try:
                for chunk in _body(response, url, allowed):  # as it arrives: a cut-off answer keeps all it delivered
                    file.write(chunk)
                    bar.update(len(chunk))
            except _TooLarge as error:
                part.unlink(missing_ok=True)
                if bound.catalogued:
                    raise ChecksumError(f"{error}: not the catalogued file; what came was deleted") from error
                raise DownloadError(f"{error}; what came was deleted") from error
    return name


def _check_total(url: str, part: Path, total: int | None, expected_size: int | None, bound: _Bound) -> None:
    """Refuse, before reading it, a file whose announced size is not the catalogued one, or is past the bound."""
    if total is None:
        return
    if expected_size is not None and total != expected_size:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{url} is {total} bytes, the catalogue says {expected_size}: not the catalogued file")
    if total > bound.size:
        part.unlink(missing_ok=True)
        kind = ChecksumError if bound.catalogued else DownloadError
        raise kind(f"{url} is {total} bytes, more than the {bound.size} allowed ({bound.why})")


def _disposition_name(response: httpx.Response) -> str | None:
    """The file name of `Content-Disposition`, if it is a plain one (no path, not hidden, not a staging name)."""
    header = response.headers.get("Content-Disposition")
    if not header:
        return None
    message = Message()
    message["Content-Disposition"] = header
    name = (message.get_filename() or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or name.startswith(".") or name.endswith(STAGING_SUFFIXES) or not name.isprintable():
        return None
    return name if len(name.encode()) <= 255 else None


def _content_range(response: httpx.Response) -> tuple[int | None, int | None, int | None]:
    """(start, end, total) of `Content-Range: bytes START-END/TOTAL` (or `bytes */TOTAL`); None where absent."""
    match = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    if match is None:
        return None, None, None
    return tuple(int(value) if value and value != "*" else None for value in match.groups())  # type: ignore[return-value]


@contextmanager
def _bar(total: int | None, initial: int, name: str, progress: bool) -> Iterator[tqdm]:
    with tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not progress
    ) as bar:
        yield bar


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _basename(location: str) -> str:
    """The downloaded file's name, as `Entry.filename` takes it (`google_drive://ID` is named `ID`)."""
    return location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------------- archives


@dataclass
class _Member:
    """One catalogued member to extract in the pass: where it goes, and how it went."""

    entry: Entry
    directory: Path
    staged: Path | None = None
    sidecar: Path | None = None
    error: ConversionError | None = None


def _archive_of(entry: Entry) -> str | None:
    location, _, member = entry.source.partition("#")
    return location if member else None


def _member_of(entry: Entry) -> str:
    return _member_name(entry.source.partition("#")[2])


def _fetch_archive(
    entry: Entry, location: str, cache: Path, siblings: list[Entry], locks: ExitStack, progress: bool
) -> None:
    """Download the archive once and extract `entry` and every other catalogued member not yet cached (those whose
    lock is free), each verified against its own entry. Raises for `entry`; a failed sibling is only logged."""
    catalogued = {other.sha256: other for other in [*siblings, entry]}.values()
    members = {_member_of(entry): _Member(entry, cache / entry.sha256)}
    for other in catalogued:
        name = _member_of(other)
        if name in members or (cache / other.sha256 / other.filename).is_file():
            continue
        lock = _try_lock(_lock_path(cache, other.sha256))
        if lock is not None:
            locks.callback(lock.release)
            members[name] = _Member(other, cache / other.sha256)
            members[name].directory.mkdir(parents=True, exist_ok=True)
    store = cache / ".archives" / _key(location)
    store.mkdir(parents=True, exist_ok=True)
    part = store / f"{_basename(location)}.part"
    _download(entry, location, part, _archive_bound(catalogued), expected_size=None, progress=progress)
    _unpack(part, members, entry)


def _archive_part(cache: Path, location: str) -> Path:
    """Where the archive at `location` is downloaded to (and resumed from)."""
    return cache / ".archives" / _key(location) / f"{_basename(location)}.part"


def _archive_bound(members: Iterable[Entry]) -> _Bound:
    """An archive holds its catalogued members and little else: their sizes, 10% and ARCHIVE_SLACK; without the
    size of each, the general ceiling."""
    sizes = [member.size for member in members]
    if any(size is None for size in sizes):
        return _ceiling()
    total = sum(sizes)  # type: ignore[arg-type]
    return _Bound(total + total // 10 + ARCHIVE_SLACK, "the catalogued sizes of its members, 10% and 16 MiB", True)


def _unpack(archive: Path, members: dict[str, _Member], wanted: Entry) -> None:
    """Extract, verify and place every member, then drop the archive. A broken archive drops it (it must not be
    resumed from); an interruption keeps it. Staged files never outlive the call."""
    try:
        names = _extract(archive, members)
    except BaseException as error:
        _discard_staged(members)
        if isinstance(error, ConversionError):
            archive.unlink(missing_ok=True)
        raise
    archive.unlink(missing_ok=True)
    with suppress(OSError):
        archive.parent.rmdir()
    failure = None
    for name, member in members.items():
        try:
            _place(member, archive.name.removesuffix(".part"), name, names)
        except ConversionError as error:
            if member.entry is wanted:
                failure = error
            else:
                logger.warning("%s (another catalogued member of the archive; it is fetched on its own later)", error)
        finally:
            _discard_staged({name: member})
    if failure is not None:
        raise failure


def _place(member: _Member, label: str, name: str, names: list[str]) -> None:
    """Verify a staged member and move it (its sidecar first) under its final name."""
    if member.error is not None:
        raise member.error
    if member.staged is None:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise DownloadError(f"the archive {label} has no file {name!r}; it holds: {shown or 'no files'}")
    _verify(member.staged, member.entry)
    if member.sidecar is not None:
        os.replace(member.sidecar, member.directory / SIDECAR)
    os.replace(member.staged, member.directory / member.entry.filename)


def _discard_staged(members: dict[str, _Member]) -> None:
    for member in members.values():
        for path in (member.staged, member.sidecar):
            if path is not None:
                path.unlink(missing_ok=True)


def _extract(archive: Path, members: dict[str, _Member]) -> list[str]:
    """One pass over the archive, streaming each wanted member (and the `config.json` beside it) out in chunks,
    never the whole archive to disk or to memory; each member stops at its catalogued size, the sidecar at
    SIDECAR_LIMIT. Returns the names of the files the archive holds."""
    sidecars = {posixpath.join(posixpath.dirname(name), SIDECAR): member for name, member in members.items()}
    label, names = archive.name.removesuffix(".part"), []
    try:
        for name, size, open_member in _archive_files(archive):
            names.append(name)
            if name in members:
                _stage_member(members[name], size, open_member, label)
            elif name in sidecars and sidecars[name].sidecar is None:
                _stage_sidecar(sidecars[name], name, size, open_member, label)
    except _ARCHIVE_ERRORS as error:
        raise DownloadError(f"could not read the archive {label} ({error}); it was deleted") from error
    return names


# What a damaged or foreign archive raises while it is read (the disk's own OSErrors are not among them).
_ARCHIVE_ERRORS = (
    tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, NotImplementedError
)  # fmt: skip


def _stage_member(member: _Member, size: int, open_member: Callable[[], IO[bytes]], label: str) -> None:
    entry = member.entry
    bound = _Bound(entry.size, "the catalogued size", True) if entry.size is not None else _ceiling()
    if size > bound.size:
        member.error = ChecksumError(
            f"{entry.source}: the archive {label} says the member is {size} bytes, more than the {bound.size} "
            f"allowed ({bound.why}); nothing was extracted"
        )
        return
    staged = member.directory / f"{entry.filename}.extracting"
    member.staged = staged
    if not _copy_bounded(open_member, staged, bound.size):
        member.error = ChecksumError(
            f"{entry.source}: the member inflates to more than the {bound.size} bytes allowed ({bound.why}); "
            "stopped, and deleted what came"
        )


def _stage_sidecar(member: _Member, name: str, size: int, open_member: Callable[[], IO[bytes]], label: str) -> None:
    """The `config.json` beside a member (a Hugging Face release directory), kept beside the verified weights for
    the converter to read hyperparameters from. It is NOT covered by the catalogue's hash: only the weights are
    verified, so nothing but hyperparameters may be taken from it."""
    staged = member.directory / f"{SIDECAR}.extracting"
    if size <= SIDECAR_LIMIT and _copy_bounded(open_member, staged, SIDECAR_LIMIT):
        member.sidecar = staged
    else:
        staged.unlink(missing_ok=True)
        logger.warning("the archive %s has a %s over %d bytes; it is not kept", label, name, SIDECAR_LIMIT)


def _copy_bounded(open_member: Callable[[], IO[bytes]], destination: Path, limit: int) -> bool:
    """Copy in chunks; False (and nothing left at `destination`) if the source holds more than `limit` bytes."""
    written = 0
    with open_member() as source, destination.open("wb") as target:
        while chunk := source.read(min(CHUNK_SIZE, limit - written + 1)):
            written += len(chunk)
            if written > limit:
                break
            target.write(chunk)
    if written > limit:
        destination.unlink()
        return False
    return True


def _archive_files(archive: Path) -> Iterator[tuple[str, int, Callable[[], IO[bytes]]]]:
    """(normalised name, declared size, opener) of each file of a zip or tar (possibly compressed, read as a
    stream); an opener is valid until the next item."""
    if _is_zip(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                if not info.is_dir():
                    yield _member_name(info.filename), info.file_size, lambda info=info: bundle.open(info)
        return
    with tarfile.open(archive, "r|*") as bundle:
        for info in bundle:
            if info.isfile():
                yield _member_name(info.name), info.size, lambda info=info: bundle.extractfile(info)  # type: ignore[misc]


def _is_zip(archive: Path) -> bool:
    """By the magic number: `zipfile.is_zipfile` looks for a record near the end, which a tar.gz can hold by chance."""
    with archive.open("rb") as file:
        return file.read(4) in {b"PK\x03\x04", b"PK\x05\x06"}


def _member_name(name: str) -> str:
    return posixpath.normpath(name).lstrip("/")


# ---------------------------------------------------------------------------------------------------- checks


def _verify(path: Path, entry: Entry) -> None:
    """Size and sha256 against the catalogue; bytes that fail are deleted so nothing can read them later."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        path.unlink()
        raise ChecksumError(f"{entry.source}: expected {entry.size} bytes, got {size}; the downloaded file was deleted")
    actual = file_sha256(path)
    if actual != entry.sha256:
        path.unlink()
        raise ChecksumError(
            f"sha256 mismatch for {entry.source}: expected {entry.sha256}, got {actual}; "
            "the downloaded file was deleted"
        )
