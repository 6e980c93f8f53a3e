"""Pieces of the 2-D (nucleotide pair) heads: pair features, the masking that keeps a sequence's map
independent of its batch, a masked instance norm, residual blocks, and the mirrored upper triangle.

A batch of maps is (batch, channels, n, n), n the most nucleotides in the batch. Positions outside each
sequence's own n_b x n_b square are padding: they are zeroed before every convolution (so a kernel at the edge
of the square sees zeros, as it does on the sequence's map alone) and left out of every normalisation.
"""

from __future__ import annotations

import torch
from torch import nn


def pair_mask(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, 1, n, n): 1 where both positions of a pair are real, from the per-position mask (batch, n)."""
    return (valid.unsqueeze(-1) & valid.unsqueeze(-2)).unsqueeze(1).to(dtype)


def outer_concat(features: torch.Tensor) -> torch.Tensor:
    """(batch, n, channels) -> (batch, n, n, 2 * channels): pair (i, j) holds [x_i ; x_j]."""
    length = features.shape[1]
    rows = features.unsqueeze(2).expand(-1, -1, length, -1)
    return torch.cat([rows, rows.transpose(1, 2)], dim=-1)


def mirror_upper(x: torch.Tensor, keep_diagonal: bool = True) -> torch.Tensor:
    """A symmetric map from the upper triangle of (..., n, n); the diagonal is kept or zeroed."""
    upper = torch.triu(x, diagonal=1)
    symmetric = upper + upper.transpose(-1, -2)
    return symmetric + torch.diag_embed(torch.diagonal(x, dim1=-2, dim2=-1)) if keep_diagonal else symmetric


class MaskedInstanceNorm2d(nn.Module):
    """`nn.InstanceNorm2d` without affine parameters, its statistics taken over the real pairs only: a map in a
    padded batch is normalised as the same map alone. The output is zero outside the real pairs."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        count = mask.sum((-1, -2), keepdim=True).clamp(min=1)
        mean = (x * mask).sum((-1, -2), keepdim=True) / count
        centred = (x - mean) * mask
        variance = centred.square().sum((-1, -2), keepdim=True) / count  # biased, as InstanceNorm2d
        return centred * torch.rsqrt(variance + self.eps)


class ResidualBlock(nn.Module):
    """BN -> ReLU -> 3x3 conv -> dropout -> ReLU -> dilated 3x3 conv, plus the identity (RNA-FM's block)."""

    def __init__(self, channels: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=dilation, dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.relu(self.bn1(x)) * mask)
        out = self.conv2(torch.relu(self.dropout(out)) * mask)
        return x + out


def dilated_residual_blocks(channels: int, depth: int, dropout: float) -> nn.ModuleList:
    """`depth` `ResidualBlock`s whose dilations cycle 1, 2, 4 (RNA-FM's and ERNIE-RNA's structure heads)."""
    return nn.ModuleList(ResidualBlock(channels, dilation=2 ** (index % 3), dropout=dropout) for index in range(depth))


class BottleneckBlock(nn.Module):
    """(1x1 conv -> instance norm -> ReLU) -> (kxk conv -> IN -> ReLU) -> (1x1 conv -> IN -> ReLU), plus the
    identity; bias-free convolutions, the norms over real pairs only (RiNALMo's block)."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, kernel_size=size, padding=size // 2, bias=False)
            for size in (1, kernel_size, 1)
        )
        self.norm = MaskedInstanceNorm2d()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = x
        for conv in self.convs:
            out = torch.relu(self.norm(conv(out * mask), mask))
        return x + out
