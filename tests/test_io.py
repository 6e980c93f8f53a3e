"""FASTA, dot-bracket, BPSEQ / CT and base-pair scores: the structure conversions, on cases checked by hand."""

from __future__ import annotations

import gzip

import pytest
import torch

from multimolecule.io import (
    InputError,
    from_dot_bracket,
    pair_f1,
    read_bpseq,
    read_ct,
    read_fasta,
    to_dot_bracket,
    write_bpseq,
    write_ct,
)
from multimolecule.pipelines import pairs_from_probabilities

FASTA = ">a first\nACGU\nAC\n; comment\n>b\n\n>c\nacgt\n"


@pytest.mark.parametrize("compressed", [False, True])
def test_fasta_plain_and_gzipped(tmp_path, compressed):
    path = tmp_path / "x.fa"
    path.write_bytes(gzip.compress(FASTA.encode()) if compressed else FASTA.encode())
    records = list(read_fasta(path))
    assert [(r.id, r.sequence, r.line) for r in records] == [("a", "ACGUAC", 1), ("b", "", 5), ("c", "acgt", 7)]
    assert records[0].description == "first"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ACGU\n>a\nACGU\n", "line 1: sequence text before the first '>' header"),
        (b">a\nACGU\n>\nAC\n", "line 3: a header without a record id"),
        (b">a\nAC\xffGU\n", "line 2: not UTF-8"),
        (gzip.compress(b">a\n" + b"ACGU" * 1000)[:-30], "unreadable compressed data"),
    ],
)
def test_fasta_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.fa"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        list(read_fasta(path))


def test_dot_bracket_with_pseudoknots():
    pairs = [(0, 9), (1, 8), (3, 12), (4, 11), (6, 14)]  # (3,12) crosses (0,9); (6,14) crosses both layers
    text = to_dot_bracket(pairs, 16)
    assert text == "((.[[.{.)).]].}."
    assert from_dot_bracket(text) == sorted(pairs)
    assert from_dot_bracket("(<)>") == [(0, 2), (1, 3)]
    five = [(0, 5), (1, 6), (2, 7), (3, 8), (4, 9)]  # mutually crossing: a fifth type, then letters
    assert to_dot_bracket(five, 10) == "([{<A)]}>a"
    assert from_dot_bracket("([{<A)]}>a") == five
    crossing = [(k, k + 31) for k in range(31)]
    with pytest.raises(ValueError, match="crosses pairs of all 30 bracket types"):
        to_dot_bracket(crossing, 62)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(()", "position 0 is never closed"),
        (").", "position 0 closes"),
        ("(1)", "unknown character '1' at position 1"),
    ],
)
def test_dot_bracket_errors(text, message):
    with pytest.raises(InputError, match=message):
        from_dot_bracket(text)


def test_bpseq_and_ct_round_trip(tmp_path):
    sequence, pairs = "GGGAAACCCU", [(0, 8), (1, 7), (2, 6)]
    write_bpseq(tmp_path / "x.bpseq", sequence, pairs)
    write_ct(tmp_path / "x.ct", sequence, pairs, title="hairpin")
    assert (tmp_path / "x.bpseq").read_text().splitlines()[0] == "1 G 9"
    assert read_bpseq(tmp_path / "x.bpseq") == (sequence, pairs)
    assert read_ct(tmp_path / "x.ct") == (sequence, pairs)
    assert (tmp_path / "x.ct").read_text().splitlines()[:2] == ["10\thairpin", "1\tG\t0\t2\t9\t1"]


def test_bpseq_preamble_and_inconsistent_partner(tmp_path):
    path = tmp_path / "x.bpseq"
    path.write_text("Filename: x\n# comment\n1 G 3\n2 A 0\n3 C 1\n")
    assert read_bpseq(path) == ("GAC", [(0, 2)])
    path.write_text("1 G 3\n2 A 0\n3 C 0\n")
    with pytest.raises(InputError, match="line 1: base 1 pairs with 3, but base 3 pairs with 0"):
        read_bpseq(path)
    path.write_text("1 G 0\n3 A 0\n")
    with pytest.raises(InputError, match="line 2: base 3 where base 2 was expected"):
        read_bpseq(path)


def test_pair_f1_by_hand():
    score = pair_f1([(0, 9), (1, 8), (2, 5)], [(9, 0), (1, 8), (3, 6), (4, 7)])
    assert (score.precision, score.recall, score.true_positives) == (2 / 3, 0.5, 2)
    assert score.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert pair_f1([], []).f1 == 1.0
    assert pair_f1([], [(0, 1)]).f1 == 0.0


def test_pairs_from_probabilities_greedy_and_threshold():
    probabilities = torch.zeros(6, 6)
    for (i, j), p in {(0, 5): 0.9, (0, 4): 0.8, (1, 4): 0.7, (2, 3): 0.5, (1, 3): 0.6}.items():
        probabilities[i, j] = probabilities[j, i] = p
    # greedy: (0,5) 0.9; (0,4) loses base 0; (1,4) 0.7; (1,3) loses base 1; (2,3) 0.5 is not above 0.5
    assert pairs_from_probabilities(probabilities, 0.5) == [(0, 5), (1, 4)]
    assert pairs_from_probabilities(probabilities, 0.4) == [(0, 5), (1, 4), (2, 3)]
    assert pairs_from_probabilities(probabilities, 0.4, min_loop=1) == [(0, 5), (1, 4)]  # (2,3) encloses nothing
    assert pairs_from_probabilities(probabilities, 0.95) == []
