"""RNABERT: the shared encoder and heads, plus the class that holds every head of the release."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from ...modules.heads import MaskedLMHead
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
    masked_lm_loss,
)
from .configuration_rnabert import RnaBertConfig


class RnaBertPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = RnaBertConfig


class RnaBertModel(RnaBertPreTrainedModel, BackboneModel):
    """RNABERT encoder: hidden states for every token."""


class RnaBertForMaskedLM(RnaBertPreTrainedModel, ForMaskedLM):
    """RNABERT with its masked-LM head."""


class RnaBertForSequencePrediction(RnaBertPreTrainedModel, ForSequencePrediction):
    """RNABERT with a sequence-level regression / classification head."""


class RnaBertForTokenPrediction(RnaBertPreTrainedModel, ForTokenPrediction):
    """RNABERT with a per-nucleotide regression / classification head."""


class RnaBertForContactPrediction(RnaBertPreTrainedModel, ForContactPrediction):
    """RNABERT with a per-nucleotide-pair regression / classification head."""


@dataclass
class RnaBertPreTrainingOutput(ModelOutput):
    """Every head of the release: `logits` (masked LM, over the vocabulary), `ss_logits` (per-token structure
    classes, `config.ss_size`), `pooler_output` and `seq_relationship_logits` (2 classes, from the pooler)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    ss_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class RnaBertForPreTraining(RnaBertPreTrainedModel, ForMaskedLM):
    """RNABERT with every head of the released file: masked LM, the per-nucleotide structure head, and the
    sequence-relationship head over the pooler. `labels` train the masked LM only, as the structural-alignment
    objective has no parameters of its own."""

    def __init__(self, config: RnaBertConfig) -> None:
        super().__init__(config)
        self.ss_head = MaskedLMHead(config, config.ss_size)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RnaBertPreTrainingOutput | tuple:
        outputs = self.model(
            input_ids,
            attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        hidden = outputs.last_hidden_state
        logits = self.lm_head(hidden)
        output = RnaBertPreTrainingOutput(
            loss=masked_lm_loss(logits, labels) if labels is not None else None,
            logits=logits,
            ss_logits=self.ss_head(hidden),
            seq_relationship_logits=self.seq_relationship(outputs.pooler_output),
            pooler_output=outputs.pooler_output,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()
