"""RiNALMo: the shared encoder with its own layer (the attention residual is added to the normalised input) and
SwiGLU feed-forward block, ESM-2's token dropout, and the 2-D ResNet secondary-structure head of
`rinalmo-giga-ss`."""

from __future__ import annotations

import torch
from torch import nn
from transformers import initialization as init

from ...modules.encoder import Encoder, EncoderLayer, TokenDropoutEmbeddings
from ...modules.pairwise import BottleneckBlock, mirror_upper, outer_concat, pair_mask
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSecondaryStructurePrediction,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
)
from .configuration_rinalmo import RiNALMoConfig


class SwiGLUFeedForward(nn.Module):
    """fc2((fc1(x) * sigmoid(beta * fc1(x))) * gate(x)), with beta a learned scalar (not fixed to 1)."""

    def __init__(self, config: RiNALMoConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.gate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.beta = nn.Parameter(torch.ones(1))
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        projected = self.fc1(hidden_states)
        swish = projected * torch.sigmoid(self.beta * projected)
        return self.fc2(self.dropout(swish * self.gate(hidden_states)))


class RiNALMoLayer(EncoderLayer):
    """Pre-norm layer whose attention residual starts from the normalised input, as the release computes it:
    x = norm1(x); x = x + attention(x); x = x + ffn(norm2(x))."""

    ffn_class = SwiGLUFeedForward

    def pre_norm_block(self, hidden_states: torch.Tensor, attend) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden_states = self.attention_norm(hidden_states)
        attended, weights = attend(hidden_states)
        hidden_states = hidden_states + self.dropout(attended)
        hidden_states = hidden_states + self.dropout(self.ffn(self.ffn_norm(hidden_states)))
        return hidden_states, weights


class RiNALMoEncoder(Encoder):
    layer_class = RiNALMoLayer


class RiNALMoPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = RiNALMoConfig
    _no_split_modules = ["RiNALMoLayer"]  # noqa: RUF012 - transformers reads it as a class attribute

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SwiGLUFeedForward):
            init.ones_(module.beta)


class RiNALMoModel(RiNALMoPreTrainedModel, BackboneModel):
    """RiNALMo encoder: hidden states for every token (`<cls>` and `<eos>` included)."""

    embeddings_class = TokenDropoutEmbeddings
    encoder_class = RiNALMoEncoder


class RiNALMoForMaskedLM(RiNALMoPreTrainedModel, ForMaskedLM):
    """RiNALMo with its masked-LM head (not tied to the embedding)."""


class RiNALMoForSequencePrediction(RiNALMoPreTrainedModel, ForSequencePrediction):
    """RiNALMo with a sequence-level regression / classification head."""


class RiNALMoForTokenPrediction(RiNALMoPreTrainedModel, ForTokenPrediction):
    """RiNALMo with a per-nucleotide regression / classification head."""


class RiNALMoForContactPrediction(RiNALMoPreTrainedModel, ForContactPrediction):
    """RiNALMo with a per-nucleotide-pair regression / classification head."""


class SecondaryStructureHead(nn.Module):
    """RiNALMo's SecStructPredictionHead: [x_i ; x_j] -> linear -> bottleneck ResNet blocks -> 3x3 conv ->
    the strict upper triangle mirrored (zero diagonal).

    Upstream runs it one sequence at a time (InstanceNorm over the whole map); here the norms cover each
    sequence's real pairs only and the map is zeroed outside them before every convolution, so a padded batch
    gives every sequence the map it gets alone.
    """

    def __init__(self, config: RiNALMoConfig) -> None:
        super().__init__()
        self.linear_in = nn.Linear(2 * config.hidden_size, config.ss_hidden_size)
        self.blocks = nn.ModuleList(
            BottleneckBlock(config.ss_hidden_size, config.ss_kernel_size) for _ in range(config.ss_num_layers)
        )
        self.conv_out = nn.Conv2d(
            config.ss_hidden_size, 1, kernel_size=config.ss_kernel_size, padding=config.ss_kernel_size // 2
        )

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = pair_mask(valid, features.dtype)
        x = self.linear_in(outer_concat(features)).permute(0, 3, 1, 2) * mask
        for block in self.blocks:
            x = block(x, mask)
        x = self.conv_out(x * mask).squeeze(1)
        return mirror_upper(x, keep_diagonal=False) * mask.squeeze(1)


class RiNALMoForSecondaryStructurePrediction(RiNALMoPreTrainedModel, ForSecondaryStructurePrediction):
    """RiNALMo with the secondary-structure head of `rinalmo-giga-ss` (and the masked-LM head the file keeps).
    `sigmoid(logits) > config.pair_threshold` are the pairs the authors call, before their greedy post-processing.
    `labels`: (batch, n, n) base-pair map, 1 paired, 0 unpaired, -100 ignored."""

    ss_head_class = SecondaryStructureHead
