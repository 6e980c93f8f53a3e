"""The checkpoint downloader, end to end against a file server on 127.0.0.1 (tests/servers/files.py)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import multiprocessing
import random
import resource
import signal
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from servers.files import FileServer, Request

from multimolecule.convert.catalogue import Entry, Paper
from multimolecule.convert.download import ENDPOINTS, DownloadError, _archive_part, default_cache_dir, fetch
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


def fetched(item: Entry, cache: Path, content: bytes, *, others: list[Entry] | None = None, beside=()) -> Path:
    """fetch, and check the result: the right bytes, at `<cache>/<sha256>/<filename>`, alone in its folder but
    for the sidecars named in `beside`. `others`: the catalogue the other members of an archive are found in."""
    path = fetch(item, cache, progress=False, catalogued=others or [])
    assert path == cache / item.sha256 / item.filename
    assert path.read_bytes() == content
    # no .part, archive or staging left
    assert sorted(child.name for child in path.parent.iterdir()) == sorted([item.filename, *beside])
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


def drive_folder(server: FileServer, content: bytes) -> None:
    """The shape of RNAErnie's release: a shared folder, a subfolder per model, the weights inside."""
    server.add_drive("1Weights", content, confirm=True)  # large: the warning page comes first, as on Drive
    server.add_drive("1OtherWeights", b"other weights", confirm=False)
    server.add_drive_folder("1Sub", {"model_state.pdparams": "1Weights", "model_config.json": "1Config"})
    server.add_drive_folder("1Other", {"model_state.pdparams": "1OtherWeights"})
    server.add_drive_folder("1Root", {"BERT,ERNIE,MOTIF,PROMPT": "1Sub", "BERT & CNN": "1Other", "README.md": "1Read"})


def test_google_drive_folder_path(server: FileServer, tmp_path: Path):
    content = payload(3000)
    drive_folder(server, content)
    item = entry("google_drive://1Root/BERT,ERNIE,MOTIF,PROMPT/model_state.pdparams", content)
    fetched(item, tmp_path, content)
    steps = [(request.path, request.query.get("id")) for request in gets(server)]
    assert steps[:3] == [("/embeddedfolderview", "1Root"), ("/embeddedfolderview", "1Sub"), ("/download", "1Weights")]
    assert gets(server)[-1].query["confirm"] == "t"  # then the file itself, past the warning page

    server.requests.clear()
    fetched(item, tmp_path, content)  # verified and cached: no request at all
    assert server.requests == []


def test_google_drive_folder_entry_names_are_unescaped(server: FileServer, tmp_path: Path):
    drive_folder(server, b"")
    fetched(entry("google_drive://1Root/BERT & CNN/model_state.pdparams", b"other weights"), tmp_path, b"other weights")


@pytest.mark.parametrize(
    ("path", "folder", "problem"),
    [
        ("BERT,ERNIE,MOTIF,PROMPT/model.pdparams", "1Root/BERT,ERNIE,MOTIF,PROMPT", "no file 'model.pdparams'"),
        ("ERNIE/model_state.pdparams", "1Root", "no folder 'ERNIE'"),
        ("README.md/model_state.pdparams", "1Root", "no folder 'README.md'"),  # a file is not a folder
    ],
)
def test_google_drive_folder_missing_name(server: FileServer, tmp_path: Path, path: str, folder: str, problem: str):
    drive_folder(server, b"weights")
    item = entry(f"google_drive://1Root/{path}", b"weights")
    with pytest.raises(DownloadError) as error:
        fetch(item, tmp_path, progress=False)
    message = str(error.value)
    assert f"the Google Drive folder {folder} has {problem}; it holds: " in message and "\n" not in message
    held = "model_config.json, model_state.pdparams" if folder.endswith("PROMPT") else "BERT & CNN/, BERT,ERNIE"
    assert held in message  # what is there, subfolders marked with a slash
    assert list((tmp_path / item.sha256).iterdir()) == []


