"""The publisher end to end through the CLI, on loopback: convert the rnafm fixture, push it to a local Hub,
and load it back in a fresh process by its Hub name; plus the failures that must stop it early.

The CLI runs in subprocesses because huggingface_hub reads HF_ENDPOINT when it is imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import golden_case, run_convert
from safetensors.torch import load_file, save_file
from servers.files import FileServer
from servers.hub import HubServer

from multimolecule.convert.catalogue import catalogue
from multimolecule.convert.digest import file_sha256
from multimolecule.convert.download import ENDPOINTS

TOKEN = "hf_test_writer"
RNAFM = golden_case("rnafm", "rnafm")


def environment(tmp_path: Path, endpoint: str, token: str | None = TOKEN) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), MULTIMOLECULE_CACHE=str(tmp_path / "cache"))
    if token:
        env["HF_TOKEN"] = token
    return env


def cli(env: dict[str, str], *argv) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "multimolecule.convert", *map(str, argv)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_convert_push_and_load_by_hub_name(tmp_path):
    output = tmp_path / "rnafm"
    with HubServer(tokens={TOKEN}) as hub:
        env = environment(tmp_path, hub.url)
        result = cli(env, "rnafm", "--checkpoint", RNAFM.checkpoint, "--output", output, "--no-verify", "--push")
        assert result.returncode == 0, result.stderr
        commits = hub.commits("multimolecule/rnafm")
        assert len(commits) == 1
        on_hub = hub.files("multimolecule/rnafm")
        assert {"model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt", "README.md"} <= set(on_hub)
        assert all(on_hub[path.name] == path.read_bytes() for path in output.iterdir())

        # converting the same file again gives identical files: the re-push makes no new commit
        again = cli(env, "rnafm", "--checkpoint", RNAFM.checkpoint, "--output", output, "--no-verify", "--push",
                    "--overwrite")  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "no new commit" in again.stdout
        assert len(hub.commits("multimolecule/rnafm")) == 1

        # a user, in a fresh process, loads the model by its Hub name and gets the original code's outputs
        expected = tmp_path / "expected.safetensors"
        save_file({key: RNAFM.expected[key] for key in ("input_ids", "attention_mask", "last_hidden_state")}, expected)
        script = textwrap.dedent(
            f"""
            import json, torch
            from safetensors.torch import load_file
            import multimolecule
            from transformers import AutoModel, AutoTokenizer
            upstream_vocabulary = json.loads({json.dumps(json.dumps(RNAFM.meta["vocab"]))})
            expected = load_file({str(expected)!r})
            tokenizer = AutoTokenizer.from_pretrained("multimolecule/rnafm")
            model = AutoModel.from_pretrained("multimolecule/rnafm").eval()
            vocabulary = tokenizer.get_vocab()
            ids = torch.tensor([[vocabulary[upstream_vocabulary[i]] for i in row]
                                for row in expected["input_ids"].tolist()])
            mask = expected["attention_mask"]
            with torch.no_grad():
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            real = mask.bool()
            print(json.dumps({{
                "model": type(model).__name__,
                "tokenizer": type(tokenizer).__name__,
                "difference": (hidden[real] - expected["last_hidden_state"][real]).abs().max().item(),
            }}))
            """
        )
        loaded = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0, loaded.stderr
        report = json.loads(loaded.stdout.strip().splitlines()[-1])
        assert report["model"] == "RnaFmModel" and report["tokenizer"] == "RnaTokenizer"
        assert report["difference"] < RNAFM.meta["tolerance"]["atol"]


def test_missing_token_fails_before_converting(tmp_path):
    with HubServer(tokens={TOKEN}) as hub:
        env = environment(tmp_path, hub.url, token=None)
        started = time.monotonic()
        result = cli(env, "rnafm", "--checkpoint", RNAFM.checkpoint, "--output", tmp_path / "out", "--push")
    assert result.returncode == 1
    assert "token" in result.stderr.lower()
    assert "converting" not in result.stdout  # the checkpoint was never read
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 60


def test_a_download_with_the_wrong_bytes_is_refused_and_nothing_kept(tmp_path):
    """The catalogued rnafm source served by a loopback 'Hub' that sends the fixture instead of the release."""
    entry = catalogue()["rnafm"]
    repo_id, location = entry.source.removeprefix("huggingface://").split("@", 1)
    revision, path = location.split("/", 1)
    with FileServer() as files:
        files.add_hub(repo_id, revision, path, RNAFM.checkpoint.read_bytes())
        result = cli(environment(tmp_path, files.url), "rnafm", "--output", tmp_path / "out")
    assert result.returncode == 1
    assert entry.sha256 in result.stderr  # the expected hash ...
    assert file_sha256(RNAFM.checkpoint) in result.stderr  # ... and the one that arrived
    assert not (tmp_path / "out").exists()
    assert not [path for path in tmp_path.joinpath("cache").rglob("*") if path.is_file()]


def test_failed_validation_writes_nothing(tmp_path, capsys):
    golden = tmp_path / "golden"
    shutil.copytree(RNAFM.directory.parent.parent, golden)
    tampered = golden / "rnafm" / "rnafm" / "expected.safetensors"
    tensors = load_file(tampered)
    tensors["last_hidden_state"] = tensors["last_hidden_state"] + 1e-2  # the "original outputs" no longer match
    save_file(tensors, tampered)
    status = run_convert(
        "rnafm", "--checkpoint", golden / "rnafm" / "rnafm" / RNAFM.meta["checkpoint"], "--output", tmp_path / "out",
        "--no-verify", "--golden-dir", golden,
    )  # fmt: skip
    assert status == 1
    error = capsys.readouterr().err
    assert "validation of rnafm failed" in error and "FAIL parity with golden fixture rnafm/rnafm" in error
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("variant", ["rnafm"])
def test_converter_self_test_runs_for_a_file_that_is_not_a_fixture(tmp_path, capsys, variant):
    """A re-saved fixture (same weights, different bytes) is validated by the self-test on the real fixture."""
    content = torch.load(RNAFM.checkpoint, weights_only=False)  # our own fixture file: trusted
    resaved = tmp_path / "RNA-FM_resaved.pth"
    torch.save(content, resaved, _use_new_zipfile_serialization=False)
    assert run_convert(variant, "--checkpoint", resaved, "--output", tmp_path / "out", "--no-verify") == 0
    printed = capsys.readouterr().out
    assert "ok  parity with converter self-test on the golden fixture rnafm/rnafm" in printed
    assert "ok  parity with rna-fm" in printed  # the original implementation, run live on this file


def test_all_goes_on_after_a_failure_and_ends_with_a_summary(tmp_path):
    """`all` over the RNA-FM variants against a loopback 'Hub' serving the fixtures (not the releases)."""
    entries = {name: entry for name, entry in catalogue().items() if entry.family == "rnafm"}
    with FileServer() as files:
        for name, entry in entries.items():
            repo_id, location = entry.source.removeprefix("huggingface://").split("@", 1)
            revision, path = location.split("/", 1)
            files.add_hub(repo_id, revision, path, golden_case("rnafm", name).checkpoint.read_bytes())
        env = environment(tmp_path, files.url)
        # the other families' sources answer 404 here rather than reaching the real services
        env.update({variable: files.url for variable, _ in ENDPOINTS.values()})
        result = cli(env, "all", "--output", tmp_path / "out")
    assert result.returncode == 1
    summary = result.stdout[result.stdout.index("status") :]
    for name in entries:
        assert f"== {name}" in result.stdout  # each variant was attempted ...
        assert re.search(rf"^{re.escape(name)}\s+FAILED\s+.*sha256", summary, re.MULTILINE)  # ... and reported
    assert not (tmp_path / "out").exists()
