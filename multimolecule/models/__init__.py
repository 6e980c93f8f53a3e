from .configuration_utils import MultiMoleculeConfig
from .modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MaskedLMOutput,
    MultiMoleculePreTrainedModel,
    PredictionOutput,
)
from .registry import (
    AutoModelForContactPrediction,
    AutoModelForSequencePrediction,
    AutoModelForTokenPrediction,
    register_family,
)
from .rnafm import (
    RnaFmConfig,
    RnaFmForContactPrediction,
    RnaFmForMaskedLM,
    RnaFmForSecondaryStructurePrediction,
    RnaFmForSequencePrediction,
    RnaFmForTokenPrediction,
    RnaFmModel,
    RnaFmPreTrainedModel,
)

__all__ = [
    "AutoModelForContactPrediction",
    "AutoModelForSequencePrediction",
    "AutoModelForTokenPrediction",
    "BackboneModel",
    "ForContactPrediction",
    "ForMaskedLM",
    "ForSequencePrediction",
    "ForTokenPrediction",
    "MaskedLMOutput",
    "MultiMoleculeConfig",
    "MultiMoleculePreTrainedModel",
    "PredictionOutput",
    "RnaFmConfig",
    "RnaFmForContactPrediction",
    "RnaFmForMaskedLM",
    "RnaFmForSecondaryStructurePrediction",
    "RnaFmForSequencePrediction",
    "RnaFmForTokenPrediction",
    "RnaFmModel",
    "RnaFmPreTrainedModel",
    "register_family",
]
