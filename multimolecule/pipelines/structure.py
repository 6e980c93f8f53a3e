"""`pipeline("rna-secondary-structure", model=...)`: sequences in; pairing probabilities, base pairs and
dot-bracket out."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline

from ..io.dotbracket import to_dot_bracket
from .pairing import pairs_from_probabilities, release_threshold
from .release import pair_probabilities


class RnaSecondaryStructurePipeline(Pipeline):
    """Secondary structure of RNA sequences from any model with a structure head.

    A structure head is any model whose output has `logits` (batch, n, n) and `mask` of that shape
    (`RnaFmForSecondaryStructurePrediction`: `rnafm-ss`). Options, at creation or per call:

    - `threshold`: probability above which a pair is called; default: the release's (`config.pair_threshold`,
      written at conversion from the catalogue, e.g. 0.47729617 for `rnafm-ss`).
    - `min_loop`: the fewest unpaired bases a pair must enclose (default 0: no constraint).
    - `contacts=True`: use the attention-map contact regression of a masked-LM checkpoint
      (`config.attention_contact_head`, `return_contacts=True`) instead of a structure head. These are
      contact probabilities, not trained base pairs, and no release tuned a threshold for them, so
      `threshold` must then be given.

    Each base pairs at most once: conflicting pairs are resolved greedily by probability (see
    `pairs_from_probabilities`). Returns, per sequence, a dict with `sequence`, `probabilities` (n, n float
    tensor), `pairs` (0-based (i, j), i < j), `dot_bracket` (pseudoknots in `[]`, `{}`, `<>`) and `threshold`.
    """

    _load_tokenizer = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_processor = False

    def _sanitize_parameters(self, threshold=None, min_loop=None, contacts=None, **kwargs):
        forward, post = {}, {}
        if contacts is not None:
            forward["contacts"] = post["contacts"] = bool(contacts)
        if threshold is not None:
            post["threshold"] = float(threshold)
        if min_loop is not None:
            post["min_loop"] = int(min_loop)
        return {}, forward, post

    def preprocess(self, sequence: str) -> dict[str, Any]:
        if not isinstance(sequence, str) or not sequence.strip():
            raise ValueError(f"expected a non-empty sequence, got {sequence!r}")
        inputs = self.tokenizer(sequence, return_tensors="pt")
        return {"sequence": sequence, **inputs}

    def _forward(self, inputs: dict[str, Any], contacts: bool = False) -> dict[str, Any]:
        sequence = inputs.pop("sequence")
        tensors = {key: inputs[key] for key in ("input_ids", "attention_mask")}
        maps, _ = pair_probabilities(self.model, tensors, contacts=contacts)
        return {"sequence": sequence, "probabilities": maps[0]}

    def postprocess(
        self, outputs: dict[str, Any], threshold: float | None = None, min_loop: int = 0, contacts: bool = False
    ) -> dict[str, Any]:
        if threshold is None:
            if contacts:
                raise ValueError("contacts=True: no release tuned a threshold for attention contacts; pass threshold=")
            threshold = release_threshold(self.model.config)
        probabilities: torch.Tensor = outputs["probabilities"].cpu()
        pairs = pairs_from_probabilities(probabilities, threshold, min_loop)
        return {
            "sequence": outputs["sequence"],
            "probabilities": probabilities,
            "pairs": pairs,
            "dot_bracket": to_dot_bracket(pairs, probabilities.shape[0]),
            "threshold": threshold,
        }
