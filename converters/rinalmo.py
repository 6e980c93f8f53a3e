"""RiNALMo (lbcb-sci/RiNALMo): `rinalmo-giga`, `rinalmo-mega`, `rinalmo-micro` and `rinalmo-giga-ss`.

Containers:
    rinalmo-*       `torch.save(state_dict)` of rinalmo.model.RiNALMo: embedding, transformer.blocks.N.*,
                    transformer.final_layer_norm, lm_mask_head.*.
    rinalmo-giga-ss `torch.save` of SecStructPredictionWrapper.state_dict(): the model above under `lm.`, the head
                    under `pred_head.`, and `threshold` (a float: the tuned probability cut-off, kept as
                    `pair_threshold` in the config).
    Neither stores hyperparameters nor, as flash-attn's rotary buffer is not persistent, a rotary table: the number
    of heads (20 in every release) is not in the file and is the published default unless --model.num_attention_heads.
Layout:
    `mh_attn.Wqkv.weight` is q | k | v stacked along the rows (each head-major): split into our three projections.
    The transition block is SwiGLU (`linear` is the swish branch, `linear_gate` the multiplier, a learned `beta`)
    followed by the down projection `transition.2`. The head's three bias-free convolutions sit at `conv_net.0`, `.3`
    and `.6` (the InstanceNorm / ReLU modules between them have no parameters).
Vocabulary:
    rinalmo.data.alphabet: <cls> <pad> <eos> <unk> <mask> A C G T I R Y K M S W B D H V N -. `T` is our `U`; our tokens
    upstream lacks (`.`, `X`, `*`) take its <unk> row, which upstream's tokenizer gives unknown characters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError
from multimolecule.convert.keymap import KeyMap, split
from multimolecule.models.rinalmo import RiNALMoConfig, RiNALMoForMaskedLM, RiNALMoForSecondaryStructurePrediction

from ._esm import ROTARY_DROPPED, rotary_head_dim

_BLOCK = r"transformer\.blocks\.(\d+)\."
_LAYER = r"model.encoder.layers.\1."
_ROTARY = _BLOCK.replace("(\\d+)", "\\d+") + r"mh_attn\.rotary_emb\.inv_freq"
_CONV = r"pred_head\.resnet\.blocks\.(\d+)\.conv_net\."

KEY_MAP = KeyMap(
    [
        (r"embedding\.weight", "model.embeddings.word_embeddings.weight"),
        (
            _BLOCK + r"mh_attn\.Wqkv\.weight",
            (
                _LAYER + "attention.q_proj.weight",
                _LAYER + "attention.k_proj.weight",
                _LAYER + "attention.v_proj.weight",
            ),
            split(3),
        ),
        (_BLOCK + r"mh_attn\.out_proj\.weight", _LAYER + "attention.out_proj.weight"),
        (_BLOCK + r"attn_layer_norm\.(weight|bias)", _LAYER + r"attention_norm.\2"),
        (_BLOCK + r"out_layer_norm\.(weight|bias)", _LAYER + r"ffn_norm.\2"),
        (_BLOCK + r"transition\.0\.linear\.(weight|bias)", _LAYER + r"ffn.fc1.\2"),
        (_BLOCK + r"transition\.0\.linear_gate\.(weight|bias)", _LAYER + r"ffn.gate.\2"),
        (_BLOCK + r"transition\.0\.beta", _LAYER + "ffn.beta"),
        (_BLOCK + r"transition\.2\.(weight|bias)", _LAYER + r"ffn.fc2.\2"),
        (r"transformer\.final_layer_norm\.(weight|bias)", r"model.encoder.final_norm.\1"),
        (r"lm_mask_head\.linear1\.(weight|bias)", r"lm_head.dense.\1"),
        (r"lm_mask_head\.layer_norm\.(weight|bias)", r"lm_head.layer_norm.\1"),
        (r"lm_mask_head\.linear2\.(weight|bias)", r"lm_head.decoder.\1"),
        (r"pred_head\.linear_in\.(weight|bias)", r"ss_head.linear_in.\1"),
        (_CONV + r"0\.weight", r"ss_head.blocks.\1.convs.0.weight"),
        (_CONV + r"3\.weight", r"ss_head.blocks.\1.convs.1.weight"),
        (_CONV + r"6\.weight", r"ss_head.blocks.\1.convs.2.weight"),
        (r"pred_head\.conv_out\.(weight|bias)", r"ss_head.conv_out.\1"),
    ],
    dropped={_ROTARY: ROTARY_DROPPED},
)

VOCABULARY = ["<cls>", "<pad>", "<eos>", "<unk>", "<mask>", *"ACGTIRYKMSWBDHVN-"]


class RiNALMoConverter(Converter):
    family = "rinalmo"
    config_class = RiNALMoConfig
    key_map = KEY_MAP

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        threshold = content.get("threshold")
        tensors = {str(key): value for key, value in content.items() if key != "threshold"}
        if not tensors or not all(isinstance(value, torch.Tensor) for value in tensors.values()):
            raise CheckpointError(
                f"{path} is not a RiNALMo state dict (a dict of tensors, and a float 'threshold' for the "
                f"secondary-structure model); its top-level keys are {sorted(map(str, content))[:10]}"
            )
        if threshold is not None and not isinstance(threshold, float):
            raise CheckpointError(f"{path}: 'threshold' is a {type(threshold).__name__}, expected a float")
        state = {key.removeprefix("lm."): value for key, value in tensors.items()}
        return state, {"threshold": threshold}

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        blocks = {int(match.group(1)) for key in state if (match := re.match(_BLOCK, key))}
        config = {
            "hidden_size": state["embedding.weight"].shape[1],
            "num_hidden_layers": len(blocks),
            "intermediate_size": state["transformer.blocks.0.transition.0.linear.weight"].shape[0],
        }
        head_dim = rotary_head_dim(state, _ROTARY)
        if head_dim is not None:  # only the non-flash code saves the table
            config["num_attention_heads"] = config["hidden_size"] // head_dim
        if "pred_head.linear_in.weight" in state:
            config["ss_hidden_size"] = state["pred_head.linear_in.weight"].shape[0]
            config["ss_num_layers"] = len({int(m.group(1)) for key in state if (m := re.match(_CONV, key))})
            config["ss_kernel_size"] = state["pred_head.conv_out.weight"].shape[-1]
        if metadata["threshold"] is not None:
            config["pair_threshold"] = metadata["threshold"]
        return config

    def fixture_overrides(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {"num_attention_heads": meta["hyperparameters"]["model.transformer.num_heads"]}


SS_PARITY = {**MASKED_LM_PARITY, "logits": ("lm_logits", "vocabulary"), "ss_logits": ("logits", "pairs")}

VARIANTS = {
    **{
        name: RiNALMoConverter(name, RiNALMoForMaskedLM, VOCABULARY, golden_cases=("rinalmo",))
        for name in ("rinalmo-giga", "rinalmo-mega", "rinalmo-micro")
    },
    "rinalmo-giga-ss": RiNALMoConverter(
        "rinalmo-giga-ss",
        RiNALMoForSecondaryStructurePrediction,
        VOCABULARY,
        golden_cases=("rinalmo-ss",),
        parity=SS_PARITY,
    ),
}
