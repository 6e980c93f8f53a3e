"""Length bucketing: every sequence once, limits respected, and less padding than batching in input order."""

from __future__ import annotations

import random

import pytest

from multimolecule.batching import length_batches, padding_ratio


def test_every_index_once_within_the_limits() -> None:
    generator = random.Random(0)
    lengths = [generator.randint(20, 1022) for _ in range(101)]
    batches = length_batches(lengths, batch_size=8, max_tokens=4096)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 8
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 4096


def test_less_padding_than_input_order() -> None:
    generator = random.Random(1)
    lengths = [generator.randint(20, 1022) for _ in range(200)]
    in_order = [list(range(start, min(start + 8, 200))) for start in range(0, 200, 8)]
    assert padding_ratio(lengths, length_batches(lengths, 8)) < padding_ratio(lengths, in_order)
    assert padding_ratio(lengths, length_batches(lengths, 8)) < 1.1


def test_a_sequence_longer_than_max_tokens_goes_alone() -> None:
    assert length_batches([5000, 10, 10], batch_size=4, max_tokens=1000) == [[0], [1, 2]]


def test_no_padding_is_ratio_one() -> None:
    assert padding_ratio([7, 7, 7], [[0, 1, 2]]) == 1.0
    with pytest.raises(ValueError):
        length_batches([1], batch_size=0)
