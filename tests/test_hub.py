"""The push step end to end, against the loopback Hub of `tests/servers/hub.py`: nothing in hub.py is mocked.

huggingface_hub reads HF_ENDPOINT and the token file location when it is imported, so in this process every
call names the server with `endpoint=`, and the download check runs in a fresh Python process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import huggingface_hub.utils._http
import pytest
import torch
from huggingface_hub import HfApi
from servers.hub import HubServer

from multimolecule import RnaFmConfig, RnaFmForMaskedLM, RnaTokenizer
from multimolecule.convert.errors import PushError
from multimolecule.convert.hub import push, resolve_token

TOKEN = "hf_test_writer"
SEQUENCE = "ACGUNACGUAGCUUAGC"


@pytest.fixture
def hub():
    with HubServer(tokens={TOKEN}) as server:
        yield server


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real tiny RNA-FM masked LM and its tokenizer, saved as the converter would."""
    torch.manual_seed(0)
    config = RnaFmConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    folder = tmp_path_factory.mktemp("rnafm-tiny")
    RnaFmForMaskedLM(config).save_pretrained(folder)
    RnaTokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def no_retry_wait(monkeypatch):
    """huggingface_hub retries a failed commit 5 times, sleeping 1+2+4+8+8 s; record the waits instead."""
    waits: list[float] = []
    monkeypatch.setattr(huggingface_hub.utils._http, "time", SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture
def no_configured_token(monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    # The token file's location was fixed when huggingface_hub was imported: move it into tmp_path too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored"))
    return tmp_path / "hf_home" / "token"


def read_folder(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


# ---------------------------------------------------------------------------------------------- the token


def test_resolve_token_without_any_token_fails_before_any_request(hub, no_configured_token):
    with pytest.raises(PushError, match=r"No Hugging Face token.*HF_TOKEN.*hf auth login"):
        resolve_token(None, endpoint=hub.url)
    assert hub.requests == []


def test_resolve_token_rejected_by_the_server(hub, no_configured_token):
    with pytest.raises(PushError, match="rejected the Hugging Face token"):
        resolve_token("hf_wrong", endpoint=hub.url)
    assert hub.requests == [("GET", "/api/whoami-v2", 401)]


def test_resolve_token_read_only(no_configured_token):
    with HubServer(tokens={"hf_reader": "read"}) as server, pytest.raises(PushError, match="read-only"):
        resolve_token("hf_reader", endpoint=server.url)


def test_resolve_token_finds_the_usual_places(hub, no_configured_token, monkeypatch):
    assert resolve_token(TOKEN, endpoint=hub.url) == TOKEN
    no_configured_token.parent.mkdir(parents=True)
    no_configured_token.write_text(TOKEN)
    assert resolve_token(None, endpoint=hub.url) == TOKEN  # the token file
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")  # HF_TOKEN takes precedence over the file
    with pytest.raises(PushError, match="rejected"):
        resolve_token(None, endpoint=hub.url)


def test_resolve_token_unreachable_hub(no_configured_token):
    with HubServer() as server:
        url = server.url
    with pytest.raises(PushError, match="Could not reach"):
        resolve_token(TOKEN, endpoint=url)


# ---------------------------------------------------------------------------------------------- pushing


def test_push_makes_one_commit_with_the_folder(hub, model_dir):
    oid = push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url, commit_message="Convert RNA-FM")
    [commit] = hub.commits("tester/rnafm-tiny")
    assert commit.oid == oid and commit.summary == "Convert RNA-FM"
    assert set(commit.files) == {"config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"}
    assert hub.files("tester/rnafm-tiny") == read_folder(model_dir)


def test_repush_of_identical_files_makes_no_commit(hub, model_dir):
    first = push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)
    assert push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url) is None
    assert [commit.oid for commit in hub.commits("tester/rnafm-tiny")] == [first]


def test_push_to_a_repo_with_other_files_commits_only_the_difference(hub, model_dir, tmp_path):
    push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)
    changed = tmp_path / "changed"
    changed.mkdir()
    for name, data in read_folder(model_dir).items():
        (changed / name).write_bytes(data)
    (changed / "README.md").write_text("---\nlicense: mit\n---\n# RNA-FM tiny\n")
    (changed / "eval").mkdir()
    (changed / "eval" / "results.json").write_text("{}")
    oid = push(changed, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)
    first, second = hub.commits("tester/rnafm-tiny")
    assert second.oid == oid and second.parent == first.oid
    assert hub.files("tester/rnafm-tiny") == read_folder(changed)
    assert ("POST", "/api/validate-yaml", 200) in hub.requests
    api = HfApi(endpoint=hub.url)
    assert sorted(api.list_repo_files("tester/rnafm-tiny")) == sorted(read_folder(changed))
    top = {entry.path: type(entry).__name__ for entry in api.list_repo_tree("tester/rnafm-tiny")}
    assert top["eval"] == "RepoFolder" and "eval/results.json" not in top


