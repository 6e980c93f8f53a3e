from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_calm import CaLmConfig
from .modeling_calm import (
    CaLmForContactPrediction,
    CaLmForMaskedLM,
    CaLmForSequencePrediction,
    CaLmForTokenPrediction,
    CaLmModel,
    CaLmPreTrainedModel,
)

register_family(
    CaLmConfig,
    RnaTokenizer,
    model=CaLmModel,
    masked_lm=CaLmForMaskedLM,
    sequence_prediction=CaLmForSequencePrediction,
    token_prediction=CaLmForTokenPrediction,
    contact_prediction=CaLmForContactPrediction,
)

__all__ = [
    "CaLmConfig",
    "CaLmForContactPrediction",
    "CaLmForMaskedLM",
    "CaLmForSequencePrediction",
    "CaLmForTokenPrediction",
    "CaLmModel",
    "CaLmPreTrainedModel",
]
