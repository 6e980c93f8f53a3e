"""Heads shared by every family: masked LM, sequence / token / contact prediction, attention contacts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from transformers.activations import ACT2FN


def nucleotide_mask(config, input_ids: torch.Tensor | None, attention_mask: torch.Tensor) -> torch.Tensor:
    """True at the positions that hold a nucleotide (or a masked one): not padding, not `<cls>` / `<eos>`.
    Without `input_ids` (only `inputs_embeds`), special tokens cannot be told apart: every attended position."""
    if input_ids is None:
        return attention_mask.bool()
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


def attention_pairs(attentions: tuple[torch.Tensor, ...], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every layer's attention maps between the positions `mask` (batch, length) selects, layer-major:
    (batch, layers * heads, n, n), zero outside each sequence's own n_b x n_b square, and which of the n are real."""
    maps = torch.cat(attentions, dim=1)  # (batch, layers * heads, length, length)
    maps, valid = pack_tokens(maps.transpose(1, 2), mask)  # rows
    maps, _ = pack_tokens(maps.permute(0, 3, 2, 1), mask)  # columns -> (batch, n, layers * heads, n)
    return maps.permute(0, 2, 3, 1), valid  # (batch, layers * heads, n_rows, n_columns)


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


def first_real_token(hidden_states: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, hidden): each sequence's first real token (its `<cls>`), whatever the padding side."""
    if attention_mask is None:
        return hidden_states[:, 0]
    first = attention_mask.long().argmax(-1)  # left padding puts <cls> after the pads
    return hidden_states[torch.arange(hidden_states.shape[0], device=first.device), first]


class Pooler(nn.Module):
    """BERT's pooler: dense + tanh on the first real token's hidden state."""

    def __init__(self, config) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.dense(first_real_token(hidden_states, attention_mask)))


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


class AttentionContactHead(nn.Module):
    """ESM's contact predictor: logistic regression over symmetrised, APC-corrected attention maps.

    Input features are layer-major (feature = layer * heads + head), as in the ESM / RNA-FM releases. The
    regression is linear, so each layer's maps are reduced to their share of the logits on their own
    (`layer_logits`): `streaming` does that as the layers run, and no more than one layer's maps exist at once.
    """

    def __init__(self, config) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.regression = nn.Linear(config.num_hidden_layers * config.num_attention_heads, 1)

    def forward(self, attentions: tuple[torch.Tensor, ...], mask: torch.Tensor) -> torch.Tensor:
        """Contact probabilities (batch, n, n) from every layer's attention maps (batch, heads, length, length)."""
        mask = self.positions(mask)
        logits = sum(self.layer_logits(layer, weights, mask) for layer, weights in enumerate(attentions))
        return self.contacts(logits, mask)

    def positions(self, mask: torch.Tensor) -> torch.Tensor:
        """The (batch, length) positions whose pairs are predicted, from the nucleotide mask."""
        return mask

    def layer_logits(self, layer: int, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One layer's share of the regression's logits, (batch, n, n), from its maps (batch, heads, L, L).

        Per head, the feature is APC(S) with S = M + M^T over the nucleotides, and APC(S) = S - r r^T / sum(r)
        (S is symmetric, so its row and column sums r agree). The heads' weighted sum therefore needs only
        the weighted sum of the maps and each head's sums r: no per-head (L, L) temporary is made.
        """
        dtype = self.regression.weight.dtype
        weights = weights.to(dtype)
        coefficients = self.regression.weight[0, layer * self.num_heads : (layer + 1) * self.num_heads]
        batch, heads, length, _ = weights.shape
        nucleotides = mask.to(dtype)
        combined = torch.matmul(coefficients, weights.reshape(batch, heads, length * length))
        combined = combined.view(batch, length, length)
        rows = torch.matmul(weights, nucleotides[:, None, :, None]).squeeze(-1)  # sum over nucleotide columns
        columns = torch.matmul(nucleotides[:, None, None, :], weights).squeeze(-2)  # over nucleotide rows
        sums = (rows + columns) * nucleotides[:, None, :]  # (batch, heads, L): r of each head's S
        totals = sums.sum(-1)
        scale = coefficients / totals.masked_fill(totals == 0, 1)  # (batch, heads)
        correction = torch.matmul((sums * scale[..., None]).transpose(1, 2), sums)  # sum_h w_h r_h r_h^T / t_h
        logits = combined + combined.transpose(1, 2) - correction
        logits, _ = pack_tokens(logits, mask)  # rows
        logits, _ = pack_tokens(logits.transpose(1, 2), mask)  # columns
        return logits.transpose(1, 2)

    def contacts(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Probabilities from the summed shares; zero outside each sequence's own pairs."""
        valid = torch.arange(logits.shape[-1], device=mask.device) < mask.sum(-1, keepdim=True)
        contacts = torch.sigmoid(logits + self.regression.bias)
        return contacts * (valid.unsqueeze(-1) & valid.unsqueeze(-2)).to(contacts.dtype)

    @contextmanager
    def streaming(self, attentions: Sequence[nn.Module], mask: torch.Tensor) -> Iterator[Callable[[], torch.Tensor]]:
        """Within the block, each of `attentions` (one attention module per layer, run with output_attentions)
        hands its weights to the regression and returns None in their place; the block's value gives the
        contacts once the layers have run."""
        mask = self.positions(mask)
        total: list[torch.Tensor] = []

        def hook_for(layer: int):
            def hook(module: nn.Module, args, output: tuple) -> tuple:
                attended, weights, *rest = output
                share = self.layer_logits(layer, weights, mask)
                total[:] = [total[0] + share] if total else [share]  # a running sum: one (batch, n, n)
                return (attended, None, *rest)

            return hook

        hooks = [module.register_forward_hook(hook_for(layer)) for layer, module in enumerate(attentions)]
        try:
            yield lambda: self.contacts(total[0], mask)
        finally:
            for hook in hooks:
                hook.remove()
