"""A conversion killed at any moment leaves no output or the previous one, never half of one; an output that
would delete what is not ours, or cannot be written, is refused before any work."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import golden_case, run_convert

from multimolecule.convert.errors import ConversionError
from multimolecule.convert.output import OutputError, check_target, staged_directory

RNAFM = golden_case("rnafm", "rnafm")


def start_conversion(output: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "multimolecule.convert", "rnafm", "--checkpoint", str(RNAFM.checkpoint),
        "--output", str(output), "--no-verify", "--overwrite",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the conversion finished before the moment to kill it"
        assert time.monotonic() < deadline, "timed out waiting for the conversion"
        time.sleep(0.005)


def staged_file(output: Path, name: str):
    return lambda: any((staging / name).exists() for staging in output.parent.glob(f".{output.name}.partial-*"))


def kill_conversion_once_staged(output: Path, name: str = "model.safetensors") -> None:
    """Start a conversion into `output` and SIGKILL it as soon as its staging directory holds `name`."""
    process = start_conversion(output)
    wait_for(staged_file(output, name), process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("moment", ["weights written", "validating (config written, no card yet)"])
def test_sigkill_mid_conversion_keeps_the_previous_output(tmp_path, moment):
    output = tmp_path / "rnafm"
    output.mkdir()
    previous = {"model.safetensors": b"previous weights", "config.json": b"{}"}
    for name, content in previous.items():
        (output / name).write_bytes(content)

    kill_conversion_once_staged(output, "model.safetensors" if moment == "weights written" else "tokenizer_config.json")

    assert {path.name: path.read_bytes() for path in output.iterdir()} == previous


def test_sigkill_before_the_first_output_leaves_nothing(tmp_path):
    output = tmp_path / "rnafm"
    kill_conversion_once_staged(output)
    assert not output.exists()


def test_a_later_run_cleans_up_and_replaces_atomically(tmp_path):
    output = tmp_path / "rnafm"
    kill_conversion_once_staged(output)
    assert list(tmp_path.glob(".rnafm.partial-*"))  # the killed run's staging, hidden

    completed = start_conversion(output)
    assert completed.wait(timeout=120) == 0
    assert (output / "README.md").is_file() and (output / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".rnafm.partial-*"))


def test_an_error_inside_the_stage_removes_it(tmp_path):
    output = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_directory(output, overwrite=False) as staging:
        (staging / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("validation failed")
    assert not output.exists()
    assert [path.name for path in tmp_path.iterdir()] == [".out.lock"]  # only the (released) lock


# ---------------------------------------------------------------------------------------------------- not ours


def convert_into(output: Path | str, checkpoint: Path, *options: str | Path) -> int:
    return run_convert("rnafm", "--checkpoint", checkpoint, "--output", output, "--no-verify", "--overwrite", *options)


def keepsakes(directory: Path) -> dict[str, bytes]:
    """A copy of the fixture and a file of the user's own, in `directory`; returned as they are."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(RNAFM.checkpoint, directory / RNAFM.checkpoint.name)
    (directory / "notes.txt").write_text("the user's own")
    return snapshot(directory)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def refused(capsys: pytest.CaptureFixture, status: int, *facts: str) -> None:
    """Exit status 1 and one line on stderr, naming each fact; nothing converted."""
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    for fact in facts:
        assert fact in captured.err
    assert "converting" not in captured.out


def test_output_that_is_the_checkpoints_directory(tmp_path, capsys):
    before = keepsakes(tmp_path / "release")
    status = convert_into(tmp_path / "release", tmp_path / "release" / RNAFM.checkpoint.name)
    refused(capsys, status, f"output {tmp_path / 'release'} contains the input checkpoint")
    assert snapshot(tmp_path / "release") == before


@pytest.mark.parametrize("output", [".", ".."], ids=["cwd", "parent-of-cwd"])
def test_output_that_is_or_holds_the_current_directory(tmp_path, capsys, monkeypatch, output):
    before = keepsakes(tmp_path / "work" / "here")
    monkeypatch.chdir(tmp_path / "work" / "here")
    status = convert_into(output, RNAFM.checkpoint)
    refused(capsys, status, "the current directory", "choose another --output")
    assert snapshot(tmp_path / "work" / "here") == before


def test_output_that_holds_the_home_directory(tmp_path, capsys, monkeypatch):
    before = keepsakes(tmp_path / "users" / "me")
    monkeypatch.setenv("HOME", str(tmp_path / "users" / "me"))
    monkeypatch.setenv("MULTIMOLECULE_CACHE", str(tmp_path / "cache"))  # not under the home directory this time
    status = convert_into(tmp_path / "users", RNAFM.checkpoint)
    refused(capsys, status, f"output {tmp_path / 'users'} contains the home directory")
    assert snapshot(tmp_path / "users" / "me") == before


