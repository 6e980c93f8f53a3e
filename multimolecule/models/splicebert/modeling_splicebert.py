"""SpliceBERT: the shared encoder and heads, composed."""

from __future__ import annotations

from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
)
from .configuration_splicebert import SpliceBertConfig


class SpliceBertPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = SpliceBertConfig


class SpliceBertModel(SpliceBertPreTrainedModel, BackboneModel):
    """SpliceBERT encoder: hidden states for every token."""


class SpliceBertForMaskedLM(SpliceBertPreTrainedModel, ForMaskedLM):
    """SpliceBERT with its masked-LM head."""


class SpliceBertForSequencePrediction(SpliceBertPreTrainedModel, ForSequencePrediction):
    """SpliceBERT with a sequence-level regression / classification head."""


class SpliceBertForTokenPrediction(SpliceBertPreTrainedModel, ForTokenPrediction):
    """SpliceBERT with a per-nucleotide regression / classification head."""


class SpliceBertForContactPrediction(SpliceBertPreTrainedModel, ForContactPrediction):
    """SpliceBERT with a per-nucleotide-pair regression / classification head."""
