"""The converter CLI's contract: listing, bad variants, checksums, overrides, and never clobbering output."""

from __future__ import annotations

import pytest
from conftest import golden_case, run_convert

from multimolecule import converters
from multimolecule.convert.catalogue import catalogue

RNAFM = golden_case("rnafm", "rnafm")


def test_list_shows_every_catalogued_variant(capsys):
    assert run_convert("list") == 0
    printed = capsys.readouterr().out
    for variant in catalogue():
        assert variant in printed
    rows = {line.split()[0]: line.split()[2] for line in printed.splitlines()[1:]}
    available = converters.all_variants()  # "not yet": catalogued, no converter
    assert {variant: rows[variant] for variant in catalogue()} == {
        variant: "yes" if variant in available else "not" for variant in catalogue()
    }
    assert rows["rnafm-ss"] == "yes"


def test_help_describes_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_convert("--help")
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    for option in ("--checkpoint", "--output", "--push", "--repo-id", "--token", "--no-verify", "--overwrite"):
        assert option in printed
    assert "--model.<field> VALUE" in printed


def test_unknown_variant_names_the_known_ones(tmp_path, capsys):
    assert run_convert("rnafn", "--output", tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert "unknown variant 'rnafn'" in error and "rnafm" in error
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_that_is_not_the_catalogued_one_is_refused(tmp_path, capsys):
    assert run_convert("rnafm", "--checkpoint", RNAFM.checkpoint, "--output", tmp_path / "out") == 1
    error = capsys.readouterr().err
    assert catalogue()["rnafm"].sha256 in error  # the expected hash
    assert "has sha256 " in error and "--no-verify" in error  # the actual one, and the way out
    assert not (tmp_path / "out").exists()


def test_override_contradicting_the_file_is_refused(tmp_path, capsys):
    status = run_convert(
        "rnafm", "--checkpoint", RNAFM.checkpoint, "--output", tmp_path / "out", "--no-verify",
        "--model.hidden_size", "64",
    )  # fmt: skip
    assert status == 1
    assert "--model.hidden_size 64 contradicts the checkpoint, which says hidden_size=32" in capsys.readouterr().err


def test_unknown_config_field_is_refused(tmp_path, capsys):
    status = run_convert(
        "rnafm", "--checkpoint", RNAFM.checkpoint, "--output", tmp_path / "out", "--no-verify", "--model.heads", "4"
    )
    assert status == 1
    assert "RnaFmConfig has no field 'heads'" in capsys.readouterr().err


def test_missing_hyperparameter_names_the_fix(tmp_path, capsys):
    case = golden_case("rnafm", "rnafm-ss")  # the ss file stores no args: 20 published heads do not divide 32
    assert run_convert("rnafm-ss", "--checkpoint", case.checkpoint, "--output", tmp_path / "out", "--no-verify") == 1
    error = capsys.readouterr().err
    assert "must be divisible by num_attention_heads (20)" in error and "--model.<field> VALUE" in error


def test_existing_output_needs_overwrite(tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("previous")
    assert run_convert("rnafm", "--checkpoint", RNAFM.checkpoint, "--output", output, "--no-verify") == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert (output / "keep.txt").read_text() == "previous"

    assert run_convert("rnafm", "--checkpoint", RNAFM.checkpoint, "--output", output, "--no-verify", "--overwrite") == 0
    assert not (output / "keep.txt").exists()
    assert (output / "model.safetensors").is_file()
    assert not list(tmp_path.glob(".out.partial-*"))  # no staging left behind
