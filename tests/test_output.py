"""A conversion killed at any moment leaves no output or the previous one, never half of one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import golden_case

from multimolecule.convert.output import staged_directory

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
    assert not list(tmp_path.iterdir())
