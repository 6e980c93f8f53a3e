"""RNAErnie: the shared encoder and heads, composed."""

from __future__ import annotations

from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
)
from .configuration_rnaernie import RnaErnieConfig


class RnaErniePreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = RnaErnieConfig


class RnaErnieModel(RnaErniePreTrainedModel, BackboneModel):
    """RNAErnie encoder: hidden states for every token."""


class RnaErnieForMaskedLM(RnaErniePreTrainedModel, ForMaskedLM):
    """RNAErnie with its masked-LM head."""


class RnaErnieForSequencePrediction(RnaErniePreTrainedModel, ForSequencePrediction):
    """RNAErnie with a sequence-level regression / classification head."""


class RnaErnieForTokenPrediction(RnaErniePreTrainedModel, ForTokenPrediction):
    """RNAErnie with a per-nucleotide regression / classification head."""


class RnaErnieForContactPrediction(RnaErniePreTrainedModel, ForContactPrediction):
    """RNAErnie with a per-nucleotide-pair regression / classification head."""
