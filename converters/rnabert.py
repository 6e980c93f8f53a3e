"""RNABERT (mana438/RNABERT): `rnabert`.

Container:
    `torch.save(state_dict)` of `torch.nn.DataParallel(BertForMaskedLM)`: every key starts with `module.`, layer
    norms are `gamma` / `beta`. No config is stored: sizes come from the tensors, the number of attention heads
    is the published 12 unless --model.num_attention_heads says otherwise.
Heads:
    the masked-LM head (dense -> layer norm, no activation; an untied decoder and its own bias), the 8-class
    per-nucleotide structure head of the same shape (`cls.predictions_ss`), the pooler and the
    sequence-relationship head: all held by `RnaBertForPreTraining`.
Vocabulary:
    `PAD MASK A U G C`, no special tokens around a sequence and no `<unk>`: tokens upstream lacks take a zero
    embedding (upstream's loader drops sequences holding them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError
from multimolecule.convert.keymap import KeyMap
from multimolecule.models.rnabert import RnaBertConfig, RnaBertForPreTraining

from .bert_layout import bert_rules, head_rules, shapes

KEY_MAP = KeyMap(
    [
        *bert_rules(),
        *head_rules(r"cls\.predictions_ss", "ss_head"),
        (r"cls\.seq_relationship\.(weight|bias)", r"seq_relationship.\1"),
    ]
)
VOCABULARY = ["PAD", "MASK", "A", "U", "G", "C"]
_SHAPES = {
    "word": "bert.embeddings.word_embeddings.weight",
    "position": "bert.embeddings.position_embeddings.weight",
    "token_type": "bert.embeddings.token_type_embeddings.weight",
    "intermediate": "bert.encoder.layer.0.intermediate.dense.weight",
}
PARITY = {
    **MASKED_LM_PARITY,
    "hidden_states": ("hidden_states", "layers"),
    "ss_logits": ("ss_logits", "tokens"),
    "pooler_output": ("pooler_output", "sequences"),
    "seq_relationship_logits": ("seq_relationship_logits", "sequences"),
}


class RnaBertConverter(Converter):
    family = "rnabert"
    config_class = RnaBertConfig
    key_map = KEY_MAP

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if not all(isinstance(value, torch.Tensor) for value in content.values()):
            raise CheckpointError(f"{path} is not a state dict of tensors (RNABERT's DataParallel state dict)")
        return {str(key).removeprefix("module."): value for key, value in content.items()}, {}

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        return {
            **shapes(state, _SHAPES, r"bert\.encoder\.layer\.(\d+)\."),
            "ss_size": state["cls.predictions_ss.decoder.weight"].shape[0],
        }

    def fixture_overrides(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {"num_attention_heads": meta["hyperparameters"]["num_attention_heads"]}


VARIANTS = {
    "rnabert": RnaBertConverter(
        "rnabert",
        RnaBertForPreTraining,
        VOCABULARY,
        {"add_cls": False, "add_eos": False},
        parity=PARITY,
        sample_sequences=("GGGUGCGAUCAUACCAGCACUAAUGCCCUCCUGGGAAGUCCUCGUG", "UAGCUUAUCAGACUGAUGUUGA", "ACGUACGU"),
    )
}
