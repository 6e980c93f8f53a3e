"""Batching for contact (nucleotide-pair) labels, which transformers' collators do not pad."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from .modules.criterion import IGNORE_INDEX


@dataclass
class DataCollatorForContactPrediction:
    """Pads the inputs with the tokenizer and each example's `labels` to (length, length) with -100, then flattens
    them to (batch, length * length), the layout of `...ForContactPrediction` logits: Trainer pads and concatenates
    batches of different lengths along that one dimension.

    An example's labels are (tokens, tokens), aligned with its `input_ids`, or (n, n) for its n nucleotides, which
    are then placed at the nucleotide positions (special tokens get -100).
    """

    tokenizer: PreTrainedTokenizerBase
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        labels = [torch.as_tensor(feature.pop("labels")) for feature in features] if "labels" in features[0] else None
        batch = self.tokenizer.pad(features, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt")
        if labels is None:
            return dict(batch)
        length = batch["input_ids"].shape[1]
        padded = torch.full((len(labels), length, length), IGNORE_INDEX, dtype=labels[0].dtype)
        for row, (label, feature) in enumerate(zip(labels, features, strict=True)):
            ids = feature["input_ids"]
            special = torch.tensor(self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True))
            positions = self._positions(label, len(ids), (special == 0).nonzero().squeeze(-1), row)
            offset = (length - len(ids)) if self.tokenizer.padding_side == "left" else 0
            positions = positions + offset
            padded[row][positions.unsqueeze(-1), positions.unsqueeze(0)] = label
        batch["labels"] = padded.flatten(1)
        return dict(batch)

    @staticmethod
    def _positions(label: torch.Tensor, tokens: int, nucleotides: torch.Tensor, row: int) -> torch.Tensor:
        size = label.shape[0]
        if label.dim() != 2 or label.shape[1] != size or size not in (tokens, len(nucleotides)):
            raise ValueError(
                f"example {row}: contact labels have shape {tuple(label.shape)}; expected ({tokens}, {tokens}) "
                f"(one per token pair) or ({len(nucleotides)}, {len(nucleotides)}) (one per nucleotide pair)"
            )
        return torch.arange(tokens) if size == tokens else nucleotides
