"""Full-size random checkpoints in a release's own file layout, for the conversion benchmark.

Each family's golden fixture (tests/golden) is a tiny checkpoint saved exactly as the release is: same container,
same key names, same storage sharing. Scaling it up keeps all of that and changes only the sizes: every
dimension of the fixture is mapped to the published one (`dims`, chosen so that no two fixture sizes collide),
the per-layer keys of layer 0 are repeated for the published number of layers, and each tensor is filled with
small Gaussian noise (values do not matter to speed or memory). Nothing is downloaded.
"""

from __future__ import annotations

import re
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"


@dataclass(frozen=True)
class Release:
    """How to scale a family's fixture to a published checkpoint."""

    variant: str  # catalogue variant the converter is asked for
    fixture: str  # path under tests/golden
    filename: str  # the release's file name (some loaders key on it)
    layers: int
    layer_key: str  # regex whose group 1 is the layer index
    dims: dict[int, int]  # fixture size -> published size
    args: dict[str, Any] = field(default_factory=dict)  # fairseq args to overwrite, where the file has them
    # key -> key it shares storage with in the release (fm's torch.save(state_dict()) of a tied decoder);
    # the fixture stores the two equal but apart
    tied: dict[str, str] = field(default_factory=dict)


RELEASES = {
    # RNA-FM_pretrained.pth: 12 layers of width 640, FFN 5120, 1024 (+2) positions, contact regression 12 x 20
    "rnafm": Release(
        "rnafm",
        "rnafm/rnafm/RNA-FM_pretrained.pth",
        "RNA-FM_pretrained.pth",
        12,
        r"(?:.*\.)?layers\.(\d+)\.",
        {32: 640, 64: 5120, 66: 1026, 12: 240},
        {
            "encoder_layers": 12,
            "encoder_embed_dim": 640,
            "encoder_ffn_embed_dim": 5120,
            "encoder_attention_heads": 20,
            "max_positions": 1024,
            "tokens_per_sample": 1023,
        },
        {"encoder.encoder.lm_head.weight": "encoder.encoder.embed_tokens.weight"},
    ),
    # rinalmo-giga: 33 blocks of width 1280, fused q|k|v 3840, SwiGLU 3413 (650 M parameters)
    "rinalmo": Release(
        "rinalmo-giga",
        "rinalmo/rinalmo/rinalmo_tiny_pretrained.pt",
        "rinalmo_giga_pretrained.pt",
        33,
        r"transformer\.blocks\.(\d+)\.",
        {48: 1280, 144: 3840, 128: 3413},
    ),
}


def scaled_state(release: Release, seed: int = 0) -> dict[str, Any]:
    """The fixture's content at the published size (random values, the fixture's storage sharing kept)."""
    import torch

    content = torch.load(GOLDEN / release.fixture, map_location="cpu", weights_only=False)
    nested = "model" in content and isinstance(content["model"], dict)
    state = content["model"] if nested else content
    generator = torch.Generator().manual_seed(seed)
    pattern = re.compile(release.layer_key)
    out: dict[str, Any] = {}
    made: dict[tuple[int, int], torch.Tensor] = {}  # fixture storage -> the tensor made for it (tied weights)
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            out[key] = tensor
            continue
        match = pattern.match(key)
        if match and match.group(1) != "0":
            continue
        shape = tuple(release.dims.get(size, size) for size in tensor.shape)
        identity = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        for layer in range(release.layers) if match else (None,):
            name = key if layer is None else key[: match.start(1)] + str(layer) + key[match.end(1) :]
            if layer is None and identity in made:
                out[name] = made[identity]
                continue
            if name in release.tied:
                out[name] = out[release.tied[name]]
                continue
            value = torch.randn(shape, generator=generator, dtype=torch.float32).mul_(0.02).to(tensor.dtype)
            if tensor.dim() == 1 and name.endswith(("norm.weight", "layer_norm.weight")):
                value.add_(1)
            out[name] = value
            if layer is None:
                made[identity] = value
    if not nested:
        return out
    args = vars(content["args"]).copy()
    args.update(release.args)
    return {**content, "args": Namespace(**args), "model": out}


def write_release(family: str, directory: Path, seed: int = 0) -> Path:
    """Write the published-size random checkpoint of `family` into `directory`; its path."""
    import torch

    release = RELEASES[family]
    path = directory / release.filename
    content = scaled_state(release, seed)
    torch.save(content, path)
    return path
