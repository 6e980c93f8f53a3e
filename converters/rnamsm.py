"""RNA-MSM (yikunpku/RNA-MSM): `rnamsm`.

Container:
    a pytorch-lightning checkpoint: the model's state dict, unprefixed, under 'state_dict'; 'hyper_parameters'
    holds dataclass objects of the authors' inference script (`__main__.DataConfig`,
    `__main__.MSATransformerModelConfig`, ...). Those names, and only those, unpickle as inert placeholders
    that keep the attributes the file gives them (`SCRIPT_CLASSES`); the number of attention heads is read from
    `MSATransformerModelConfig` and checked against the contact regression's width (layers x heads). Optimizer and
    scheduler states are training state and are ignored.
Vocabulary:
    the ESM alphabet of `msm.data`: <cls> <pad> <eos> <unk> A G C U X N - <mask>. Upstream reads every IUPAC
    ambiguity code (N included) as X, so our N, R, Y, ... take its X row; its own N row is never trained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import Converter
from multimolecule.convert.errors import CheckpointError, ConversionError
from multimolecule.convert.keymap import KeyMap
from multimolecule.io.alignment import AMBIGUITY_CODES
from multimolecule.models.rnamsm import RnaMsmConfig, RnaMsmForMaskedLM
from multimolecule.tokenisers import RnaTokenizer

from ._esm import ESM_RULES


class ScriptConfig:
    """Stands in for a dataclass of the authors' script: an empty object that takes the attributes the file
    sets (pickle BUILD with a dict). It has no methods and runs nothing."""


# The classes the release pickles from the script's __main__, each its own placeholder type
SCRIPT_CLASSES: dict[str, type[ScriptConfig]] = {
    f"__main__.{name}": type(name, (ScriptConfig,), {"__module__": __name__})
    for name in ("DataConfig", "MSATransformerModelConfig", "OptimizerConfig", "TrainConfig", "LoggingConfig")
}
MODEL_CONFIG = SCRIPT_CLASSES["__main__.MSATransformerModelConfig"]


def _row_scalars(tensor: torch.Tensor) -> torch.Tensor:
    """msa_position_embedding (1, rows, 1, 1), one scalar per alignment row -> (rows,)."""
    if tensor.dim() != 4 or tensor.shape[0] != 1 or tensor.shape[2:] != (1, 1):
        raise ValueError(f"expected shape (1, rows, 1, 1), got {tuple(tensor.shape)}")
    return tensor.reshape(-1).contiguous()


_LAYER = r"layers\.(\d+)\."
KEY_MAP = KeyMap(
    [
        *ESM_RULES,
        (r"embed_positions\.weight", "model.embeddings.position_embeddings.weight"),
        (r"msa_position_embedding", "model.embeddings.row_embeddings", _row_scalars),
        (r"emb_layer_norm_before\.(weight|bias)", r"model.embeddings.layer_norm.\1"),
        (_LAYER + r"row_self_attention\.layer\.(\w+_proj)\.(weight|bias)", r"model.encoder.layers.\1.attention.\2.\3"),
        (_LAYER + r"row_self_attention\.layer_norm\.(weight|bias)", r"model.encoder.layers.\1.attention_norm.\2"),
        (
            _LAYER + r"column_self_attention\.layer\.(\w+_proj)\.(weight|bias)",
            r"model.encoder.layers.\1.column_attention.\2.\3",
        ),
        (
            _LAYER + r"column_self_attention\.layer_norm\.(weight|bias)",
            r"model.encoder.layers.\1.column_attention_norm.\2",
        ),
        (_LAYER + r"feed_forward_layer\.layer\.(fc1|fc2)\.(weight|bias)", r"model.encoder.layers.\1.ffn.\2.\3"),
        (_LAYER + r"feed_forward_layer\.layer_norm\.(weight|bias)", r"model.encoder.layers.\1.ffn_norm.\2"),
    ]
)

VOCABULARY = ["<cls>", "<pad>", "<eos>", "<unk>", "A", "G", "C", "U", "X", "N", "-", "<mask>"]
# upstream's MSA reader turns every IUPAC ambiguity code into X
IUPAC_AS_X = dict.fromkeys(AMBIGUITY_CODES, "X")
# our model gives each alignment of a batch its unbatched output: compared with upstream's unbatched outputs
PARITY = {
    "single_last_hidden_state": ("last_hidden_state", "tokens"),
    "single_logits": ("logits", "vocabulary"),
    "single_contacts": ("contacts", "pairs"),
}


class RnaMsmConverter(Converter):
    family = "rnamsm"
    config_class = RnaMsmConfig
    key_map = KEY_MAP
    extra_globals = SCRIPT_CLASSES

    def tokenizer(self, config: RnaMsmConfig) -> RnaTokenizer:
        """`<cls>` on every row, no `<eos>`, at most as many rows as the row embedding has."""
        return RnaTokenizer(
            model_max_length=config.max_position_embeddings,
            max_alignment_rows=config.max_alignment_rows,
            **self.tokenizer_kwargs,
        )

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        state = content.get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(
                f"{path} is not a pytorch-lightning checkpoint with a 'state_dict'; its top-level keys are "
                f"{sorted(map(str, content))[:10]}"
            )
        hyperparameters = content.get("hyper_parameters")
        return dict(state), {"hyper_parameters": hyperparameters if isinstance(hyperparameters, dict) else {}}

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        layers = len({int(m.group(1)) for key in state if (m := re.match(_LAYER, key))})
        config = {
            "hidden_size": state["embed_tokens.weight"].shape[1],
            "num_hidden_layers": layers,
            "intermediate_size": state["layers.0.feed_forward_layer.layer.fc1.weight"].shape[0],
            "max_position_embeddings": state["embed_positions.weight"].shape[0] - RnaMsmConfig.position_offset,
            "max_alignment_rows": state["msa_position_embedding"].shape[1],
        }
        features = state["contact_head.regression.weight"].shape[1]  # layers x heads
        heads = features // layers if layers and features % layers == 0 else None
        model = metadata["hyper_parameters"].get("model")
        if model is not None:
            if not isinstance(model, MODEL_CONFIG):
                raise ConversionError(
                    f"the checkpoint's hyper_parameters['model'] is a {type(model).__name__}, not the script's "
                    "MSATransformerModelConfig"
                )
            stored = {"num_attention_heads": heads, "embed_dim": config["hidden_size"], "num_layers": layers}
            for name, expected in stored.items():
                value = getattr(model, name, None)
                if not isinstance(value, int) or value != expected:
                    raise ConversionError(
                        f"the checkpoint's MSATransformerModelConfig says {name}={value!r} but its tensors say "
                        f"{expected} (the contact regression has {features} = layers x heads inputs)"
                    )
        if heads is None:
            raise ConversionError(
                f"the contact regression has {features} inputs, not a multiple of the {layers} layers (layers x heads)"
            )
        config["num_attention_heads"] = heads
        return config


VARIANTS = {
    "rnamsm": RnaMsmConverter(
        "rnamsm",
        RnaMsmForMaskedLM,
        VOCABULARY,
        {"add_eos": False},
        token_rows=IUPAC_AS_X,
        parity=PARITY,
    ),
}
