"""Values that cannot be right: config fields, odd fairseq containers, and the Hugging Face token.

A config refuses what would give wrong outputs or crash later (a padding id outside the vocabulary, NaN, a
size of 0) with one `ValueError` line naming the field; the converter CLI turns that, and every malformed
container, into one `error:` line and exit status 1, never a traceback. The token is read from a file or
standard input rather than the command line, which every user of the machine can read.
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from conftest import golden_case, run_convert

from multimolecule import RnaFmConfig
from multimolecule.convert import cli, hub
from multimolecule.convert.checkpoint import load_checkpoint
from multimolecule.convert.errors import ConversionError, PushError
from multimolecule.models.configuration_utils import Check, MultiMoleculeConfig, positive_int

RNAFM = golden_case("rnafm", "rnafm")
RNAFM_SS = golden_case("rnafm", "rnafm-ss")

# field, value, what the message says
BAD_VALUES = [
    ("pad_token_id", -5, "must be None or a token id in [0, vocab_size=26)"),
    ("mask_token_id", 999999, "must be None or a token id in [0, vocab_size=26)"),
    ("eos_token_id", [2, 26], "must be None or a token id"),
    ("rotary_base", math.nan, "must be a finite number > 0"),
    ("rotary_base", 0.0, "must be a finite number > 0"),
    ("hidden_size", -4, "must be a positive integer"),
    ("hidden_size", 64.0, "must be a positive integer"),
    ("num_hidden_layers", math.inf, "must be a positive integer"),
    ("num_attention_heads", 0, "must be a positive integer"),
    ("intermediate_size", 0, "must be a positive integer"),
    ("max_position_embeddings", -1, "must be a positive integer"),
    ("vocab_size", 0, "must be a positive integer"),
    ("num_labels", 0, "must be a positive integer"),
    ("hidden_dropout", 1.0, "must be a probability in [0, 1)"),
    ("attention_dropout", -0.1, "must be a probability in [0, 1)"),
    ("head_dropout", math.nan, "must be a probability in [0, 1)"),
    ("ss_dropout", 1.5, "must be a probability in [0, 1)"),  # a field RNA-FM adds: checked by its ending
    ("hidden_act", "os.system", "must be an activation of transformers.activations.ACT2FN"),
    ("head_act", "softmax2", "must be an activation"),
    ("position_offset", -1, "must be an integer >= 0"),
    ("layer_norm_eps", 0.0, "must be a finite number > 0"),
    ("layer_norm_eps", math.inf, "must be a finite number > 0"),
    ("initializer_range", math.nan, "must be a finite number >= 0"),
]


@pytest.mark.parametrize(("field", "value", "says"), BAD_VALUES, ids=[f"{f}={v}" for f, v, _ in BAD_VALUES])
def test_config_refuses_values_that_cannot_be_right(field: str, value, says: str):
    with pytest.raises(ValueError) as raised:
        RnaFmConfig(**{field: value})
    message = str(raised.value)
    assert message.startswith(f"{field} {says}") and "\n" not in message, message


@pytest.mark.parametrize(
    "fields",
    [{}, {"pad_token_id": None}, {"eos_token_id": [2, 3]}, {"hidden_dropout": 0.0, "position_offset": 0},
     {"rotary_base": 10_000, "layer_norm_eps": 1e-12, "hidden_act": "silu", "num_labels": 1}],
    ids=["defaults", "no padding", "two end tokens", "zero dropout and offset", "integer base"],
)  # fmt: skip
def test_config_accepts_what_can_be_right(fields: dict, tmp_path: Path):
    config = RnaFmConfig(**fields)
    config.save_pretrained(tmp_path)
    loaded = RnaFmConfig.from_pretrained(tmp_path)
    assert all(getattr(loaded, name) == value for name, value in fields.items())


def test_a_family_extends_the_checks():
    class WidgetConfig(MultiMoleculeConfig):
        """A family with a field of its own, extending the table of checks."""

        model_type = "widget-test"
        widget_size: int = 4
        field_checks: ClassVar[Mapping[str, Check]] = {**MultiMoleculeConfig.field_checks, "widget_size": positive_int}

    assert WidgetConfig(widget_size=8).widget_size == 8
    with pytest.raises(ValueError, match=r"^widget_size must be a positive integer; got 0$"):
        WidgetConfig(widget_size=0)
    with pytest.raises(ValueError, match=r"^pad_token_id must be None"):  # and keeps the shared ones
        WidgetConfig(pad_token_id=-1)


# ------------------------------------------------------------------------------------------- the CLI


def convert_fails(capsys, output: Path, *argv) -> str:
    """The CLI's one-line error for `argv` (exit status 1, nothing written)."""
    status = run_convert(*argv, "--no-verify", "--output", output)
    error = capsys.readouterr().err.strip()
    assert status == 1, error
    assert len(error.splitlines()) == 1 and error.startswith("error: "), error
    assert not output.exists()
    return error


