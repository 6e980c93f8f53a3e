from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_rnafm import RnaFmConfig
from .modeling_rnafm import (
    RnaFmForContactPrediction,
    RnaFmForMaskedLM,
    RnaFmForSecondaryStructurePrediction,
    RnaFmForSequencePrediction,
    RnaFmForTokenPrediction,
    RnaFmModel,
    RnaFmPreTrainedModel,
)

register_family(
    RnaFmConfig,
    RnaTokenizer,
    model=RnaFmModel,
    masked_lm=RnaFmForMaskedLM,
    sequence_prediction=RnaFmForSequencePrediction,
    token_prediction=RnaFmForTokenPrediction,
    contact_prediction=RnaFmForContactPrediction,
    secondary_structure=RnaFmForSecondaryStructurePrediction,
)

__all__ = [
    "RnaFmConfig",
    "RnaFmForContactPrediction",
    "RnaFmForMaskedLM",
    "RnaFmForSecondaryStructurePrediction",
    "RnaFmForSequencePrediction",
    "RnaFmForTokenPrediction",
    "RnaFmModel",
    "RnaFmPreTrainedModel",
]
