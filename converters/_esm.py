"""What the fairseq / ESM-style releases (RNA-FM, UTR-LM, CaLM) share: their layer names and sizes, and the
rotary frequency tables some of them save.

Not a family (it is not in `FAMILIES`): the family converters import it.
"""

from __future__ import annotations

import re

import torch

from multimolecule.convert.engine import tensor_size
from multimolecule.convert.errors import ConversionError

# fairseq / ESM names of the encoder, the RoBERTa masked-LM head and the contact regression -> ours
ESM_RULES = [
    (r"embed_tokens\.weight", "model.embeddings.word_embeddings.weight"),
    (
        r"layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)",
        r"model.encoder.layers.\1.attention.\2.\3",
    ),
    (r"layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"model.encoder.layers.\1.attention_norm.\2"),
    (r"layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"model.encoder.layers.\1.ffn.\2.\3"),
    (r"layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"model.encoder.layers.\1.ffn_norm.\2"),
    (r"emb_layer_norm_after\.(weight|bias)", r"model.encoder.final_norm.\1"),
    (r"lm_head\.(dense|layer_norm)\.(weight|bias)", r"lm_head.\1.\2"),
    (r"lm_head\.(weight|bias)", r"lm_head.decoder.\1"),
    (r"contact_head\.regression\.(weight|bias)", r"contact_head.regression.\1"),
]
ROTARY_DROPPED = "the rotary frequencies 1/base^(2i/head_dim); checked equal to that table, then recomputed on the fly"


def esm_sizes(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """hidden_size, num_hidden_layers and intermediate_size from an ESM-style state dict's shapes."""
    layers = {int(match.group(1)) for key in state if (match := re.match(r"layers\.(\d+)\.", key))}
    return {
        "hidden_size": tensor_size(state, "embed_tokens.weight", 1),
        "num_hidden_layers": len(layers),
        "intermediate_size": tensor_size(state, "layers.0.fc1.weight", 0),
    }


def rotary_head_dim(state: dict[str, torch.Tensor], pattern: str, base: float = 10000.0) -> int | None:
    """The head size told by the saved rotary frequency tables (keys matching `pattern`), each checked to be
    the standard table 1/base^(2i/head_dim) that the model recomputes; None when the file saves none."""
    tables = {key: tensor for key, tensor in state.items() if re.fullmatch(pattern, key)}
    if not tables:
        return None
    head_dim = 2 * next(iter(tables.values())).shape[-1]
    expected = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    for key, table in tables.items():
        if table.shape != expected.shape or not torch.allclose(table.float(), expected, rtol=1e-6, atol=0):
            raise ConversionError(
                f"{key} is not the rotary table 1/{base:g}^(2i/{head_dim}) the model computes; "
                "this checkpoint uses rotary frequencies MultiMolecule does not reproduce"
            )
    return head_dim
