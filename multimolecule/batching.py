"""Batches of similar length, for tools that batch sequences for the user.

A padded batch costs what its rectangle costs (batch x longest), not what its real tokens cost: on CPU the
attention kernels take an additive mask and compute the padded positions anyway. Grouping sequences of similar
length keeps the rectangle close to the real tokens; callers restore the input order from the indices.
"""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices of `lengths` in batches of at most `batch_size` (and, given `max_tokens`, at most that many
    padded tokens, unless one sequence alone is longer), longest first, each batch of similar lengths."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[current[0]] if current else lengths[index]  # longest first: the batch's first
        full = len(current) >= batch_size or (max_tokens is not None and longest * (len(current) + 1) > max_tokens)
        if current and full:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def padding_ratio(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Padded tokens computed / real tokens: 1.0 when no batch is padded."""
    real = sum(lengths)
    padded = sum(max(lengths[index] for index in batch) * len(batch) for batch in batches if batch)
    return padded / real if real else 1.0
