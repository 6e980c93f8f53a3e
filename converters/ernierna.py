"""ERNIE-RNA (Bruce-ywj/ERNIE-RNA): `ernierna` and `ernierna-ss`.

Containers:
    ernierna     fairseq 0.12 checkpoint {'args': None, 'cfg': {'model': Namespace, ...}, 'model': state dict,
                 ...}: weights under 'encoder.' (the encoder's own under 'encoder.sentence_encoder.'),
                 hyperparameters in cfg['model'], checked against the shapes; the rest is training state.
    ernierna-ss  state dict of upstream's `ChooseModel` saved through DataParallel: 'module.sentence_encoder.'
                 holds the fine-tuned encoder (the pre-trained layout above), 'module.conv1/conv2/proj.' the
                 head. No config: the head count comes from the pair-prior projection (one output per head),
                 the head's depth from its keys. Upstream also loads the pre-trained file, only to build the
                 architecture, so it is not needed here.
Vocabulary:
    fairseq dictionary: <s> <pad> </s> <unk> G A U C N Y R S K W M D H V B X I, three `madeupword` fillers,
    <mask>. Every upstream script tokenises by hand (A, C, G, U/T; any other character <unk>), so our `N` and
    the other IUPAC codes take the `<unk>` row, not the dictionary's row of that letter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError, ConversionError
from multimolecule.convert.keymap import KeyMap
from multimolecule.models.ernierna import (
    ErnieRnaConfig,
    ErnieRnaForMaskedLM,
    ErnieRnaForSecondaryStructurePrediction,
)

from ._esm import ESM_RULES

_HEAD = r"proj\.resnet\.(\d+)\."

KEY_MAP = KeyMap(
    [
        (
            r"embed_tokens\.weight",
            ("model.embeddings.word_embeddings.weight", "lm_head.decoder.weight"),
            lambda tensor: (tensor, tensor),  # the decoder is the embedding (share_encoder_input_output_embed)
        ),
        *ESM_RULES,  # the layers under fairseq's names (the embedding rule above comes first)
        (r"emb_layer_norm\.(weight|bias)", r"model.embeddings.layer_norm.\1"),
        (r"masked_lm_pooler\.(weight|bias)", r"model.pooler.dense.\1"),
        (r"twod_proj\.linear1\.(weight|bias)", r"model.pair_bias.fc1.\1"),
        (r"twod_proj\.linear2\.(weight|bias)", r"model.pair_bias.fc2.\1"),
        (r"lm_head_transform_weight\.(weight|bias)", r"lm_head.dense.\1"),
        (r"layer_norm\.(weight|bias)", r"lm_head.layer_norm.\1"),
        (r"lm_output_learned_bias", "lm_head.decoder.bias"),
        (r"conv(1|2)\.(weight|bias)", r"ss_head.conv\1.\2"),
        (_HEAD + r"(bn1\.\w+|conv1\.weight|conv2\.weight)", r"ss_head.blocks.\1.\2"),
        (r"proj\.final\.(weight|bias)", r"ss_head.final.\1"),
    ],
    dropped={
        r"embed_positions\._float_tensor": "fairseq's placeholder for the sinusoidal table's device and dtype; the "
        "table is computed on the fly",
        r"segment_embeddings\.weight": "the segment (token-type) table; upstream never passes segment labels, so it "
        "is never added",
        r"sentence_projection_layer\.weight": "the sentence-classification projection of fairseq's masked-LM encoder "
        "(sent_loss); no upstream objective or script uses it",
    },
)

VOCABULARY = [
    "<s>", "<pad>", "</s>", "<unk>", *"GAUCNYRSKWMDHVBXI", "madeupword0000", "madeupword0001", "madeupword0002",
    "<mask>",
]  # fmt: skip
# what upstream's hand-written tokenisation sends to <unk>: every letter but A, C, G, U (T is read as U)
UNKNOWN_LETTERS = {letter: "<unk>" for letter in "NYRSKWMDHVBXI"}

# fairseq argument -> our config field, checked against the tensor shapes
_ARGS = {
    "encoder_layers": "num_hidden_layers",
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "encoder_attention_heads": "num_attention_heads",
}
# fairseq arguments the port reproduces only at these values
_SUPPORTED = {
    "activation_fn": "gelu",
    "pooler_activation_fn": "tanh",
    "encoder_learned_pos": False,
    "no_token_positional_embeddings": False,
    "share_encoder_input_output_embed": True,
}


class ErnieRnaConverter(Converter):
    family = "ernierna"
    config_class = ErnieRnaConfig
    key_map = KEY_MAP

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if isinstance(content.get("model"), dict) and "cfg" in content:
            cfg = content["cfg"] if isinstance(content["cfg"], dict) else {}
            args = cfg.get("model")
            args = vars(args) if args is not None and not isinstance(args, dict) else args or {}
            return _unprefixed(content["model"], "encoder."), {"args": args}
        if content and all(isinstance(value, torch.Tensor) for value in content.values()):
            # ChooseModel saved through DataParallel; any other state dict fails the key map, which lists its keys
            state = {str(key).removeprefix("module."): value for key, value in content.items()}
            return _unprefixed(state, "sentence_encoder."), {"args": {}}
        raise CheckpointError(
            f"{path} is neither a fairseq checkpoint (a dict with 'cfg' and 'model') nor a state dict of tensors; "
            f"its top-level keys are {sorted(map(str, content))[:10]}"
        )

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        layers = {int(match.group(1)) for key in state if (match := re.match(r"layers\.(\d+)\.", key))}
        config = {
            "hidden_size": state["embed_tokens.weight"].shape[1],
            "num_hidden_layers": len(layers),
            "intermediate_size": state["layers.0.fc1.weight"].shape[0],
            "num_attention_heads": state["twod_proj.linear2.weight"].shape[0],
            "pair_prior_hidden_size": state["twod_proj.linear1.weight"].shape[0],
            "embedding_norm": "emb_layer_norm.weight" in state,
        }
        args = metadata["args"]
        for name, field in _ARGS.items():
            if name in args and args[name] != config[field]:
                raise ConversionError(
                    f"the checkpoint's cfg says {name}={args[name]} but its tensors say {field}={config[field]}"
                )
        for name, value in _SUPPORTED.items():
            if name in args and args[name] != value:
                raise ConversionError(f"the checkpoint was trained with {name}={args[name]!r}; ErnieRna does {value!r}")
        if "max_positions" in args:
            config["max_position_embeddings"] = args["max_positions"]
        if "conv1.weight" in state:
            config["ss_conv_channels"], _, config["ss_kernel_size"], _ = state["conv1.weight"].shape
            config["ss_hidden_size"] = state["conv2.weight"].shape[0] + 1  # + the attention map itself
            config["ss_num_layers"] = len({int(m.group(1)) for key in state if (m := re.match(_HEAD, key))})
        return config


def _unprefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Upstream keys without `prefix` and the encoder's own `sentence_encoder.` (its names and the masked-LM
    head's do not collide)."""
    return {str(key).removeprefix(prefix).removeprefix("sentence_encoder."): value for key, value in state.items()}


PARITY = {
    **MASKED_LM_PARITY,
    "hidden_states": ("hidden_states", "layers"),
    "pooler_output": ("pooler_output", "sequences"),
    "last_attn_scores": ("attention_scores", "token_pairs"),
}
SS_PARITY = {"last_hidden_state": ("last_hidden_state", "tokens"), "ss_logits": ("logits", "pairs")}

VARIANTS = {
    "ernierna": ErnieRnaConverter(
        "ernierna", ErnieRnaForMaskedLM, VOCABULARY, token_rows=UNKNOWN_LETTERS, parity=PARITY
    ),
    "ernierna-ss": ErnieRnaConverter(
        "ernierna-ss",
        ErnieRnaForSecondaryStructurePrediction,
        VOCABULARY,
        token_rows=UNKNOWN_LETTERS,
        parity=SS_PARITY,
    ),
}
