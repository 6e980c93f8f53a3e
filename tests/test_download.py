"""The checkpoint downloader, end to end against a file server on 127.0.0.1 (tests/servers/files.py)."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import zipfile
from pathlib import Path

import pytest
from servers.files import FileServer, Request

from multimolecule.convert.catalogue import Entry, Paper
from multimolecule.convert.download import ENDPOINTS, default_cache_dir, fetch
from multimolecule.convert.errors import ChecksumError, ConversionError

REPOSITORY, COMMIT = "owner/project", "0123456789abcdef0123456789abcdef01234567"
REVISION = "89abcdef0123456789abcdef0123456789abcdef"


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def entry(source: str, content: bytes, size: int | None = None) -> Entry:
    """A catalogue entry for `content` served at `source`."""
    return Entry(
        variant="test",
        family="test",
        family_name="Test",
        source=source,
        sha256=sha256(content),
        repo_id="multimolecule/test",
        repository=f"https://github.com/{REPOSITORY}",
        commit=COMMIT,
        license="mit",
        paper=Paper(title="A paper", url="https://example.org/paper"),
        citation="",
        description="",
        size=size,
    )


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def zip_(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    with FileServer() as running:
        for variable, _ in ENDPOINTS.values():
            monkeypatch.setenv(variable, running.url)
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


def fetched(item: Entry, cache: Path, content: bytes) -> Path:
    """fetch, and check the result: the right bytes, at `<cache>/<sha256>/<filename>`, alone in its folder."""
    path = fetch(item, cache, progress=False)
    assert path == cache / item.sha256 / item.filename
    assert path.read_bytes() == content
    assert [child.name for child in path.parent.iterdir()] == [item.filename]  # no .part, archive or staging left
    return path


def gets(server: FileServer) -> list[Request]:
    return [request for request in server.requests if request.method == "GET"]


# ---------------------------------------------------------------------------------------------------- source forms


def test_plain_url(server: FileServer, tmp_path: Path):
    content = payload(3000)
    item = entry(server.add("/data/model.bin", content), content, size=len(content))
    path = fetch(item, tmp_path, progress=True)  # the progress bar is on here: it must not get in the way
    assert path == tmp_path / item.sha256 / "model.bin" and path.read_bytes() == content


def test_huggingface(server: FileServer, tmp_path: Path):
    content = payload(3000)
    server.add_hub("cuhkaih/rnafm", REVISION, "SS/model.pth", content)
    fetched(entry(f"huggingface://cuhkaih/rnafm@{REVISION}/SS/model.pth", content), tmp_path, content)
    assert {(request.method, request.path) for request in server.requests} == {
        ("HEAD", f"/cuhkaih/rnafm/resolve/{REVISION}/SS/model.pth"),
        ("GET", f"/cuhkaih/rnafm/resolve/{REVISION}/SS/model.pth"),
    }


def test_google_drive_confirmation_page(server: FileServer, tmp_path: Path):
    content = payload(3000)
    server.add_drive("1AbCdEf", content, confirm=True)
    fetched(entry("google_drive://1AbCdEf/model.pth", content), tmp_path, content)
    queries = [request.query for request in gets(server)]
    assert queries[0] == {"id": "1AbCdEf", "export": "download"}  # answered with the confirmation page
    assert queries[-1]["confirm"] == "t" and queries[-1]["uuid"]  # the form submitted: the file
    assert all(request.status == 200 for request in server.requests)


def test_google_drive_small_file_and_id_only_source(server: FileServer, tmp_path: Path):
    content = payload(500)
    server.add_drive("1SmallFile", content, confirm=False)
    fetched(entry("google_drive://1SmallFile", content), tmp_path, content)  # the file is named by its id
    assert all("confirm" not in request.query for request in server.requests)


def test_google_drive_page_without_form(server: FileServer, tmp_path: Path):
    page = b"<html><body>Too many users have viewed or downloaded this file recently.</body></html>"
    server.add("/download", page, {"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(ConversionError, match="web page instead of the file"):
        fetch(entry("google_drive://1Blocked/model.pth", b"x"), tmp_path, progress=False)


def test_zenodo(server: FileServer, tmp_path: Path):
    content = payload(3000)
    server.add_zenodo("7995778", "weights.pt", content)
    fetched(entry("zenodo://10.5281/zenodo.7995778/weights.pt", content), tmp_path, content)
    assert gets(server)[0].query == {"download": "1"}


@pytest.mark.parametrize("lfs", [False, True], ids=["git", "lfs"])
def test_upstream_file(server: FileServer, tmp_path: Path, lfs: bool):
    content = payload(3000)
    server.add_github(REPOSITORY, COMMIT, "Model/Pretrained/model.pkl", content, lfs=lfs)
    fetched(entry("upstream-file://Model/Pretrained/model.pkl", content), tmp_path, content)
    media = [request for request in gets(server) if request.path.startswith("/media/")]
    assert [request.path for request in media] == ([f"/media/{REPOSITORY}/{COMMIT}/Model/Pretrained/model.pkl"] * lfs)


def test_tar_gz_member(server: FileServer, tmp_path: Path):
    members = {f"models/{name}/pytorch_model.bin": payload(2000, seed) for seed, name in enumerate(["a", "b"])}
    members["models/a/config.json"] = b"{}"
    server.add_zenodo("7995778", "models.tar.gz", tar_gz(members))
    for name in ["models/a/pytorch_model.bin", "models/b/pytorch_model.bin"]:  # two variants, one archive
        item = entry(f"zenodo://10.5281/zenodo.7995778/models.tar.gz#{name}", members[name])
        assert item.filename == "pytorch_model.bin"
        fetched(item, tmp_path, members[name])


def test_zip_member(server: FileServer, tmp_path: Path):
    members = {"weights/model.pt": payload(2000), "README": b"read me"}
    url = server.add("/bundle.zip", zip_(members))
    item = entry(f"{url}#weights/model.pt", members["weights/model.pt"], size=2000)
    fetched(item, tmp_path, members["weights/model.pt"])


def test_missing_member(server: FileServer, tmp_path: Path):
    url = server.add("/bundle.tar.gz", tar_gz({"models/other.bin": b"other"}))
    item = entry(f"{url}#models/model.bin", b"model")
    expected = r"bundle\.tar\.gz has no file 'models/model\.bin'; it holds: models/other\.bin"
    with pytest.raises(ConversionError, match=expected):
        fetch(item, tmp_path, progress=False)
    assert list((tmp_path / item.sha256).iterdir()) == []


def test_unreadable_archive(server: FileServer, tmp_path: Path):
    url = server.add("/bundle.tar.gz", b"an error page, not an archive")
    item = entry(f"{url}#models/model.bin", b"model")
    with pytest.raises(ConversionError, match=r"could not read the archive bundle\.tar\.gz \("):
        fetch(item, tmp_path, progress=False)
    assert list((tmp_path / item.sha256).iterdir()) == []  # the archive is not kept to be resumed from


# ---------------------------------------------------------------------------------------------------- resuming


def test_dropped_connection_resumes_with_range(server: FileServer, tmp_path: Path):
    content = payload(200_000)
    item = entry(server.add("/model.bin", content), content)
    server.drop_after, server.drops = 50_000, 1
    fetched(item, tmp_path, content)
    first, second = gets(server)
    assert first.status == 0 and "range" not in first.headers
    assert second.status == 206 and second.headers["range"] == "bytes=50000-"


def test_partial_download_is_resumed_by_the_next_fetch(server: FileServer, tmp_path: Path):
    content = payload(200_000)
    item = entry(server.add("/model.bin", content), content)
    server.drop_after, server.drops = 10_000, 1000  # every answer is cut off: fetch gives up, keeping the .part
    with pytest.raises(ConversionError, match="run again to resume"):
        fetch(item, tmp_path, progress=False)
    part = tmp_path / item.sha256 / "model.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(content) and not (tmp_path / item.sha256 / "model.bin").exists()
    assert part.read_bytes() == content[:kept]

    server.drops, server.requests = 0, []
    fetched(item, tmp_path, content)
    [request] = gets(server)
    assert request.headers["range"] == f"bytes={kept}-" and request.status == 206


def test_server_ignoring_range_restarts(server: FileServer, tmp_path: Path):
    content = payload(20_000)
    item = entry(server.add("/model.bin", content), content)
    (tmp_path / item.sha256).mkdir()
    (tmp_path / item.sha256 / "model.bin.part").write_bytes(b"stale bytes of an earlier attempt")
    server.ignore_range = True
    fetched(item, tmp_path, content)  # had the 200 answer been appended, the sha256 would not match
    [request] = gets(server)
    assert request.headers["range"] == "bytes=33-" and request.status == 200


def test_complete_part_is_not_downloaded_again(server: FileServer, tmp_path: Path):
    content = payload(20_000)
    archive = tar_gz({"model.bin": content})
    item = entry(server.add("/models.tar.gz", archive) + "#model.bin", content)
    (tmp_path / item.sha256).mkdir()
    (tmp_path / item.sha256 / "models.tar.gz.part").write_bytes(archive)  # e.g. interrupted while extracting
    fetched(item, tmp_path, content)
    [request] = gets(server)
    assert request.headers["range"] == f"bytes={len(archive)}-" and request.status == 416


# ---------------------------------------------------------------------------------------------------- verification


def test_corrupted_download(server: FileServer, tmp_path: Path):
    content = payload(3000)
    item = entry(server.add("/model.bin", content), content)
    server.corrupt = True
    served = bytes(byte ^ 0xFF for byte in content)
    with pytest.raises(ChecksumError) as error:
        fetch(item, tmp_path, progress=False)
    for fact in (item.sha256, sha256(served), item.source):
        assert fact in str(error.value)
    assert list((tmp_path / item.sha256).iterdir()) == []  # nothing under the final name, no .part


@pytest.mark.parametrize("archive", [False, True], ids=["file", "member"])
def test_size_mismatch(server: FileServer, tmp_path: Path, archive: bool):
    content = payload(3000)
    if archive:  # checked on the extracted member
        source = server.add("/model.tar.gz", tar_gz({"model.bin": content})) + "#model.bin"
    else:  # checked against the Content-Length before anything is downloaded
        source = server.add("/model.bin", content)
    item = entry(source, content, size=len(content) + 1)
    with pytest.raises(ChecksumError, match=f"{len(content) + 1}"):
        fetch(item, tmp_path, progress=False)
    assert list((tmp_path / item.sha256).iterdir()) == []


def test_verified_file_is_reused(server: FileServer, tmp_path: Path):
    content = payload(3000)
    item = entry(server.add("/model.bin", content), content)
    path = fetched(item, tmp_path, content)
    server.requests.clear()
    assert fetch(item, tmp_path, progress=False) == path
    assert server.requests == []


def test_changed_cached_file_is_downloaded_again(server: FileServer, tmp_path: Path):
    content = payload(3000)
    item = entry(server.add("/model.bin", content), content)
    fetched(item, tmp_path, content).write_bytes(b"not the checkpoint")
    fetched(item, tmp_path, content)


# ---------------------------------------------------------------------------------------------------- errors


def test_not_found(server: FileServer, tmp_path: Path):
    url = f"{server.url}/missing.bin"
    with pytest.raises(ConversionError, match=rf"GET {url} failed: HTTP 404 Not Found"):
        fetch(entry(url, b"x"), tmp_path, progress=False)


def test_not_found_on_the_hub(server: FileServer, tmp_path: Path):
    with pytest.raises(ConversionError, match=rf"GET {server.url}/owner/repo/resolve/{REVISION}/missing.pth .*404"):
        fetch(entry(f"huggingface://owner/repo@{REVISION}/missing.pth", b"x"), tmp_path, progress=False)
    assert not (tmp_path / sha256(b"x") / ".huggingface").exists()


def test_unknown_source_form(tmp_path: Path):
    with pytest.raises(ConversionError, match="unknown source form"):
        fetch(entry("ftp://example.org/model.bin", b"x"), tmp_path, progress=False)


def test_default_cache_dir(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MULTIMOLECULE_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    content = payload(100)
    item = entry(server.add("/model.bin", content), content)
    assert fetch(item, progress=False) == tmp_path / "cache" / item.sha256 / "model.bin"
    monkeypatch.delenv("MULTIMOLECULE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "multimolecule"