def test_push_with_a_rejected_token_keeps_the_folder(hub, model_dir):
    with pytest.raises(PushError, match=re.escape(f"kept at {model_dir}")):
        push(model_dir, "tester/rnafm-tiny", "hf_wrong", endpoint=hub.url)
    assert "tester/rnafm-tiny" not in hub.repos


@pytest.mark.skipif(
    huggingface_hub.constants.HF_HUB_DISABLE_XET, reason="only the pipelined upload of hf_xet retries a commit"
)
def test_a_single_dropped_commit_is_retried_by_the_client(hub, model_dir, no_retry_wait):
    hub.drop_commits(1)
    oid = push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)
    assert hub.dropped == 1 and no_retry_wait == [1]
    assert [commit.oid for commit in hub.commits("tester/rnafm-tiny")] == [oid]
    assert hub.files("tester/rnafm-tiny") == read_folder(model_dir)


def test_dropped_connection_raises_keeps_the_folder_and_retry_commits_once(hub, model_dir, no_retry_wait):
    before = read_folder(model_dir)
    hub.drop_commits(1000)  # every attempt, the client's own retries included
    with pytest.raises(PushError) as raised:
        push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)
    message = str(raised.value)
    assert f"kept at {model_dir}" in message
    assert f"Retry with: hf upload tester/rnafm-tiny {model_dir}" in message
    assert hub.dropped == 1 + len(no_retry_wait)  # the first attempt and each of the client's own retries
    assert hub.commits("tester/rnafm-tiny") == []  # nothing half-written
    assert read_folder(model_dir) == before

    hub.drop_commits(0)
    oid = push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)
    [commit] = hub.commits("tester/rnafm-tiny")
    assert commit.oid == oid and commit.parent is None
    assert hub.files("tester/rnafm-tiny") == before


def test_push_of_an_empty_folder_is_refused(hub, tmp_path):
    with pytest.raises(PushError, match="Nothing to push"):
        push(tmp_path, "tester/empty", TOKEN, endpoint=hub.url)
    assert hub.requests == []


# ---------------------------------------------------------------------------------------------- loading back

LOAD = textwrap.dedent(
    """
    import sys

    import torch
    from transformers import AutoModel, AutoTokenizer

    import multimolecule  # noqa: F401  (registers the families with the Auto classes)

    repo, expected_path = sys.argv[1:]
    expected = torch.load(expected_path, weights_only=True)
    tokenizer = AutoTokenizer.from_pretrained(repo)
    model = AutoModel.from_pretrained(repo).eval()
    inputs = tokenizer(expected["sequence"], return_tensors="pt")
    assert inputs["input_ids"].tolist() == expected["input_ids"].tolist(), inputs["input_ids"]
    with torch.no_grad():
        output = model(**inputs).last_hidden_state
    torch.testing.assert_close(output, expected["last_hidden_state"], atol=1e-6, rtol=0)
    print(type(model).__name__, type(tokenizer).__name__, "match")
    """
)


def test_pushed_model_loads_in_a_fresh_process(hub, model_dir, tmp_path):
    push(model_dir, "tester/rnafm-tiny", TOKEN, endpoint=hub.url)

    local = RnaFmForMaskedLM.from_pretrained(model_dir).eval()
    inputs = RnaTokenizer.from_pretrained(model_dir)(SEQUENCE, return_tensors="pt")
    with torch.no_grad():
        hidden = local.model(**inputs).last_hidden_state
    expected = tmp_path / "expected.pt"
    torch.save({"sequence": SEQUENCE, "input_ids": inputs["input_ids"], "last_hidden_state": hidden}, expected)

    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGING"))}
    env.pop("TRANSFORMERS_OFFLINE", None)
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_TOKEN="hf_dummy_reader",  # reads are public on the test server; any token is sent along and ignored
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1",
    )
    result = subprocess.run(
        [sys.executable, "-c", LOAD, "tester/rnafm-tiny", str(expected)],
        cwd=tmp_path,  # no local folder named like the repo
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RnaFmModel RnaTokenizer match" in result.stdout
    head = hub.commits("tester/rnafm-tiny")[0].oid
    assert ("GET", f"/tester/rnafm-tiny/resolve/{head}/model.safetensors", 200) in hub.requests