@pytest.mark.parametrize(
    ("override", "says"),
    [
        (("--model.pad_token_id", "-5"), "pad_token_id must be None or a token id"),
        (("--model.mask_token_id", "999999"), "mask_token_id must be None or a token id"),
        (("--model.rotary_base", "nan"), "rotary_base must be a finite number > 0"),
        (("--model.layer_norm_eps", "0"), "layer_norm_eps must be a finite number > 0"),
        (("--model.hidden_act", "os.system"), "hidden_act must be an activation"),
        (("--model.position_offset", "-3"), "position_offset must be an integer >= 0"),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else None,
)
def test_cli_refuses_config_values_naming_the_field(override: tuple[str, str], says: str, tmp_path: Path, capsys):
    error = convert_fails(capsys, tmp_path / "out", "rnafm", "--checkpoint", RNAFM.checkpoint, *override)
    assert says in error and str(RNAFM.checkpoint) in error


@pytest.mark.parametrize(
    ("value", "says"),
    [("inf", "--model.num_attention_heads 'inf' is not a valid int"), ("0", "num_attention_heads must be a positive"),
     ("-4", "num_attention_heads must be a positive"), ("nan", "--model.num_attention_heads 'nan' is not a valid int")],
)  # fmt: skip
def test_cli_refuses_sizes_that_cannot_be_right(value: str, says: str, tmp_path: Path, capsys):
    """The secondary-structure file stores no number of heads: the override is what the config gets."""
    argv = ("rnafm-ss", "--checkpoint", RNAFM_SS.checkpoint, "--model.num_attention_heads", value)
    assert says in convert_fails(capsys, tmp_path / "out", *argv)


def _fairseq(**changes) -> dict:
    content = load_checkpoint(RNAFM.checkpoint)
    return {"args": content["args"], "model": content["model"], **changes}


def _args(**values) -> argparse.Namespace:
    args = argparse.Namespace(**vars(load_checkpoint(RNAFM.checkpoint)["args"]))
    for name, value in values.items():
        if value is None:
            delattr(args, name)
        else:
            setattr(args, name, value)
    return args


ODD_CONTAINERS = {
    "args=1": (lambda: _fairseq(args=1), "'args' is a int; expected an argparse.Namespace or a dict"),
    "args with integer keys": (lambda: _fairseq(args={1: 2}), "'args' is a dict with keys that are not names"),
    "model=[]": (lambda: _fairseq(model=[]), "'model' is a list; expected a dict of tensors"),
    "model with integer keys": (
        lambda: _fairseq(model={1: torch.zeros(2), **_fairseq()["model"]}),
        "'model' has a key 1, not a name",
    ),
    "model holding a number": (
        lambda: _fairseq(model={**_fairseq()["model"], "encoder.version": 2}),
        "'model' holds a int under 'encoder.version'",
    ),
    "heads as text": (lambda: _fairseq(args=_args(encoder_attention_heads="4")), "encoder_attention_heads as a str"),
    "heads as a tensor": (
        lambda: _fairseq(args=_args(encoder_attention_heads=torch.tensor([4, 4]))),
        "encoder_attention_heads as a Tensor",
    ),
    "heads infinite": (lambda: _fairseq(args=_args(encoder_attention_heads=math.inf)), "as a float (inf)"),
    "heads 0": (lambda: _fairseq(args=_args(encoder_attention_heads=0)), "num_attention_heads must be a positive"),
    "heads -4": (lambda: _fairseq(args=_args(encoder_attention_heads=-4)), "num_attention_heads must be a positive"),
    "no heads": (lambda: _fairseq(args=_args(encoder_attention_heads=None)), "args have no encoder_attention_heads"),
    "layers as text": (lambda: _fairseq(args=_args(encoder_layers="3")), "encoder_layers as a str"),
    "token_dropout as a tensor": (
        lambda: _fairseq(args=_args(token_dropout=torch.ones(3))),
        "token_dropout as a Tensor",
    ),
    "embedding of one dimension": (
        lambda: _fairseq(model={**_fairseq()["model"], "encoder.encoder.embed_tokens.weight": torch.zeros(25)}),
        "embed_tokens.weight has shape (25,), which has no dimension 1",
    ),
}


@pytest.mark.parametrize("case", ODD_CONTAINERS)
def test_odd_containers_name_what_is_wrong(case: str, tmp_path: Path, capsys):
    make, says = ODD_CONTAINERS[case]
    path = tmp_path / "model.pth"
    torch.save(make(), path)
    error = convert_fails(capsys, tmp_path / "out", "rnafm", "--checkpoint", path)
    assert says in error, error


# ----------------------------------------------------------------------------------------- the token


@pytest.fixture
def pushed_token(monkeypatch) -> list:
    """The token the CLI hands to the Hub check (which then stops the run: no conversion, no network)."""
    seen = []

    def resolve(token, endpoint=None):
        seen.append(token)
        raise PushError("stopped by the test")

    monkeypatch.setattr(hub, "resolve_token", resolve)
    return seen


def push(*argv, output: Path) -> int:
    return run_convert("rnafm", "--checkpoint", RNAFM.checkpoint, "--no-verify", "--output", output, "--push", *argv)


def test_token_from_a_file(pushed_token, tmp_path: Path, capsys):
    secret = tmp_path / "token"
    secret.write_text("hf_from_file\n")
    assert push("--token-file", secret, output=tmp_path / "out") == 1
    assert pushed_token == ["hf_from_file"]
    assert capsys.readouterr().err.strip() == "error: stopped by the test"  # no warning: nothing on the line


def test_token_from_standard_input(pushed_token, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hf_from_stdin\n"))
    assert push("--token", "-", output=tmp_path / "out") == 1
    assert pushed_token == ["hf_from_stdin"]
    assert "visible" not in capsys.readouterr().err


def test_token_on_the_command_line_still_works_with_a_warning(pushed_token, tmp_path: Path, capsys):
    assert push("--token", "hf_on_the_line", output=tmp_path / "out") == 1
    assert pushed_token == ["hf_on_the_line"]
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("warning: --token VALUE is visible to other users of this machine")
    assert "--token-file" in warning and "HF_TOKEN" in warning and error == "error: stopped by the test"


def test_no_token_option_leaves_it_to_the_environment(pushed_token, tmp_path: Path, capsys):
    assert push(output=tmp_path / "out") == 1
    assert pushed_token == [None]  # resolve_token then reads HF_TOKEN or the saved login
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--token-file", "MISSING"), "could not read the token file"),
        (("--token-file", "EMPTY"), "holds no Hugging Face token"),
        (("--token", "hf_x", "--token-file", "EMPTY"), "with --token or --token-file, not both"),
    ],
    ids=["missing file", "empty file", "both"],
)
def test_token_options_that_cannot_work(argv, says: str, pushed_token, tmp_path: Path, capsys):
    (tmp_path / "EMPTY").write_text("\n")
    argv = [str(tmp_path / arg) if arg in ("MISSING", "EMPTY") else arg for arg in argv]
    assert push(*argv, output=tmp_path / "out") == 1
    assert says in capsys.readouterr().err
    assert pushed_token == []


def test_help_says_where_the_token_comes_from(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert "--token-file" in printed and "HF_TOKEN" in printed and "`-` reads it from standard input" in printed
    assert "visible to other users of the machine" in printed


def test_missing_token_message_points_away_from_the_command_line(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hub, "get_token", lambda: None)
    with pytest.raises(PushError, match=r"Set HF_TOKEN, log in once with `hf auth login`, or pass --token-file"):
        hub.resolve_token(None, endpoint="http://127.0.0.1:9")


def test_conversion_error_type_for_config_values():
    """The engine's wrapping: what the CLI prints for a config value is a ConversionError naming it."""
    from multimolecule.converters import get_converter

    with pytest.raises(ConversionError, match=r"the configuration is invalid \(pad_token_id must be None"):
        get_converter("rnafm").convert(RNAFM.checkpoint, {"pad_token_id": -5})
