"""Batches by token budget: sequences of similar length together, so little of each batch is padding."""

from __future__ import annotations

from collections.abc import Sequence


def token_batches(
    lengths: Sequence[int], max_tokens: int, max_sequences: int | None = None, sort: bool = True
) -> list[list[int]]:
    """Indices into `lengths`, grouped so that batch size x longest sequence <= `max_tokens` (padding
    included) and at most `max_sequences` per batch. With `sort`, by length (ties in input order); without, in
    input order. A sequence longer than the budget gets a batch of its own."""
    order = sorted(range(len(lengths)), key=lambda k: (lengths[k], k)) if sort else list(range(len(lengths)))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        widest = max(longest, lengths[index])
        full = max_sequences is not None and len(current) >= max_sequences
        if current and (widest * (len(current) + 1) > max_tokens or full):
            batches.append(current)
            current, widest = [], lengths[index]
        current.append(index)
        longest = widest
    if current:
        batches.append(current)
    return batches


def padding_fraction(lengths: Sequence[int], batches: list[list[int]]) -> float:
    """Share of the computed positions that are padding."""
    real = sum(lengths[k] for batch in batches for k in batch)
    computed = sum(len(batch) * max(lengths[k] for k in batch) for batch in batches)
    return 1 - real / computed if computed else 0.0
