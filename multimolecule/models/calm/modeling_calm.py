"""CaLM: the shared encoder and heads as they are. Its interleaved rotary layout is turned into the shared
half-split one at conversion (a permutation of the query and key projection rows), so nothing here is its own."""

from __future__ import annotations

from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
)
from .configuration_calm import CaLmConfig


class CaLmPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = CaLmConfig


class CaLmModel(CaLmPreTrainedModel, BackboneModel):
    """CaLM encoder: hidden states for every codon token (`<cls>` and `<eos>` included)."""


class CaLmForMaskedLM(CaLmPreTrainedModel, ForMaskedLM):
    """CaLM with its masked-LM head (tied to the codon embedding)."""


class CaLmForSequencePrediction(CaLmPreTrainedModel, ForSequencePrediction):
    """CaLM with a sequence-level regression / classification head."""


class CaLmForTokenPrediction(CaLmPreTrainedModel, ForTokenPrediction):
    """CaLM with a per-codon regression / classification head."""


class CaLmForContactPrediction(CaLmPreTrainedModel, ForContactPrediction):
    """CaLM with a per-codon-pair regression / classification head."""