def test_google_drive_id_only_source_takes_the_served_name(server: FileServer, tmp_path: Path):
    content = payload(500)
    server.add_drive("1CmNxJ", content, confirm=True, name="ERNIE-RNA_pretrain.pt")
    item = entry("google_drive://1CmNxJ", content)
    path = fetch(item, tmp_path, progress=False)
    assert path == tmp_path / item.sha256 / "ERNIE-RNA_pretrain.pt" and path.read_bytes() == content
    assert [child.name for child in path.parent.iterdir()] == ["ERNIE-RNA_pretrain.pt"]
    server.requests.clear()
    assert fetch(item, tmp_path, progress=False) == path  # found again under that name: no request
    assert server.requests == []


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
    members["models/a/config.json"] = b'{"hidden_size": 512}'
    server.add_zenodo("1234567", "models.tar.gz", tar_gz(members))
    for name in ["models/a/pytorch_model.bin", "models/b/pytorch_model.bin"]:  # two variants, one archive
        item = entry(f"zenodo://10.5281/zenodo.1234567/models.tar.gz#{name}", members[name])
        assert item.filename == "pytorch_model.bin"
        sidecar = ["config.json"] if name.startswith("models/a/") else []
        path = fetched(item, tmp_path, members[name], beside=sidecar)
        if sidecar:  # the release's config.json, next to the weights, for the converter
            assert (path.parent / "config.json").read_bytes() == members["models/a/config.json"]


def splicebert_archive(server: FileServer) -> tuple[dict[str, bytes], list[Entry]]:
    """Three catalogued variants in one archive, each directory a release (weights, config.json, vocab.txt)."""
    members: dict[str, bytes] = {}
    for seed, name in enumerate(["SpliceBERT.1024nt", "SpliceBERT.510nt", "SpliceBERT-human.510nt"]):
        members[f"models/{name}/config.json"] = json.dumps({"name": name}).encode()
        members[f"models/{name}/pytorch_model.bin"] = payload(3000 + seed, seed)
        members[f"models/{name}/vocab.txt"] = b"A\nC\nG\nT\n"
    server.add_zenodo("7995778", "models.tar.gz", tar_gz(members))
    source = "zenodo://10.5281/zenodo.7995778/models.tar.gz#"
    weights = [name for name in members if name.endswith(".bin")]
    return members, [entry(source + name, members[name], size=len(members[name])) for name in weights]


def test_archive_is_downloaded_once_for_all_its_members(server: FileServer, tmp_path: Path):
    members, entries = splicebert_archive(server)
    for item in entries:  # as `convert splicebert`, `convert splicebert.510`, ... would
        member = item.source.partition("#")[2]
        path = fetched(item, tmp_path, members[member], others=entries, beside=["config.json"])
        assert (path.parent / "config.json").read_bytes() == members[member.replace("pytorch_model.bin", "config.json")]
    assert [request.path for request in gets(server)] == ["/records/7995778/files/models.tar.gz"]
    assert not list((tmp_path / ".archives").rglob("*.part"))  # dropped once every member was out


def test_archive_member_that_fails_its_hash_is_not_kept(server: FileServer, tmp_path: Path):
    members, entries = splicebert_archive(server)
    wrong = dataclasses.replace(entries[2], sha256=sha256(b"another file"), size=None)
    fetched(
        entries[0],
        tmp_path,
        members[entries[0].source.partition("#")[2]],
        others=[*entries[:2], wrong],
        beside=["config.json"],
    )
    assert not (tmp_path / wrong.sha256).exists() or list((tmp_path / wrong.sha256).iterdir()) == []
    with pytest.raises(ChecksumError, match="sha256 mismatch"):  # fetched on its own, it fails on its own
        fetch(wrong, tmp_path, progress=False, catalogued=[])


