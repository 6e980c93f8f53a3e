"""Multi-head self-attention through transformers' attention interface (SDPA by default, eager on request)."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from .positions import RotaryEmbedding


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
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention.

    `attention_mask` is additive and broadcastable to (batch, heads, length, length): padding and any
    per-pair bias a family needs both go there. Attention weights are only materialised when asked for
    (`output_attentions=True`), in which case the eager path runs whatever the configured implementation.
    """

    # The SDPA wrapper treats a module without this attribute as causal when no mask is given.
    is_causal = False

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
        attention_mask: torch.Tensor | None = None,
        rotary: RotaryEmbedding | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, _ = hidden_states.shape
        shape = (batch, length, self.num_heads, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        if rotary is not None:
            query, key = rotary(query, key)

        output, weights = self.attend(query, key, value, attention_mask, self.scaling, output_attentions)
        output = output.reshape(batch, length, -1)
        return self.out_proj(output), weights

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
