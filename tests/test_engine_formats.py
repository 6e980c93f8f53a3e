"""The engine's format machinery on its own: key-map transforms, vocabulary spellings and rows, and the
golden self-test that must never be skipped in silence."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import golden_case, run_convert

from multimolecule.convert.errors import ConversionError
from multimolecule.convert.keymap import KeyMap, chain, split, transpose
from multimolecule.convert.vocabulary import ABSENT_TOKEN_LOGIT, VocabularyRemap


def test_a_rule_can_split_a_fused_tensor_into_several_keys():
    fused = torch.arange(24.0).view(6, 4)  # q | k | v stacked along the output rows
    keys = KeyMap([(r"blocks\.(\d+)\.Wqkv\.weight", [rf"layers.\1.{p}_proj.weight" for p in "qkv"], split(3))])
    state, dropped, unmatched, upstream_of = keys.rename({"blocks.3.Wqkv.weight": fused})
    assert not dropped and not unmatched
    assert torch.equal(state["layers.3.q_proj.weight"], fused[:2]) and torch.equal(
        state["layers.3.v_proj.weight"], fused[4:]
    )
    assert upstream_of["layers.3.k_proj.weight"] == "blocks.3.Wqkv.weight"


def test_transforms_chain_and_report_the_key_they_fail_on():
    keys = KeyMap([(r"w", ("a", "b"), chain(transpose, split(2)))])
    state, *_ = keys.rename({"w": torch.arange(6.0).view(3, 2)})
    assert torch.equal(state["a"], torch.tensor([[0.0, 2.0, 4.0]]))
    with pytest.raises(ConversionError, match=r"^w: dimension 0 of shape \(1, 3\) does not split into 2"):
        keys.rename({"w": torch.zeros(3, 1)})


def test_two_upstream_keys_for_one_of_ours_is_an_error():
    keys = KeyMap([(r"(?:a|b)\.weight", "x.weight")])
    with pytest.raises(ConversionError, match=r"both map to x\.weight"):
        keys.rename({"a.weight": torch.zeros(1), "b.weight": torch.zeros(1)})


def test_vocabulary_spellings_rows_and_a_vocabulary_without_unk():
    upstream = ["PAD", "MASK", "A", "T", "G", "C"]
    ours = ["<pad>", "<cls>", "<mask>", "A", "C", "G", "U", "N", "X"]
    remap = VocabularyRemap(upstream, ours, token_rows={"X": "A"})
    assert remap.respelled == {"PAD": "<pad>", "MASK": "<mask>", "T": "U"}
    assert remap.source_rows() == [0, None, 1, 2, 5, 4, 3, None, 2]
    embedding = torch.arange(12.0).view(6, 2) + 1
    rows = remap.apply("embedding", embedding, "embedding")
    assert torch.equal(rows[6], embedding[3]) and torch.equal(rows[7], torch.zeros(2))  # U <- T; N: no <unk>
    bias = remap.apply("bias", torch.arange(6.0), "logit")
    assert bias[[1, 7, 8]].eq(ABSENT_TOKEN_LOGIT).all() and bias[6] == 3.0
    assert remap.ids(torch.tensor([[3, 0]])).tolist() == [[6, 0]]


def test_a_spelling_is_not_applied_when_upstream_has_both():
    remap = VocabularyRemap(["<unk>", "T", "U"], ["<unk>", "U"])
    assert remap.source_rows() == [0, 2] and remap.discarded == ["T"]


def test_a_missing_golden_fixture_stops_the_publisher(tmp_path, capsys):
    """A converter names the fixtures that prove it; without them nothing is published, and it says why."""
    golden = tmp_path / "golden"
    case = golden_case("rnaernie", "rnaernie")
    shutil.copytree(case.directory, golden / "other" / "rnaernie")
    status = run_convert(
        "rnaernie", "--checkpoint", case.checkpoint, "--output", tmp_path / "out", "--no-verify", "--golden-dir", golden
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "needs the golden fixture(s) rnaernie of rnaernie" in err and "--golden-dir" in err
    assert not (tmp_path / "out").exists()


def test_a_release_directory_is_the_fixture_by_its_weights_hash(tmp_path, capsys):
    """The catalogue's hash covers the weights file alone: a copy of the release with another sidecar file is
    still recognised as the fixture, and checked against its outputs."""
    case = golden_case("rnaernie", "rnaernie")
    release = tmp_path / "release"
    shutil.copytree(case.directory, release)
    with (release / "model_config.json").open("a") as file:
        file.write("\n")  # a different sidecar, same weights: still the fixture by hash
    assert run_convert("rnaernie", "--checkpoint", release, "--output", tmp_path / "out", "--no-verify") == 0
    assert "parity with golden fixture rnaernie/rnaernie" in capsys.readouterr().out


def test_token_rows_take_precedence_over_an_untrained_row_of_the_same_token():
    """RNA-MSM has an N row, but its reader turns N into X: our N takes X's row, is never predicted, and its
    logits are not compared with upstream's N column."""
    upstream = ["<cls>", "<pad>", "A", "X", "N"]
    remap = VocabularyRemap(upstream, ["<pad>", "<cls>", "A", "N", "X"], token_rows={"N": "X"})
    assert remap.source_rows() == [1, 0, 2, 3, 3]
    bias = remap.apply("bias", torch.arange(5.0), "logit")
    assert bias.tolist() == [1.0, 0.0, 2.0, ABSENT_TOKEN_LOGIT, 3.0]
    assert remap.shared_columns() == ([2, 4], [2, 3])  # special tokens are never compared: never predicted
