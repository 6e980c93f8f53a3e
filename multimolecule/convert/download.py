"""Fetch an upstream checkpoint into the local cache, verified against the catalogue.

A download is written to `<cache>/<sha256>/<name>.part` (resumed with an HTTP Range request when an earlier attempt
left one), its size and sha256 are checked, and only then is it moved to `<cache>/<sha256>/<filename>` with
`os.replace`: anything under a final name has been verified, and a verified file is reused without a request.
Bytes that fail the check are deleted. A source ending in `#member` is an archive (tar, tar.gz, zip): the archive is
downloaded the same way, the member is streamed out of it and checked, and the archive is deleted.

Source forms are described in `checkpoints/README.md`. The base URLs of the services can be pointed elsewhere (a
mirror, or a test server) with `HF_ENDPOINT` and the `MULTIMOLECULE_*_ENDPOINT` variables in `ENDPOINTS`.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin

from huggingface_hub import hf_hub_download, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from tqdm.auto import tqdm

from .catalogue import Entry
from .engine import file_sha256
from .errors import ChecksumError, ConversionError

try:  # huggingface_hub 2.x ships httpx under the name httpx2; 1.x ships httpx itself
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    import httpx  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

# Service -> (environment variable, default base URL). Read at every call, so tests can point them at 127.0.0.1.
ENDPOINTS = {
    "google_drive": ("MULTIMOLECULE_GOOGLE_DRIVE_ENDPOINT", "https://drive.usercontent.google.com"),
    "zenodo": ("MULTIMOLECULE_ZENODO_ENDPOINT", "https://zenodo.org"),
    "github_raw": ("MULTIMOLECULE_GITHUB_RAW_ENDPOINT", "https://raw.githubusercontent.com"),
    "github_media": ("MULTIMOLECULE_GITHUB_MEDIA_ENDPOINT", "https://media.githubusercontent.com"),
}

CHUNK_SIZE = 1 << 20
ATTEMPTS = 5  # per fetch; an attempt that was cut off is retried (resumed) only if it made progress
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"
LFS_POINTER_MAX_SIZE = 1024  # the Git LFS specification keeps pointer files below this


class DownloadError(ConversionError):
    """A source could not be downloaded: an HTTP error, a dropped connection, or not the file that was asked for."""


def default_cache_dir() -> Path:
    """`$MULTIMOLECULE_CACHE`, else `~/.cache/multimolecule`."""
    return Path(os.environ.get("MULTIMOLECULE_CACHE") or "~/.cache/multimolecule").expanduser()


def fetch(entry: Entry, cache_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """Download entry.source into the cache (unless already there and verified) and return the verified file path.

    A cached file is checked again (size, sha256) before it is returned; one that no longer matches is deleted and
    downloaded again. Raises `DownloadError` when the source cannot be downloaded (a partial download is kept and
    resumed by the next call) and `ChecksumError` when what came is not the catalogued file (nothing is kept).
    """
    directory = Path(cache_dir if cache_dir is not None else default_cache_dir()).expanduser() / entry.sha256
    target = directory / entry.filename
    if target.is_file():
        try:
            _verify(target, entry)
            return target
        except ChecksumError as error:  # changed since it was verified: _verify deleted it, fetch it again
            logger.warning("%s; downloading it again", error)
    directory.mkdir(parents=True, exist_ok=True)
    location, _, member = entry.source.partition("#")
    part = directory / f"{_basename(location)}.part"
    _download(entry, location, part, expected_size=None if member else entry.size, progress=progress)
    if member:
        extracted = directory / f"{entry.filename}.extracting"
        _unpack(part, member, extracted)
        part = extracted
    _verify(part, entry)
    os.replace(part, target)
    return target


# ---------------------------------------------------------------------------------------------------- sources


def _download(entry: Entry, location: str, part: Path, *, expected_size: int | None, progress: bool) -> None:
    """Bring the file `location` names to `part`, by whichever protocol its scheme asks for."""
    scheme, _, rest = location.partition("://")
    if scheme == "huggingface":
        _download_from_hub(rest, part, progress)
        return
    if scheme not in {"http", "https", "zenodo", "google_drive", "upstream-file"}:
        raise ConversionError(f"{entry.variant}: unknown source form {location!r} (see checkpoints/README.md)")
    with _client() as client:
        if scheme == "zenodo":
            url = _zenodo_url(rest)
        elif scheme == "google_drive":
            url = _google_drive_url(client, rest)
        elif scheme == "upstream-file":
            url = _upstream_file_url(client, rest, entry)
        else:
            url = location
        _download_url(client, url, part, expected_size, progress)


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
    url = f"{_endpoint('google_drive')}/download?" + urlencode({"id": rest.split("/", 1)[0], "export": "download"})
    with client.stream("GET", url) as response:
        _raise_for_status(response, url)
        if not response.headers.get("Content-Type", "").startswith("text/html"):
            return url  # no warning page: the file itself (downloaded again below, with resume)
        response.read()
        form = _DownloadForm()
        form.feed(response.text)
    if form.action is None:
        raise DownloadError(
            f"Google Drive answered {url} with a web page instead of the file: is the file shared with anyone with "
            "the link, and is its download quota not exceeded?"
        )
    return urljoin(str(response.url), form.action) + "?" + urlencode(form.fields)


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
    try:
        with client.stream("GET", raw) as response:
            _raise_for_status(response, raw)
            head = _read_at_most(response, LFS_POINTER_MAX_SIZE)
    except httpx.TransportError as error:  # refused, unresolvable, timed out: one line, not a traceback
        raise DownloadError(f"GET {raw} failed: {error!r}") from error
    if head is not None and head.startswith(LFS_POINTER_PREFIX):
        return f"{_endpoint('github_media')}/media/{name}"
    return raw


def _read_at_most(response: httpx.Response, limit: int) -> bytes | None:
    """The whole body if it is at most `limit` bytes, else None (reading no more than that)."""
    length = response.headers.get("Content-Length")
    if length is not None and int(length) > limit:
        return None
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return body


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
    except (HfHubHTTPError, LocalEntryNotFoundError, httpx.TransportError) as error:
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
    return httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=30.0), headers=headers)


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.status_code >= 400:
        raise DownloadError(f"GET {url} failed: HTTP {response.status_code} {response.reason_phrase}".rstrip())


def _download_url(client: httpx.Client, url: str, part: Path, expected_size: int | None, progress: bool) -> None:
    """Stream `url` to `part`, continuing what is already there; a cut-off attempt is resumed while it progresses."""
    for attempt in range(1, ATTEMPTS + 1):
        before = _size(part)
        try:
            _download_once(client, url, part, expected_size, progress)
            return
        except httpx.TransportError as error:  # refused, timed out, or the connection dropped mid-way
            if attempt == ATTEMPTS or _size(part) <= before:
                kept = f"; run again to resume from the {_size(part)} bytes kept in {part}" if part.exists() else ""
                raise DownloadError(f"GET {url} failed: {error!r}{kept}") from error
            logger.info("download of %s was cut off at %d bytes; resuming", url, _size(part))


def _download_once(client: httpx.Client, url: str, part: Path, expected_size: int | None, progress: bool) -> None:
    offset = _size(part)
    if offset and offset == expected_size:
        return  # complete already, e.g. interrupted before it was verified
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and offset:  # nothing at or after offset: complete, or not this file
            if _content_range(response)[2] == offset:
                return
            part.unlink()
            _download_once(client, url, part, expected_size, progress)
            return
        _raise_for_status(response, url)
        if response.status_code == 206:
            start, _, total = _content_range(response)
            if start != offset:
                raise DownloadError(f"GET {url}: asked for bytes from {offset}, the server sent them from {start}")
        else:  # 200: a full answer, also when the server ignored Range; start over
            offset, length = 0, response.headers.get("Content-Length")
            total = int(length) if length is not None else None
        if expected_size is not None and total is not None and total != expected_size:
            part.unlink(missing_ok=True)
            raise ChecksumError(f"{url} is {total} bytes, the catalogue says {expected_size}: not the catalogued file")
        with part.open("ab" if offset else "wb") as file, _bar(total, offset, part.name, progress) as bar:
            for chunk in response.iter_bytes():  # as it arrives: a cut-off answer keeps all it delivered
                file.write(chunk)
                bar.update(len(chunk))


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


def _unpack(archive: Path, member: str, destination: Path) -> None:
    """Stream `member` out of `archive` into `destination`, then drop the archive. A broken archive or a missing
    member drops both (the archive must not be resumed from); an interruption keeps the archive."""
    try:
        _extract(archive, member, destination)
    except ConversionError:
        archive.unlink(missing_ok=True)
        destination.unlink(missing_ok=True)
        raise
    except BaseException:
        destination.unlink(missing_ok=True)
        raise
    archive.unlink()


def _extract(archive: Path, member: str, destination: Path) -> None:
    """Copy one member in chunks, never the whole archive to disk or to memory; tar members are found in one pass
    over the (possibly compressed) stream."""
    wanted, label = _member_name(member), archive.name.removesuffix(".part")
    try:
        if _is_zip(archive):
            with zipfile.ZipFile(archive) as bundle:
                names = [name for name in bundle.namelist() if not name.endswith("/")]
                found = next((name for name in names if _member_name(name) == wanted), None)
                if found is not None:
                    with bundle.open(found) as source, destination.open("wb") as target:
                        shutil.copyfileobj(source, target, CHUNK_SIZE)
                    return
        else:
            names = []
            with tarfile.open(archive, "r|*") as bundle:
                for info in bundle:
                    if not info.isfile():
                        continue
                    if _member_name(info.name) == wanted:
                        with bundle.extractfile(info) as source, destination.open("wb") as target:  # type: ignore[union-attr]
                            shutil.copyfileobj(source, target, CHUNK_SIZE)
                        return
                    names.append(info.name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise DownloadError(f"could not read the archive {label} ({error}); it was deleted") from error
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    raise DownloadError(f"the archive {label} has no file {member!r}; it holds: {shown or 'no files'}")


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