def tar_gz_bomb(name: str, size: int) -> bytes:
    """A tar.gz whose one member inflates to `size` zero bytes (a few hundred KiB compressed)."""
    buffer = io.BytesIO()
    info = tarfile.TarInfo(name)
    info.size = size
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as stream:
        stream.write(info.tobuf())
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            stream.write(zeros)
        stream.write(bytes(1024))  # the end-of-archive blocks
    return buffer.getvalue()


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """No file of this process may grow past `limit` bytes (such a write fails with EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archive_member_bomb_stops_at_the_catalogued_size(server: FileServer, tmp_path: Path, kind: str):
    content = payload(4096)
    if kind == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("model.bin", bytes(64 << 20))
        bomb = buffer.getvalue()
    else:
        bomb = tar_gz_bomb("model.bin", 64 << 20)
    assert len(bomb) < 1 << 20  # small on the wire: the size check of the archive itself cannot catch it
    item = entry(server.add(f"/bomb.{kind}", bomb) + "#model.bin", content, size=len(content))
    with file_size_limit(16 << 20), pytest.raises(ChecksumError, match="more than the 4096 allowed"):
        fetch(item, tmp_path, progress=False)  # extracting 64 MiB would fail with EFBIG, not this error
    assert list((tmp_path / item.sha256).iterdir()) == []


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
    assert not list((tmp_path / ".archives").rglob("*.part"))  # the archive is not kept


def test_unreadable_archive(server: FileServer, tmp_path: Path):
    url = server.add("/bundle.tar.gz", b"an error page, not an archive")
    item = entry(f"{url}#models/model.bin", b"model")
    with pytest.raises(ConversionError, match=r"could not read the archive bundle\.tar\.gz \("):
        fetch(item, tmp_path, progress=False)
    assert list((tmp_path / item.sha256).iterdir()) == []
    assert not list((tmp_path / ".archives").rglob("*.part"))  # the archive is not kept to be resumed from


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
    part = _archive_part(tmp_path, item.source.partition("#")[0])
    part.parent.mkdir(parents=True)
    part.write_bytes(archive)  # e.g. interrupted while extracting
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


# ---------------------------------------------------------------------------------------------------- bounded


def test_endless_body_stops_at_the_catalogued_size(server: FileServer, tmp_path: Path):
    content = payload(143_825)
    url = server.add_stream("/model.bin", content, count=2000)  # 274 MiB, without a Content-Length
    item = entry(url, content, size=len(content))
    with pytest.raises(ChecksumError, match=r"sent more than 143825 bytes \(the catalogued size\)"):
        fetch(item, tmp_path, progress=False)
    assert server.sent["/model.bin"] < 32 << 20  # it hung up at the size, not at the end of the stream
    assert list((tmp_path / item.sha256).iterdir()) == []


def test_endless_body_without_a_catalogued_size_stops_at_the_ceiling(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MULTIMOLECULE_MAX_DOWNLOAD_BYTES", str(1 << 20))
    url = server.add_stream("/model.bin", payload(1 << 20), count=256)
    item = entry(url, b"unknown", size=None)
    with pytest.raises(DownloadError, match=r"sent more than 1048576 bytes \(\$MULTIMOLECULE_MAX_DOWNLOAD_BYTES"):
        fetch(item, tmp_path, progress=False)
    assert server.sent["/model.bin"] < 32 << 20
    assert list((tmp_path / item.sha256).iterdir()) == []


def test_endless_archive_stops_at_its_members_sizes(server: FileServer, tmp_path: Path):
    content = payload(4096)
    url = server.add_stream("/models.tar.gz", payload(1 << 20), count=256)  # 256 MiB of "archive"
    item = entry(f"{url}#model.bin", content, size=len(content))
    with pytest.raises(ChecksumError, match="catalogued sizes of its members"):
        fetch(item, tmp_path, progress=False)
    assert server.sent["/models.tar.gz"] < 64 << 20  # 4096 bytes, 10% and 16 MiB allowed
    assert not list((tmp_path / ".archives").rglob("*.part"))


@pytest.mark.parametrize("interval", [2.0, 0.25], ids=["silent", "trickle"])
def test_trickling_server_stalls(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interval: float):
    monkeypatch.setenv("MULTIMOLECULE_DOWNLOAD_STALL_SECONDS", "1")
    count = 6 if interval > 1 else 40  # one byte per interval; 12 s and 10 s in all, were they waited for
    url = server.add_stream("/model.bin", b"x", count=count, interval=interval)
    item = entry(url, b"x" * count)
    with pytest.raises(DownloadError, match=rf"GET {url} stalled: .* 1 s .*run again to resume"):
        fetch(item, tmp_path, progress=False)
    assert 0 < (tmp_path / item.sha256 / "model.bin.part").stat().st_size < count


def test_range_answered_from_byte_zero_restarts(server: FileServer, tmp_path: Path):
    content = payload(20_000)
    item = entry(server.add("/model.bin", content), content)
    (tmp_path / item.sha256).mkdir()
    (tmp_path / item.sha256 / "model.bin.part").write_bytes(content[:5000])
    server.range_from_zero = True  # 206 for any Range, with the whole file and `Content-Range: bytes 0-...`
    fetched(item, tmp_path, content)  # appended, the file would be 25000 bytes and fail; kept, every rerun would
    first, second = gets(server)
    assert first.headers["range"] == "bytes=5000-" and first.status == 206
    assert "range" not in second.headers and second.status == 200


def test_huge_drive_warning_page_is_not_read_whole(server: FileServer, tmp_path: Path):
    page = b"<html><body>" + b"<p>Google Drive can't scan this file</p>" * 26214  # 1 MiB per chunk
    server.add_stream("/download", page, count=48, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(DownloadError, match=r"answered with a web page of more than 4194304 bytes"):
        fetch(entry("google_drive://1Huge/model.pth", b"x"), tmp_path, progress=False)
    assert server.sent["/download"] < 24 << 20  # it stopped reading at 4 MiB (plus what the sockets buffer)


def test_two_processes_fetching_one_entry(server: FileServer, tmp_path: Path):
    content = payload(300_000)
    item = entry(server.add("/model.bin", content), content)
    server.hold = threading.Event()  # each body stops half-way until released
    first = fetch_in_a_process(item, tmp_path, "first")
    wait_for(lambda: gets(server), first)  # the first holds the entry, half downloaded
    second = fetch_in_a_process(item, tmp_path, "second")
    waiting = "is being fetched by another process; waiting for it"
    wait_for(lambda: waiting in (tmp_path / "second.log").read_text() or len(gets(server)) > 1, second)
    server.hold.set()
    for process in (first, second):
        process.join(timeout=60)
        assert process.exitcode == 0
    paths = [(tmp_path / f"{name}.out").read_text() for name in ("first", "second")]
    assert paths == [str(tmp_path / "cache" / item.sha256 / "model.bin")] * 2
    assert Path(paths[0]).read_bytes() == content
    assert len(gets(server)) == 1  # the second waited, then reused the verified file


def fetch_in_a_process(item: Entry, tmp_path: Path, name: str) -> multiprocessing.Process:
    """`fetch` in another process (forked: nothing to import again), its log in `<name>.log`, its answer in
    `<name>.out`."""
    (tmp_path / f"{name}.log").touch()
    process = multiprocessing.get_context("fork").Process(target=_fetch, args=(item, tmp_path, name))
    process.start()
    return process


def _fetch(item: Entry, tmp_path: Path, name: str) -> None:
    logging.getLogger("multimolecule.convert.download").addHandler(logging.FileHandler(tmp_path / f"{name}.log"))
    path = fetch(item, tmp_path / "cache", progress=False, catalogued=[])
    (tmp_path / f"{name}.out").write_text(str(path))


def wait_for(condition: Callable[[], object], process: multiprocessing.Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.is_alive(), f"the fetch ended early, with status {process.exitcode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------------------- errors


def test_cache_on_a_full_disk(server: FileServer, tmp_path: Path):
    content = payload(256 << 10)
    item = entry(server.add("/model.bin", content), content)
    with (
        file_size_limit(64 << 10),
        pytest.raises(DownloadError, match=r"^cannot write to the download cache .*: File too large$"),
    ):
        fetch(item, tmp_path, progress=False)  # writing past 64 KiB fails as on a full disk (EFBIG, not ENOSPC)


def test_redirect_loop(server: FileServer, tmp_path: Path):
    url = server.add_redirect("/loop", "/loop")
    with pytest.raises(DownloadError, match=rf"^GET {url} failed: too many redirects \(a redirect loop\?\)"):
        fetch(entry(url, b"x"), tmp_path, progress=False)


def test_bad_content_encoding(server: FileServer, tmp_path: Path):
    url = server.add("/model.bin", b"these bytes are not gzip", {"Content-Encoding": "gzip"})
    item = entry(url, b"x")
    with pytest.raises(DownloadError, match=rf"^GET {url} failed: the body does not decode as its Content-Encoding"):
        fetch(item, tmp_path, progress=False)
    assert list((tmp_path / item.sha256).iterdir()) == []  # decoded bytes are no file to resume


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
