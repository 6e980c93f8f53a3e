"""ERNIE-RNA: the shared encoder with a base-pairing prior whose attention scores flow from layer to layer, and
the secondary-structure head of `ernierna-ss`, which reads those scores."""

from __future__ import annotations

import torch
from torch import nn
from transformers.activations import ACT2FN

from ...modules.heads import pack_tokens
from ...modules.pairwise import dilated_residual_blocks, pair_mask
from ...tokenisers import RNA
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSecondaryStructurePrediction,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
)
from .configuration_ernierna import ErnieRnaConfig

# upstream's `paired`: Watson-Crick pairs and the G-U wobble (its `lamda`); every other pair scores 0
PAIR_SCORES = (("A", "U", 2.0), ("G", "C", 3.0), ("G", "U", 0.8))


def base_pairing_prior(input_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(batch, length, length): the score of the pair each two tokens would form.

    Upstream's `creatmat` with the `base_range=1` of every upstream script: only the pair itself counts, as
    its Gaussian-weighted sums over neighbouring pairs start at distance 1, which that range excludes.
    Special tokens, padding, `N` and every other token score 0 with anything."""
    ids = {token: index for index, token in enumerate(RNA.vocabulary())}
    table = torch.zeros(vocab_size, vocab_size, device=input_ids.device)
    for first, second, score in PAIR_SCORES:
        table[ids[first], ids[second]] = table[ids[second], ids[first]] = score
    return table[input_ids.unsqueeze(-1), input_ids.unsqueeze(-2)]


class PairPrior(nn.Module):
    """The base-pairing prior projected to one additive attention bias per head (upstream's `twod_proj`):
    Linear(1, k) -> activation -> Linear(k, heads), applied to every pair; returns (batch, heads, L, L)."""

    def __init__(self, config: ErnieRnaConfig) -> None:
        super().__init__()
        self.vocab_size = config.vocab_size
        self.fc1 = nn.Linear(1, config.pair_prior_hidden_size)
        self.activation = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.pair_prior_hidden_size, config.num_attention_heads)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        prior = base_pairing_prior(input_ids, self.vocab_size).unsqueeze(-1).to(self.fc1.weight.dtype)
        return self.fc2(self.activation(self.fc1(prior))).permute(0, 3, 1, 2)


class ErnieRnaPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = ErnieRnaConfig
    # every layer needs the previous layer's pre-softmax scores, which only eager attention computes
    _supports_sdpa = False
    _supports_attention_backend = False


class ErnieRnaModel(ErnieRnaPreTrainedModel, BackboneModel):
    """ERNIE-RNA encoder: hidden states for every token (`<cls>` and `<eos>` included), the pooler output, and
    the last layer's pre-softmax scores (`attention_scores`, the carried bias included)."""

    pair_bias_class = PairPrior


class ErnieRnaForMaskedLM(ErnieRnaPreTrainedModel, ForMaskedLM):
    """ERNIE-RNA with its masked-LM head (decoder tied to the token embedding, with a bias of its own)."""


class ErnieRnaForSequencePrediction(ErnieRnaPreTrainedModel, ForSequencePrediction):
    """ERNIE-RNA with a sequence-level regression / classification head."""


class ErnieRnaForTokenPrediction(ErnieRnaPreTrainedModel, ForTokenPrediction):
    """ERNIE-RNA with a per-nucleotide regression / classification head."""


class ErnieRnaForContactPrediction(ErnieRnaPreTrainedModel, ForContactPrediction):
    """ERNIE-RNA with a per-nucleotide-pair regression / classification head."""


class SecondaryStructureHead(nn.Module):
    """ERNIE-RNA's attention-map head (upstream's `ChooseModel`): one head's score map -> kxk conv -> dropout ->
    ReLU -> kxk conv, concatenated with the map itself, dilated residual blocks (RNA-FM's), a 3x3 conv, and the
    map plus its transpose.

    Upstream runs one sequence at a time; here the map is zeroed outside each sequence's n x n square before
    every convolution, so a padded batch gives every sequence the map it gets alone.
    """

    def __init__(self, config: ErnieRnaConfig) -> None:
        super().__init__()
        if not 0 <= config.ss_attention_head < config.num_attention_heads:
            raise ValueError(
                f"ss_attention_head is {config.ss_attention_head}, but the model has {config.num_attention_heads} "
                "attention heads"
            )
        size = config.ss_kernel_size
        self.conv1 = nn.Conv2d(1, config.ss_conv_channels, kernel_size=size, padding=size // 2)
        self.dropout = nn.Dropout(config.ss_dropout)
        self.conv2 = nn.Conv2d(config.ss_conv_channels, config.ss_hidden_size - 1, kernel_size=size, padding=size // 2)
        self.blocks = dilated_residual_blocks(config.ss_hidden_size, config.ss_num_layers, config.ss_dropout)
        self.final = nn.Conv2d(config.ss_hidden_size, 1, kernel_size=3, padding=1)

    def forward(self, scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = pair_mask(valid, scores.dtype)
        scores = scores.unsqueeze(1).masked_fill(mask == 0, 0.0)
        x = self.conv2(torch.relu(self.dropout(self.conv1(scores))) * mask)
        x = torch.cat([x, scores], dim=1)
        for block in self.blocks:
            x = block(x, mask)
        x = self.final(x * mask).squeeze(1)
        return (x + x.transpose(-1, -2)) * mask.squeeze(1)


class ErnieRnaForSecondaryStructurePrediction(ErnieRnaPreTrainedModel, ForSecondaryStructurePrediction):
    """ERNIE-RNA with the secondary-structure head of `ernierna-ss` (and the masked-LM head the file keeps), which
    reads head `config.ss_attention_head` of the last layer's pre-softmax scores over the nucleotides.
    `labels`: (batch, n, n) base-pair map, 1 paired, 0 unpaired, -100 ignored."""

    ss_head_class = SecondaryStructureHead

    def ss_features(self, last_hidden_state, nucleotides, fields):
        scores = fields["attention_scores"][:, self.config.ss_attention_head]
        rows, valid = pack_tokens(scores, nucleotides)
        pairs, _ = pack_tokens(rows.transpose(1, 2), nucleotides)
        return pairs.transpose(1, 2), valid
