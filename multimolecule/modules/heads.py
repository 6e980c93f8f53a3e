"""Heads shared by every family: masked LM, sequence / token / contact prediction, attention contacts."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN


def nucleotide_mask(config, input_ids: torch.Tensor | None, attention_mask: torch.Tensor) -> torch.Tensor:
    """True at the positions that hold a nucleotide (or a masked one): not padding, not `<cls>` / `<eos>`."""
    if input_ids is None:
        raise ValueError(
            "token and contact outputs drop special tokens, which they find in input_ids; pass input_ids "
            "(not only inputs_embeds)"
        )
    special = torch.tensor(config.special_token_ids, device=input_ids.device)
    return attention_mask.bool() & ~torch.isin(input_ids, special)


def pack_tokens(hidden_states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the positions selected by `mask` to the front of each row, keeping their order.

    Returns (packed, valid): packed is (batch, n, ...) with n the largest count in the batch, zero where
    `valid` is False. Works whatever the padding side and wherever the special tokens are.
    """
    counts = mask.sum(-1)
    length = int(counts.max()) if counts.numel() else 0
    order = torch.argsort((~mask).to(torch.int8), dim=-1, stable=True)[:, :length]
    valid = torch.arange(length, device=mask.device) < counts.unsqueeze(-1)
    index = order.view(*order.shape, *([1] * (hidden_states.dim() - 2))).expand(-1, -1, *hidden_states.shape[2:])
    packed = hidden_states.gather(1, index)
    packed = packed * valid.view(*valid.shape, *([1] * (hidden_states.dim() - 2))).to(packed.dtype)
    return packed, valid


class MaskedLMHead(nn.Module):
    """dense -> `config.lm_head_act` -> layer norm -> decoder, over the vocabulary (the decoder weight tied to
    the token embedding when `config.tie_word_embeddings`) or over `num_outputs` per-token classes (a release's
    per-token head of the same shape, such as RNABERT's structure head)."""

    def __init__(self, config, num_outputs: int | None = None) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.lm_head_act]
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, num_outputs or config.vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden_states))))


class Pooler(nn.Module):
    """BERT's pooler: dense + tanh on the first token's hidden state."""

    def __init__(self, config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


class PredictionHead(nn.Module):
    """dropout -> dense -> activation -> dropout -> projection to `num_labels`; for sequences and tokens."""

    def __init__(self, config) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.head_dropout)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACT2FN[config.head_act]
        self.projection = nn.Linear(config.hidden_size, config.num_labels)

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.dense(self.dropout(features))))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.projection(self.transform(features))


class ContactPredictionHead(PredictionHead):
    """One output per nucleotide pair, symmetric by construction.

    Each token is transformed as in `PredictionHead`; the logit of label c for pair (i, j) is the bilinear
    form sum_h x_ih w_ch x_jh + b_c, which is symmetric in (i, j) and never materialises a
    (length, length, hidden) tensor.
    """

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.transform(features)
        pairwise = torch.einsum("bih,ch,bjh->bijc", features, self.projection.weight, features)
        return pairwise + self.projection.bias


def average_product_correct(x: torch.Tensor) -> torch.Tensor:
    """Average product correction over the last two dimensions (padding rows and columns must be zero)."""
    row = x.sum(-1, keepdim=True)
    column = x.sum(-2, keepdim=True)
    total = x.sum((-1, -2), keepdim=True)
    return x - row * column / total.masked_fill(total == 0, 1)


class AttentionContactHead(nn.Module):
    """ESM's contact predictor: logistic regression over symmetrised, APC-corrected attention maps.

    Input features are layer-major (feature = layer * heads + head), as in the ESM / RNA-FM releases.
    """

    def __init__(self, config) -> None:
        super().__init__()
        self.regression = nn.Linear(config.num_hidden_layers * config.num_attention_heads, 1)

    def forward(self, attentions: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
        maps = torch.cat(attentions, dim=1)  # (batch, layers * heads, length, length)
        maps, valid = pack_tokens(maps.transpose(1, 2), mask)  # rows
        maps, _ = pack_tokens(maps.permute(0, 3, 2, 1), mask)  # columns -> (batch, n, layers * heads, n)
        maps = maps.permute(0, 2, 3, 1)  # (batch, layers * heads, n_rows, n_columns)
        maps = maps.to(self.regression.weight.dtype)
        maps = average_product_correct(maps + maps.transpose(-1, -2))
        contacts = torch.sigmoid(self.regression(maps.permute(0, 2, 3, 1)).squeeze(-1))
        pair_valid = valid.unsqueeze(-1) & valid.unsqueeze(-2)
        return contacts * pair_valid.to(contacts.dtype)

    def layer_logits(self, layer: int, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One layer's share of the regression, (batch, n, n): the regression is linear over its layer-major
        features, so summing the layers' shares as they run never holds more than one layer's maps."""
        heads = weights.shape[1]
        maps, _ = pack_tokens(weights.transpose(1, 2), mask)  # rows
        maps, _ = pack_tokens(maps.permute(0, 3, 2, 1), mask)  # columns -> (batch, n, heads, n)
        maps = maps.permute(0, 2, 3, 1).to(self.regression.weight.dtype)  # (batch, heads, n_rows, n_columns)
        maps = average_product_correct(maps + maps.transpose(-1, -2))
        return torch.einsum("bhij,h->bij", maps, self.regression.weight[0, layer * heads : (layer + 1) * heads])

    def contacts(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Contact probabilities from the summed layer shares; zero outside each sequence's own pairs."""
        counts = mask.sum(-1)
        valid = torch.arange(logits.shape[-1], device=mask.device) < counts.unsqueeze(-1)
        contacts = torch.sigmoid(logits + self.regression.bias)
        return contacts * (valid.unsqueeze(-1) & valid.unsqueeze(-2)).to(contacts.dtype)
