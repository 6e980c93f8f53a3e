"""RNA-FM: the shared encoder and heads, plus the ResNet secondary-structure head of `rnafm-ss`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from ...modules.criterion import IGNORE_INDEX
from ...modules.heads import nucleotide_mask, pack_tokens
from ...modules.pairwise import ResidualBlock, mirror_upper, outer_concat, pair_mask
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
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


@dataclass
class SecondaryStructureOutput(ModelOutput):
    """`logits`: base-pairing logits (batch, n, n), symmetric, before the sigmoid; `mask`: real pairs;
    `lm_logits` and `contacts`: the masked-LM head and the contact regression the release also carries."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    lm_logits: torch.Tensor | None = None
    contacts: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class SecondaryStructureHead(nn.Module):
    """RNA-FM's pairwise-concatenation ResNet (the `pc-resnet_1_sym_first` predictor of the release).

    The feature map is zeroed outside each sequence's n x n square before every convolution, so a sequence
    gets the same map in a padded batch as alone (upstream's batched output depends on the padding).
    """

    def __init__(self, config: RnaFmConfig) -> None:
        super().__init__()
        self.pre_reduction = nn.Linear(config.hidden_size, config.ss_reduction_size)
        self.first = nn.Conv2d(2 * config.ss_reduction_size, config.ss_hidden_size, kernel_size=1)
        self.blocks = nn.ModuleList(
            ResidualBlock(config.ss_hidden_size, dilation=2 ** (index % 3), dropout=config.ss_dropout)
            for index in range(config.ss_num_layers)
        )
        self.final = nn.Conv2d(config.ss_hidden_size, 1, kernel_size=3, padding=1)

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = pair_mask(valid, features.dtype)
        x = self.first(outer_concat(self.pre_reduction(features)) * mask)
        for block in self.blocks:
            x = block(x, mask)
        x = self.final(x * mask).squeeze(1)
        return mirror_upper(x) * mask.squeeze(1)


class RnaFmForSecondaryStructurePrediction(RnaFmPreTrainedModel, ForMaskedLM):
    """RNA-FM with the ResNet secondary-structure head of `rnafm-ss` (and the masked-LM and contact heads the
    file also holds). `labels`: (batch, n, n) base-pair map, 1 paired, 0 unpaired, -100 ignored."""

    def __init__(self, config: RnaFmConfig) -> None:
        super().__init__(config)
        self.ss_head = SecondaryStructureHead(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_contacts: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SecondaryStructureOutput | tuple:
        if attention_mask is None:
            attention_mask = input_ids.ne(self.config.pad_token_id)
        lm = super().forward(
            input_ids,
            attention_mask,
            return_contacts=return_contacts,
            output_attentions=output_attentions,
            output_hidden_states=True,
            return_dict=True,
            **kwargs,
        )
        features, valid = pack_tokens(lm.hidden_states[-1], nucleotide_mask(self.config, input_ids, attention_mask))
        logits = self.ss_head(features, valid)
        mask = valid.unsqueeze(-1) & valid.unsqueeze(-2)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape:
                raise ValueError(f"labels have shape {tuple(labels.shape)}; expected {tuple(logits.shape)}")
            labels = labels.to(logits.device)
            keep = mask & (labels != IGNORE_INDEX)
            loss = nn.functional.binary_cross_entropy_with_logits(logits[keep].float(), labels[keep].float())
        output = SecondaryStructureOutput(
            loss=loss,
            logits=logits,
            mask=mask,
            lm_logits=lm.logits,
            contacts=lm.contacts,
            hidden_states=lm.hidden_states if output_hidden_states else None,
            attentions=lm.attentions,
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()
