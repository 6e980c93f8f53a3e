"""CaLM (oxpig/CaLM): `calm`.

Container:
    a standard-library pickle (`pickle.dump`, not `torch.save`) of the state dict of calm.model.ProteinBertModel.
    Its tensors are rebuilt through `torch._utils._rebuild_tensor_v2` from storages that
    `torch.storage._load_from_bytes` reads out of embedded legacy torch files; both names get a stand-in that
    reads the inner bytes with `torch.load(weights_only=True)` and accepts nothing but a storage (see
    `extra_globals`). No hyperparameters are stored: sizes come from the shapes, the head size from the saved
    rotary table `rope.freqs` (so the number of heads follows; 12 in the release).
Vocabulary:
    <cls> <pad> <eos> <unk>, the 64 codons (calm.alphabet's order, RNA letters), <mask>. Rows are re-ordered to
    the shared codon vocabulary by token string; codons with N take the <unk> row (upstream cannot encode them).
Rotary layout (the one thing CaLM does differently):
    rotary-embedding-torch rotates interleaved pairs (2i, 2i+1) of each head; the shared encoder rotates the
    half-split pairs (i, i + head_dim/2) with the same frequency i. Permuting the rows of the query and key
    projections (weights and biases) of every head so that row 2i becomes row i and row 2i+1 row i + head_dim/2
    gives the same attention scores (q.k is a sum over the head dimension, so a permutation of it applied to both
    changes nothing) with the shared rotary. This is done in `adapt`, where the head size is known from the file,
    rather than as a key-map transform (which sees one tensor and not the head size).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.engine import MASKED_LM_PARITY, Converter
from multimolecule.convert.errors import CheckpointError, ConversionError
from multimolecule.convert.keymap import KeyMap
from multimolecule.models.calm import CaLmConfig, CaLmForMaskedLM

from ._esm import ESM_RULES, ROTARY_DROPPED, esm_sizes, rotary_head_dim

_ROTARY = r"layers\.\d+\.self_attn\.rope\.(?:freqs|cached_freqs)"

KEY_MAP = KeyMap(ESM_RULES, dropped={_ROTARY: ROTARY_DROPPED})

# calm.alphabet: four specials, the 64 codons (nucleotides in the order A U C G), <mask>; no <null_k> fillers
CODONS = ["".join((first, second, third)) for first in "AUCG" for second in "AUCG" for third in "AUCG"]
CODON_VOCABULARY = ["<cls>", "<pad>", "<eos>", "<unk>", *CODONS, "<mask>"]


def _storage_from_bytes(data: bytes) -> torch.UntypedStorage | torch.TypedStorage:
    """Stand-in for `torch.storage._load_from_bytes`: the embedded legacy torch file, read weights-only."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError(f"torch.storage._load_from_bytes was given a {type(data).__name__}, not bytes")
    storage = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise CheckpointError(f"an embedded tensor record holds a {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    """Stand-in for `torch._utils._rebuild_tensor_v2`: a tensor over a storage read above, nothing attached."""
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise CheckpointError(f"a tensor record is built over a {type(storage).__name__}, not a storage")
    if backward_hooks or any(rest):
        raise CheckpointError("a tensor record carries backward hooks or metadata, which a state dict never has")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, tuple(size), tuple(stride), False, {})


def interleaved_to_half(tensor: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Rows of a q / k projection from rotary-embedding-torch's interleaved pairs to half-split pairs."""
    heads = tensor.shape[0] // head_dim
    rows = tensor.reshape(heads, head_dim // 2, 2, *tensor.shape[1:])
    return rows.transpose(1, 2).reshape(tensor.shape).contiguous()


class CaLmConverter(Converter):
    family = "calm"
    config_class = CaLmConfig
    key_map = KEY_MAP
    extra_globals = {  # noqa: RUF012 - read-only table of pickle stand-ins
        "torch.storage._load_from_bytes": _storage_from_bytes,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    }

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if not content or not all(isinstance(value, torch.Tensor) for value in content.values()):
            raise CheckpointError(
                f"{path} is not a CaLM state dict (a pickled dict of tensors); its top-level keys are "
                f"{sorted(map(str, content))[:10]}"
            )
        return {str(key): value for key, value in content.items()}, {}

    def adapt(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        head_dim = rotary_head_dim(state, r"layers\.\d+\.self_attn\.rope\.freqs")
        if head_dim is None:
            raise ConversionError("the file has no layers.N.self_attn.rope.freqs: not a CaLM checkpoint with rotary")
        metadata["head_dim"] = head_dim
        for key in [key for key in state if re.fullmatch(r"layers\.\d+\.self_attn\.(q|k)_proj\.(weight|bias)", key)]:
            if state[key].shape[0] % head_dim:
                raise ConversionError(f"{key} has {state[key].shape[0]} rows, not a multiple of head size {head_dim}")
            state[key] = interleaved_to_half(state[key], head_dim)

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        config = esm_sizes(state)
        config["num_attention_heads"] = config["hidden_size"] // metadata["head_dim"]
        return config

    def fixture_overrides(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {"num_attention_heads": meta["hyperparameters"]["attention_heads"]}


CODING_SEQUENCES = ("AUGGCUAGCAAAGGAGAAGAACUUUUCACUGGAGUUGUCCCAAUUCUUGUUGAAUUAUAA", "AUGCCCUGA", "AUGAAACCCGGGUUUUAG")

VARIANTS = {
    "calm": CaLmConverter(
        "calm",
        CaLmForMaskedLM,
        CODON_VOCABULARY,
        {"codon": True},
        parity={**MASKED_LM_PARITY, "hidden_states": ("hidden_states", "layers")},
        sample_sequences=CODING_SEQUENCES,
    ),
}
