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


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the whole head dimension (the ESM-2 / RoFormer form)."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        length = query.shape[-2]
        exponents = torch.arange(0, self.head_dim, 2, device=query.device, dtype=torch.float32) / self.head_dim
        inverse_frequency = 1.0 / (self.base**exponents)
        angles = torch.outer(torch.arange(length, device=query.device, dtype=torch.float32), inverse_frequency)
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos().to(query.dtype), angles.sin().to(query.dtype)
        return query * cos + _rotate_half(query) * sin, key * cos + _rotate_half(key) * sin
