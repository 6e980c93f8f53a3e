"""SpliceBERT (chenkenbio/SpliceBERT): `splicebert`, `splicebert.510`, `splicebert-human.510`.

Container:
    a Hugging Face BERT directory (`config.json`, `pytorch_model.bin`, `vocab.txt`, tokenizer files) per variant,
    all three in one Zenodo archive. `--checkpoint` takes the directory or its `pytorch_model.bin`; the catalogue's
    sha256 covers `pytorch_model.bin`. Hyperparameters come from `config.json` when it is beside the weights, else
    from the tensor shapes and the published defaults (16 heads) plus --model.<field>.
Dropped:
    `bert.embeddings.position_ids` (a buffer older transformers saved) and `cls.predictions.decoder.bias` (the
    same parameter as `cls.predictions.bias`).
Vocabulary:
    `[PAD] [UNK] [CLS] [SEP] [MASK] N A C G T`: read as `<pad> <unk> <cls> <eos> <mask> N A C G U`. Upstream
    upper-cases and writes U as T before tokenising; ours reads T and U alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError
from multimolecule.convert.keymap import KeyMap
from multimolecule.models.splicebert import SpliceBertConfig, SpliceBertForMaskedLM

from .bert_layout import CONFIG_NAMES, bert_rules, check_against, shapes

KEY_MAP = KeyMap(
    bert_rules(),
    dropped={
        r"bert\.embeddings\.position_ids": "a buffer of position indices (0, 1, 2, ...), recomputed by the model",
        r"cls\.predictions\.decoder\.bias": "the same parameter as cls.predictions.bias",
    },
)
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "N", "A", "C", "G", "T"]
_SHAPES = {
    "word": "bert.embeddings.word_embeddings.weight",
    "position": "bert.embeddings.position_embeddings.weight",
    "token_type": "bert.embeddings.token_type_embeddings.weight",
    "intermediate": "bert.encoder.layer.0.intermediate.dense.weight",
}


class SpliceBertConverter(Converter):
    family = "splicebert"
    config_class = SpliceBertConfig
    key_map = KEY_MAP
    weights_name = "pytorch_model.bin"
    config_name = "config.json"

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if not all(isinstance(value, torch.Tensor) for value in content.values()):
            raise CheckpointError(f"{path} is not a state dict of tensors (a BERT pytorch_model.bin)")
        return {str(key): value for key, value in content.items()}, {}

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        derived = shapes(state, _SHAPES, r"bert\.encoder\.layer\.(\d+)\.")
        stored = metadata.get("config", {})
        if stored.get("position_embedding_type", "absolute") != "absolute":
            raise CheckpointError(f"config.json has position_embedding_type={stored['position_embedding_type']!r}")
        return {**derived, **check_against(derived, stored, CONFIG_NAMES, "config.json")}


VARIANTS = {
    variant: SpliceBertConverter(
        variant,
        SpliceBertForMaskedLM,
        VOCABULARY,
        golden_cases=("splicebert",),
        parity={**MASKED_LM_PARITY, "hidden_states": ("hidden_states", "layers")},
    )
    for variant in ("splicebert", "splicebert.510", "splicebert-human.510")
}
