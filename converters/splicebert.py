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
import transformers

from multimolecule.convert.checkpoint import load_checkpoint
from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError
from multimolecule.convert.keymap import KeyMap
from multimolecule.convert.validate import Reference
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

    def reference(self, path: Path, sequences: list[str], config: SpliceBertConfig) -> Reference | None:
        """SpliceBERT's original implementation is transformers' `BertForMaskedLM`: run it on the same weights,
        with upstream's preprocessing (upper case, U written as T, one token per base, [CLS] ... [SEP])."""
        from transformers import BertConfig, BertForMaskedLM

        weights, _ = self.locate(path)
        bert = BertConfig(
            vocab_size=len(VOCABULARY),
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            hidden_act=config.hidden_act,
            layer_norm_eps=config.layer_norm_eps,
        )
        model = BertForMaskedLM(bert).eval()
        state = {k: v for k, v in load_checkpoint(weights).items() if k != "bert.embeddings.position_ids"}
        model.load_state_dict(state, strict=True)
        index = {token: row for row, token in enumerate(VOCABULARY)}
        rows = [[2, *(index.get(base, 1) for base in sequence.upper().replace("U", "T")), 3] for sequence in sequences]
        width = max(map(len, rows))
        input_ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
        attention_mask = input_ids.ne(0).long()
        with torch.no_grad():
            output = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        tensors = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "last_hidden_state": output.hidden_states[-1],
            "logits": output.logits,
        }
        return Reference(f"transformers {transformers.__version__} BertForMaskedLM (run live)", tensors, VOCABULARY)


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
