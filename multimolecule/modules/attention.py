"""Multi-head self-attention through transformers' attention interface (SDPA by default, eager on request)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .packing import PackedTokens
from .positions import RotaryTable


def eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax(QK^T * scaling + mask) V; returns the output as (batch, length, heads, head_dim) and the weights."""
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))  # scaling (length, dim) beats (length, length)
    if attention_mask is not None:
        scores = scores + attention_mask
    return _attend(module, scores, value, dropout)


def _attend(module: nn.Module, scores: torch.Tensor, value: torch.Tensor, dropout: float) -> tuple[torch.Tensor, ...]:
    """(softmax(scores) V as (batch, length, heads, head_dim), the weights)."""
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def carried_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    bias: torch.Tensor,
    scaling: float,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eager attention whose pre-softmax scores, `bias` included, are also returned for the next layer.

    Padded keys (where the additive `attention_mask` is negative) are set to the dtype's minimum with
    `masked_fill`: the scores handed on stay finite, so no later sum or product of them can make NaN."""
    scores = torch.matmul(query * scaling, key.transpose(-1, -2))
    scores += bias  # in place, as the fill below: the layer holds one (batch, heads, L, L) besides `bias`
    if attention_mask is not None:
        scores.masked_fill_(attention_mask < 0, torch.finfo(scores.dtype).min)
    return (*_attend(module, scores, value, dropout), scores)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention.

    `attention_mask` is additive and broadcastable to (batch, heads, length, length): padding and any
    per-pair bias that stays the same in every layer both go there. Attention weights are only materialised
    when asked for (`output_attentions=True`), in which case the eager path runs whatever the configured
    implementation.

    `bias` (batch, heads, length, length) is a bias that flows from layer to layer (ERNIE-RNA): it is added to
    the scores, which are then returned as the third output for the next layer to add to its own. That path
    needs the scores, so it always runs eager attention; without `bias` the third output is None.

    Given `PackedTokens` as its mask, it takes and returns hidden states packed to the real tokens,
    (tokens, hidden): the projections run on those only, and the heads are scattered back to
    (batch, heads, length, head_dim) for the attention kernel, under the padded path's mask.
    """

    # The SDPA wrapper treats a module without this attribute as causal when no mask is given.
    is_causal = False
    # whether `forward` takes `PackedTokens` (a subclass whose input is not one row per token says False)
    supports_packed: ClassVar[bool] = True

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = config.attention_dropout
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | PackedTokens | None = None,
        rotary: RotaryTable | None = None,
        output_attentions: bool = False,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        packing = attention_mask if isinstance(attention_mask, PackedTokens) else None
        if packing is not None:
            attention_mask = packing.attention_mask
        projections = (self.q_proj, self.k_proj, self.v_proj)
        query, key, value = (self.split_heads(projection(hidden_states), packing) for projection in projections)
        if rotary is not None:
            query, key = rotary(query, key)

        dropout = self.dropout if self.training else 0.0
        scores = None
        if bias is not None:
            output, weights, scores = carried_attention(
                self, query, key, value, attention_mask, bias, self.scaling, dropout
            )
        else:
            output, weights = self.attend(query, key, value, attention_mask, self.scaling, output_attentions)
        output = output.flatten(2)  # (batch, length, hidden)
        if packing is not None:
            output = packing.pack(output)
        # weights the caller did not ask for would stay alive while the next layer runs
        return self.out_proj(output), weights if output_attentions else None, scores

    def split_heads(self, projected: torch.Tensor, packing: PackedTokens | None) -> torch.Tensor:
        """(batch, length, hidden), or (tokens, hidden) re-padded by `packing`, -> (batch, heads, length, head_dim)."""
        if packing is not None:
            projected = packing.pad(projected)
        return projected.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        scaling: float,
        output_attentions: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The configured attention function on (batch, heads, length, head_dim) inputs; the output comes back as
        (batch, length, heads, head_dim), the weights only when asked for."""
        implementation = "eager" if output_attentions else self.config._attn_implementation
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention)
        output, weights = attention(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=scaling,
            dropout=self.dropout if self.training else 0.0,
        )
        # weights the caller did not ask for would stay alive while the next layer runs
        return output, weights if output_attentions else None
