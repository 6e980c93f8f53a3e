"""Position encodings: learned (in `Embeddings`), sinusoidal and rotary.

Sinusoidal tables and rotary frequencies are computed on the fly rather than kept as buffers, so that
`from_pretrained`'s meta-device initialisation never leaves them unset.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(positions: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """fairseq's table: the first half of each row is sin, the second half cos (not interleaved)."""
    half = dim // 2
    frequencies = torch.exp(
        torch.arange(half, device=positions.device, dtype=torch.float32) * -(math.log(10000.0) / max(half - 1, 1))
    )
    angles = positions.to(torch.float32).unsqueeze(-1) * frequencies
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:
        table = nn.functional.pad(table, (0, 1))
    return table.to(dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the whole head dimension (the ESM-2 / RoFormer form). `table(length)`
    computes the rotation once for a forward pass; every layer then applies it."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def table(self, length: int, device: torch.device, dtype: torch.dtype) -> RotaryTable:
        exponents = torch.arange(0, self.head_dim, 2, device=device, dtype=torch.float32) / self.head_dim
        inverse_frequency = 1.0 / (self.base**exponents)
        angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inverse_frequency)
        sin = angles.sin()
        # rotate_half(x) * sin == roll(x, half) * [-sin, sin]: the sign is folded into the table once
        return RotaryTable(torch.cat((angles, angles), dim=-1).cos().to(dtype), torch.cat((-sin, sin), -1).to(dtype))

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.table(query.shape[-2], query.device, query.dtype)(query, key)


class RotaryTable:
    """The rotation of each position for one length: `(query, key)` (..., length, head_dim) rotated."""

    def __init__(self, cos: torch.Tensor, signed_sin: torch.Tensor) -> None:
        self.cos, self.signed_sin = cos, signed_sin

    def __call__(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rotate(query), self.rotate(key)

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return x * self.cos + x.roll(half, dims=-1) * self.signed_sin
