"""UTR-LM (a96123155/UTR-LM): `utrlm-te_el` (ESM2SI_3.1) and `utrlm-mrl` (ESM2SISS_FS4.1).

Container:
    `torch.save` of a plain state dict (a `.pkl` name, zip torch format). The MRL file was written under
    DistributedDataParallel, so its keys start with `module.`; the TE/EL file's do not. Upstream strips the prefix
    with `k.replace('module.', '')`; we strip a leading `module.` from every key of either file.
Config:
    nothing is stored. Sizes come from the shapes, the head size from the saved rotary tables
    (`layers.N.self_attn.rot_emb.inv_freq`, checked to be the standard table); the heads present say which
    auxiliary heads there are (`supervised_linear`: MFE, both files; `structure_linear`: secondary structure,
    MRL only). Upstream parses '{L}layers_{H}heads_{E}embedsize' from the file name instead (reading only the
    first digit of the layer count); a file name in that form is checked against the tensors.
Vocabulary:
    esm.data.Alphabet(standard_toks='AGCT'): <pad> <eos> <unk> A G C T <cls> <mask> <sep>. `T` is our `U`;
    <sep> has no counterpart and is dropped; tokens upstream lacks (N, IUPAC codes) take its <unk> row.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError, ConversionError
from multimolecule.convert.keymap import KeyMap
from multimolecule.models.utrlm import UtrLmConfig, UtrLmForPreTraining

from ._esm import ESM_RULES, ROTARY_DROPPED, esm_sizes, rotary_head_dim

_ROTARY = r"layers\.\d+\.self_attn\.rot_emb\.inv_freq"

KEY_MAP = KeyMap(
    [
        *ESM_RULES,
        (r"supervised_linear\.(weight|bias)", r"mfe_head.\1"),
        (r"structure_linear\.(weight|bias)", r"structure_head.\1"),
    ],
    dropped={_ROTARY: ROTARY_DROPPED},
)

VOCABULARY = ["<pad>", "<eos>", "<unk>", "A", "G", "C", "T", "<cls>", "<mask>", "<sep>"]
_FILE_NAME = re.compile(r"_(\d+)layers_(\d+)heads_(\d+)embedsize_")


class UtrLmConverter(Converter):
    family = "utrlm"
    config_class = UtrLmConfig
    key_map = KEY_MAP

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if not content or not all(isinstance(value, torch.Tensor) for value in content.values()):
            raise CheckpointError(
                f"{path} is not a UTR-LM state dict (a dict of tensors); its top-level keys are "
                f"{sorted(map(str, content))[:10]}"
            )
        state = {str(key).removeprefix("module."): value for key, value in content.items()}
        return state, {"file_name": path.name}

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        config = esm_sizes(state)
        head_dim = rotary_head_dim(state, _ROTARY)
        if head_dim is None:
            raise ConversionError("the file has no layers.N.self_attn.rot_emb.inv_freq: not a UTR-LM checkpoint")
        config["num_attention_heads"] = config["hidden_size"] // head_dim
        config["mfe_head"] = "supervised_linear.weight" in state
        config["structure_head"] = "structure_linear.weight" in state
        if config["structure_head"]:
            config["num_structure_labels"] = state["structure_linear.weight"].shape[0]
        if match := _FILE_NAME.search(metadata["file_name"]):
            fields = ("num_hidden_layers", "num_attention_heads", "hidden_size")
            named = dict(zip(fields, map(int, match.groups()), strict=True))
            wrong = [
                f"{name}={value} (the tensors say {config[name]})"
                for name, value in named.items()
                if value != config[name]
            ]
            if wrong:
                raise ConversionError(f"the file name {metadata['file_name']} says {', '.join(wrong)}")
        return config


PARITY = {
    **MASKED_LM_PARITY,
    "hidden_states": ("hidden_states", "layers"),
    "logits_supervised": ("mfe", "sequences"),
    "logits_structure": ("structure_logits", "tokens"),
}
DNA_SEQUENCES = ("GGGACAUCGUAGAGCCACCAUG", "ACUUCCGGUAGCAAUGCCAGCUGAAU", "UUAGCGCGAAUAAG")

VARIANTS = {
    name: UtrLmConverter(name, UtrLmForPreTraining, VOCABULARY, parity=PARITY, sample_sequences=DNA_SEQUENCES)
    for name in ("utrlm-te_el", "utrlm-mrl")
}
