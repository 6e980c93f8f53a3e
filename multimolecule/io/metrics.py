"""Base-pair precision, recall and F1: how predictions are compared with reference structures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PairScore:
    precision: float
    recall: float
    f1: float
    true_positives: int


def pair_f1(predicted: Iterable[tuple[int, int]], reference: Iterable[tuple[int, int]]) -> PairScore:
    """Exact-match scores over base pairs (orientation ignored). Two empty structures agree perfectly (1.0);
    an empty prediction against a non-empty reference scores 0."""
    predicted = {tuple(sorted(pair)) for pair in predicted}
    reference = {tuple(sorted(pair)) for pair in reference}
    hits = len(predicted & reference)
    if not predicted and not reference:
        return PairScore(1.0, 1.0, 1.0, 0)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(reference) if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return PairScore(precision, recall, f1, hits)
