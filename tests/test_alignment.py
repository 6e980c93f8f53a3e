"""Alignments as input: reading FASTA / A2M / A3M as RNA-MSM's reader does, and the (batch, rows, columns)
layout of the tokenizer, checked against the RNA-MSM fixture's own tokenisation and padding."""

from __future__ import annotations

import pytest
import torch
from conftest import golden_case
from transformers import AutoTokenizer

from multimolecule import RnaTokenizer
from multimolecule.io import read_alignment
from multimolecule.io.alignment import parse_alignment

CASE = golden_case("rnamsm", "rnamsm")


def msa_tokenizer(**kwargs) -> RnaTokenizer:
    return RnaTokenizer(add_eos=False, **kwargs)


def test_a3m_insertions_are_dropped_and_codes_read_as_upstream():
    text = ">query description\nACGU-\nACG\n; a comment\n>hit 1\nAaaCGT-ACgG\n\n>hit 2\nN.C.RY--YK*\n"
    alignment = parse_alignment(text)
    assert alignment.names == ("query description", "hit 1", "hit 2")
    assert alignment.rows == ("ACGU-ACG", "ACGU-ACG", "XCXX--XX")


def test_a_ragged_alignment_or_text_that_is_not_fasta_is_one_error(tmp_path):
    with pytest.raises(ValueError, match=r"record 'b' has 3 aligned columns but the first \('a'\) has 4"):
        parse_alignment(">a\nACGU\n>b\nACuu-\n")  # "uu" are insertions: 3 columns remain
    with pytest.raises(ValueError, match="line 1 holds sequence before any '>' header"):
        parse_alignment("ACGU\n>a\nACGU\n")
    with pytest.raises(ValueError, match="no FASTA records"):
        parse_alignment("\n\n")
    with pytest.raises(ValueError, match="record 'b' has no aligned columns"):
        parse_alignment(">a\nACGU\n>b\nacgu\n")
    with pytest.raises(ValueError, match=r"could not read the alignment .*missing\.a3m"):
        read_alignment(tmp_path / "missing.a3m")


def test_reading_a_file(tmp_path):
    path = tmp_path / "family.a2m"
    path.write_text(">q\nGGC.UA\n>h\nGGCaUA\n")
    alignment = read_alignment(path)
    assert alignment.rows == ("GGCUA", "GGCUA") and alignment.shape == (2, 5)


def test_a_batch_of_alignments_has_upstreams_layout():
    """<cls> on every row, no <eos>, padded with <pad> in rows and columns, as upstream's collater pads."""
    tokenizer = msa_tokenizer()
    batch = tokenizer.encode_alignments(CASE.meta["sequences"], return_tensors="pt")
    expected = CASE.expected
    assert batch["input_ids"].shape == expected["input_ids"].shape == (3, 4, 35)
    assert torch.equal(batch["attention_mask"], expected["attention_mask"].to(batch["attention_mask"].dtype))
    upstream = [[[CASE.meta["vocab"][i] for i in row] for row in a] for a in expected["input_ids"].tolist()]
    ours = [[tokenizer.convert_ids_to_tokens(row) for row in a] for a in batch["input_ids"].tolist()]
    assert ours == upstream


def test_ragged_rows_and_too_many_rows_are_errors_naming_them():
    tokenizer = msa_tokenizer(max_alignment_rows=2)
    with pytest.raises(ValueError, match=r"alignment 1: the rows of an alignment must have one length; row 0 has 3"):
        tokenizer.encode_alignments([["ACG", "ACG"], ["ACG", "AC"]])
    with pytest.raises(ValueError, match=r"alignment 0 has 3 rows × 4 columns .* at most 2 rows"):
        tokenizer.encode_alignments([["ACG", "ACG", "ACG"]])
    kept = tokenizer.encode_alignments([["ACG", "GGG", "UUU"]], truncation=True)
    assert tokenizer.convert_ids_to_tokens(kept["input_ids"][0][1]) == ["<cls>", "G", "G", "G"]
    assert len(kept["input_ids"][0]) == 2
    with pytest.raises(ValueError, match="wrap a single alignment in a list"):
        tokenizer.encode_alignments(["ACG", "ACG"])


def test_alignment_options_are_saved_with_the_tokenizer(tmp_path):
    msa_tokenizer(max_alignment_rows=7).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert (loaded.add_cls, loaded.add_eos, loaded.max_alignment_rows) == (True, False, 7)
