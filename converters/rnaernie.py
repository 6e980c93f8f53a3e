"""RNAErnie (CatIIIIIIII/RNAErnie): `rnaernie`.

Container:
    a PaddleNLP 2.4 directory: `model_state.pdparams` (a pickle of numpy arrays; no Paddle needed) and
    `model_config.json` (`init_args[0]`: ErnieModel's arguments). The catalogue's sha256 covers the weights file;
    the published config omits `intermediate_size`, so PaddleNLP's default (3072) applies.
Layout:
    Paddle stores every Linear weight as `[in, out]`: each one is transposed, the square q / k / v / out, pooler
    and head transforms included (no shape check could tell those apart). Embeddings and the decoder weight are
    `[vocab, hidden]` and are not.
Dropped:
    `StructuredToParameterName@@` (Paddle's table of internal parameter names).
Vocabulary:
    39 tokens: `[PAD] [UNK] [CLS] [SEP] [MASK] [DEL] [IND]`, 28 RNA-class tokens used by the type-guided
    pre-training, then `A T C G`. The class tokens, `[DEL]` and `[IND]` are not kept (the card says so); `T` is
    read as `U`; upstream's tokenizer sends every other character to `[UNK]`, whose row the tokens it lacks take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError, ConversionError
from multimolecule.convert.keymap import KeyMap, transpose
from multimolecule.models.rnaernie import RnaErnieConfig, RnaErnieForMaskedLM

from .bert_layout import CONFIG_NAMES, check_against, shapes

_LAYER, _OURS = r"ernie\.encoder\.layers\.(\d+)\.", r"model.encoder.layers.\1."
KEY_MAP = KeyMap(
    [
        (r"ernie\.embeddings\.(word|position|token_type)_embeddings\.weight", r"model.embeddings.\1_embeddings.weight"),
        (r"ernie\.embeddings\.layer_norm\.(weight|bias)", r"model.embeddings.layer_norm.\1"),
        (_LAYER + r"self_attn\.([qkv]|out)_proj\.weight", _OURS + r"attention.\2_proj.weight", transpose),
        (_LAYER + r"self_attn\.([qkv]|out)_proj\.bias", _OURS + r"attention.\2_proj.bias"),
        (_LAYER + r"linear1\.weight", _OURS + "ffn.fc1.weight", transpose),
        (_LAYER + r"linear2\.weight", _OURS + "ffn.fc2.weight", transpose),
        (_LAYER + r"linear1\.bias", _OURS + "ffn.fc1.bias"),
        (_LAYER + r"linear2\.bias", _OURS + "ffn.fc2.bias"),
        (_LAYER + r"norm1\.(weight|bias)", _OURS + r"attention_norm.\2"),
        (_LAYER + r"norm2\.(weight|bias)", _OURS + r"ffn_norm.\2"),
        (r"ernie\.pooler\.dense\.weight", "model.pooler.dense.weight", transpose),
        (r"ernie\.pooler\.dense\.bias", "model.pooler.dense.bias"),
        (r"cls\.predictions\.transform\.weight", "lm_head.dense.weight", transpose),
        (r"cls\.predictions\.transform\.bias", "lm_head.dense.bias"),
        (r"cls\.predictions\.layer_norm\.(weight|bias)", r"lm_head.layer_norm.\1"),
        # PaddleNLP 2.4 names the decoder `decoder_weight` / `decoder_bias`; later versions `decoder.weight` / `.bias`
        (r"cls\.predictions\.decoder[_.](weight|bias)", r"lm_head.decoder.\1"),
    ],
    dropped={r"StructuredToParameterName@@": "Paddle's table of its internal parameter names"},
)
VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEL]", "[IND]",
    "RNaseMRPRNA", "RNasePRNA", "SRPRNA", "YRNA", "antisenseRNA", "autocatalyticallysplicedintron", "guideRNA",
    "hammerheadribozyme", "lncRNA", "miRNA", "miscRNA", "ncRNA", "other", "piRNA", "premiRNA", "precursorRNA",
    "rRNA", "ribozyme", "sRNA", "scRNA", "scaRNA", "siRNA", "snRNA", "snoRNA", "tRNA", "telomeraseRNA", "tmRNA",
    "vaultRNA", "A", "T", "C", "G",
]  # fmt: skip
_SHAPES = {
    "word": "ernie.embeddings.word_embeddings.weight",
    "position": "ernie.embeddings.position_embeddings.weight",
    "token_type": "ernie.embeddings.token_type_embeddings.weight",
    "intermediate": "ernie.encoder.layers.0.linear1.weight",
}


class RnaErnieConverter(Converter):
    family = "rnaernie"
    config_class = RnaErnieConfig
    key_map = KEY_MAP
    weights_name = "model_state.pdparams"
    config_name = "model_config.json"

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        state = {}
        for key, value in content.items():
            if isinstance(value, np.ndarray):
                if value.dtype.kind not in "fiub":
                    raise CheckpointError(f"{path}: {key} holds a numpy array of dtype {value.dtype}, not numbers")
                state[str(key)] = torch.from_numpy(np.ascontiguousarray(value))
            else:  # the name table, dropped by the key map; anything else it reports
                state[str(key)] = value
        return state, {}

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        derived = shapes(state, _SHAPES, _LAYER, in_out=True)
        init_args = metadata.get("config", {}).get("init_args", [{}])
        if not isinstance(init_args, list) or not init_args or not isinstance(init_args[0], dict):
            raise ConversionError("model_config.json: init_args is not a list holding ErnieModel's arguments")
        stored = init_args[0]
        if stored.get("pad_token_id", 0) != 0:
            raise ConversionError(f"model_config.json has pad_token_id={stored['pad_token_id']}; RNAErnie pads with 0")
        return {**derived, **check_against(derived, stored, CONFIG_NAMES, "model_config.json")}


VARIANTS = {
    "rnaernie": RnaErnieConverter(
        "rnaernie",
        RnaErnieForMaskedLM,
        VOCABULARY,
        parity={**MASKED_LM_PARITY, "pooler_output": ("pooler_output", "sequences")},
    )
}
