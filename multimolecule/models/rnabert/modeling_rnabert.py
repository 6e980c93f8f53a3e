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

    output_class = RnaBertPreTrainingOutput

    def __init__(self, config: RnaBertConfig) -> None:
        super().__init__(config)
        self.ss_head = MaskedLMHead(config, config.ss_size)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def head_outputs(self, last_hidden_state, input_ids, attention_mask, labels, fields) -> dict:
        return {
            "ss_logits": self.ss_head(last_hidden_state),
            "seq_relationship_logits": self.seq_relationship(fields["pooler_output"]),
        }
