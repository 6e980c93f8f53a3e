from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_utrlm import UtrLmConfig
from .modeling_utrlm import (
    UtrLmForContactPrediction,
    UtrLmForMaskedLM,
    UtrLmForPreTraining,
    UtrLmForSequencePrediction,
    UtrLmForTokenPrediction,
    UtrLmModel,
    UtrLmPreTrainedModel,
    UtrLmPreTrainingOutput,
)

register_family(
    UtrLmConfig,
    RnaTokenizer,
    model=UtrLmModel,
    masked_lm=UtrLmForMaskedLM,
    sequence_prediction=UtrLmForSequencePrediction,
    token_prediction=UtrLmForTokenPrediction,
    contact_prediction=UtrLmForContactPrediction,
)

__all__ = [
    "UtrLmConfig",
    "UtrLmForContactPrediction",
    "UtrLmForMaskedLM",
    "UtrLmForPreTraining",
    "UtrLmForSequencePrediction",
    "UtrLmForTokenPrediction",
    "UtrLmModel",
    "UtrLmPreTrainedModel",
    "UtrLmPreTrainingOutput",
]
