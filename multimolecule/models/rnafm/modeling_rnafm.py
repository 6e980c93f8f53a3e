"""RNA-FM: the shared encoder and heads, plus the ResNet secondary-structure head of `rnafm-ss`."""

from __future__ import annotations

import torch
from torch import nn

from ...modules.pairwise import dilated_residual_blocks, mirror_upper, outer_concat, pair_mask
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSecondaryStructurePrediction,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
)
from .configuration_rnafm import RnaFmConfig


class RnaFmPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = RnaFmConfig


class RnaFmModel(RnaFmPreTrainedModel, BackboneModel):
    """RNA-FM encoder: hidden states for every token (`<cls>` and `<eos>` included)."""


class RnaFmForMaskedLM(RnaFmPreTrainedModel, ForMaskedLM):
    """RNA-FM with its masked-LM head and the contact regression of the release (`return_contacts=True`)."""


class RnaFmForSequencePrediction(RnaFmPreTrainedModel, ForSequencePrediction):
    """RNA-FM with a sequence-level regression / classification head."""


class RnaFmForTokenPrediction(RnaFmPreTrainedModel, ForTokenPrediction):
    """RNA-FM with a per-nucleotide regression / classification head."""


class RnaFmForContactPrediction(RnaFmPreTrainedModel, ForContactPrediction):
    """RNA-FM with a per-nucleotide-pair regression / classification head."""


class SecondaryStructureHead(nn.Module):
    """RNA-FM's pairwise-concatenation ResNet (the `pc-resnet_1_sym_first` predictor of the release).

    The feature map is zeroed outside each sequence's n x n square before every convolution, so a sequence
    gets the same map in a padded batch as alone (upstream's batched output depends on the padding).
    """

    def __init__(self, config: RnaFmConfig) -> None:
        super().__init__()
        self.pre_reduction = nn.Linear(config.hidden_size, config.ss_reduction_size)
        self.first = nn.Conv2d(2 * config.ss_reduction_size, config.ss_hidden_size, kernel_size=1)
        self.blocks = dilated_residual_blocks(config.ss_hidden_size, config.ss_num_layers, config.ss_dropout)
        self.final = nn.Conv2d(config.ss_hidden_size, 1, kernel_size=3, padding=1)

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = pair_mask(valid, features.dtype)
        x = self.first(outer_concat(self.pre_reduction(features)).permute(0, 3, 1, 2) * mask)
        for block in self.blocks:
            x = block(x, mask)
        x = self.final(x * mask).squeeze(1)
        return mirror_upper(x) * mask.squeeze(1)


class RnaFmForSecondaryStructurePrediction(RnaFmPreTrainedModel, ForSecondaryStructurePrediction):
    """RNA-FM with the ResNet secondary-structure head of `rnafm-ss` (and the masked-LM and contact heads the
    file also holds). `labels`: (batch, n, n) base-pair map, 1 paired, 0 unpaired, -100 ignored."""

    ss_head_class = SecondaryStructureHead