def test_output_that_is_the_download_cache(tmp_path, capsys):
    before = keepsakes(tmp_path / "cache" / "0123")
    status = convert_into(tmp_path / "cache", RNAFM.checkpoint, "--cache-dir", tmp_path / "cache")
    refused(capsys, status, f"output {tmp_path / 'cache'} is the download cache")
    assert snapshot(tmp_path / "cache" / "0123") == before


# ---------------------------------------------------------------------------------------------------- two at once


def test_two_conversions_to_one_output(tmp_path, caplog):
    """The later one waits for the earlier one's lock instead of deleting its staging; then replaces its output."""
    output, finished = tmp_path / "out", threading.Event()

    def later() -> None:
        with staged_directory(output, overwrite=True) as staging:
            (staging / "model.safetensors").write_bytes(b"later")
        finished.set()

    with staged_directory(output, overwrite=True) as staging:
        (staging / "model.safetensors").write_bytes(b"earlier")
        thread = threading.Thread(target=later)
        thread.start()
        deadline = time.monotonic() + 30
        while "another conversion is writing" not in caplog.text and not finished.is_set():
            assert time.monotonic() < deadline, "the later conversion neither waited nor finished"
            time.sleep(0.005)
        (staging / "config.json").write_bytes(b"{}")  # the earlier one is still writing: its staging is intact
    assert (output / "config.json").read_bytes() == b"{}"  # the earlier one completed ...
    thread.join(timeout=30)
    assert finished.is_set() and snapshot(output) == {"model.safetensors": b"later"}  # ... then the later one
    assert not [path for path in tmp_path.iterdir() if ".partial-" in path.name]


def test_cleanup_removes_only_this_outputs_dead_staging(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()  # its pid names a process that is gone
    for name in [".other.partial-1-abcdefgh", f".o*.partial-{os.getppid()}-abcdefgh", ".o*.partial-x", ".o*.partial"]:
        (tmp_path / name).mkdir()  # another output's staging; a live run's; names not of our pattern
    (tmp_path / f".o*.partial-{dead.pid}-abcd_fg8").mkdir()  # a killed run's: the only one to remove
    with staged_directory(tmp_path / "o*", overwrite=False) as staging:
        (staging / "README.md").write_text("done")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [
            ".other.partial-1-abcdefgh",
            f".o*.partial-{os.getppid()}-abcdefgh",
            ".o*.partial-x",
            ".o*.partial",
            "o*",
            ".o*.lock",
        ]
    )


# ---------------------------------------------------------------------------------------------------- cannot write


def test_dangling_symlink_output(tmp_path, capsys):
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    refused(capsys, convert_into(tmp_path / "out", RNAFM.checkpoint), "is a symbolic link to", "which does not exist")
    assert (tmp_path / "out").is_symlink() and not (tmp_path / "gone").exists()


def test_symlink_to_a_directory_output(tmp_path, capsys):
    before = keepsakes(tmp_path / "real")
    (tmp_path / "out").symlink_to(tmp_path / "real")
    refused(capsys, convert_into(tmp_path / "out", RNAFM.checkpoint), f"output {tmp_path / 'out'} is a symbolic link")
    assert (tmp_path / "out").is_symlink() and snapshot(tmp_path / "real") == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "real"]  # no .partial-* left


def test_output_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    refused(
        capsys, convert_into(tmp_path / "file" / "out", RNAFM.checkpoint), f"{tmp_path / 'file'} is not a directory"
    )


@pytest.fixture
def shared_directory():
    """A directory any account can enter (pytest's tmp_path may not be), removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="multimolecule-test-"))
    directory.chmod(0o755)
    yield directory
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755)
    shutil.rmtree(directory)


def check_as_another_user(target: Path, overwrite: bool) -> str | None:
    """`check_target` in a forked process that runs as `nobody` when this one is root (root writes anywhere):
    the error it raised, or None."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def check() -> None:
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        try:
            check_target(target, overwrite)
            send.send(None)
        except ConversionError as error:
            send.send(str(error))

    process = context.Process(target=check)
    process.start()
    assert receive.poll(30), "the check did not answer"
    answer = receive.recv()
    process.join(timeout=30)
    return answer


def test_read_only_output_directory(shared_directory):
    (shared_directory / "writable").mkdir()
    (shared_directory / "writable").chmod(0o777)
    assert check_as_another_user(shared_directory / "writable" / "out", False) is None  # the check can pass
    readonly = shared_directory / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    message = check_as_another_user(readonly / "deeper" / "out", False)
    assert (
        message == f"cannot write output {readonly / 'deeper' / 'out'}: {readonly} is not writable (Permission denied)"
    )
    assert list(readonly.iterdir()) == []


def test_full_disk(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(OutputError, match=r"^cannot write output .*: .* free on its disk, and the output needs about"):
        check_target(tmp_path / "out", False, needed=free + (1 << 40))  # a terabyte more than there is
    check_target(tmp_path / "out", False, needed=1 << 20)
