"""UTR-LM: the shared encoder with ESM-2's token dropout, and the auxiliary pre-training heads of the release
(minimum free energy on the first token, per-token secondary structure)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...modules.encoder import TokenDropoutEmbeddings
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MaskedLMOutput,
    MultiMoleculePreTrainedModel,
)
from .configuration_utrlm import UtrLmConfig


class UtrLmPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = UtrLmConfig


class UtrLmModel(UtrLmPreTrainedModel, BackboneModel):
    """UTR-LM encoder: hidden states for every token (`<cls>` and `<eos>` included)."""

    embeddings_class = TokenDropoutEmbeddings


class UtrLmForMaskedLM(UtrLmPreTrainedModel, ForMaskedLM):
    """UTR-LM with its masked-LM head and the contact regression of the release (`return_contacts=True`)."""


class UtrLmForSequencePrediction(UtrLmPreTrainedModel, ForSequencePrediction):
    """UTR-LM with a sequence-level regression / classification head."""


class UtrLmForTokenPrediction(UtrLmPreTrainedModel, ForTokenPrediction):
    """UTR-LM with a per-nucleotide regression / classification head."""


class UtrLmForContactPrediction(UtrLmPreTrainedModel, ForContactPrediction):
    """UTR-LM with a per-nucleotide-pair regression / classification head."""


@dataclass
class UtrLmPreTrainingOutput(MaskedLMOutput):
    """`mfe`: the predicted minimum free energy (batch, 1); `structure_logits`: secondary-structure logits for
    every token (batch, length, 3), special tokens included, as upstream computes them."""

    mfe: torch.Tensor | None = None
    structure_logits: torch.Tensor | None = None


class UtrLmForPreTraining(UtrLmPreTrainedModel, ForMaskedLM):
    """UTR-LM with every head of the pre-training checkpoints: masked LM, contacts, and the auxiliary minimum
    free energy (`config.mfe_head`) and secondary-structure (`config.structure_head`) heads. `labels` are the
    masked-LM labels; the auxiliary heads are outputs only."""

    output_class = UtrLmPreTrainingOutput

    def __init__(self, config: UtrLmConfig) -> None:
        super().__init__(config)
        self.mfe_head = nn.Linear(config.hidden_size, 1) if config.mfe_head else None
        self.structure_head = (
            nn.Linear(config.hidden_size, config.num_structure_labels) if config.structure_head else None
        )
        self.post_init()

    def head_outputs(self, last_hidden_state, input_ids, attention_mask, labels, fields):
        return {
            "mfe": self.mfe_head(last_hidden_state[:, 0]) if self.mfe_head is not None else None,
            "structure_logits": self.structure_head(last_hidden_state) if self.structure_head is not None else None,
        }
