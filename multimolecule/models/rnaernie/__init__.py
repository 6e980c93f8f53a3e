from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_rnaernie import RnaErnieConfig
from .modeling_rnaernie import (
    RnaErnieForContactPrediction,
    RnaErnieForMaskedLM,
    RnaErnieForSequencePrediction,
    RnaErnieForTokenPrediction,
    RnaErnieModel,
    RnaErniePreTrainedModel,
)

register_family(
    RnaErnieConfig,
    RnaTokenizer,
    model=RnaErnieModel,
    masked_lm=RnaErnieForMaskedLM,
    sequence_prediction=RnaErnieForSequencePrediction,
    token_prediction=RnaErnieForTokenPrediction,
    contact_prediction=RnaErnieForContactPrediction,
)

__all__ = [
    "RnaErnieConfig",
    "RnaErnieForContactPrediction",
    "RnaErnieForMaskedLM",
    "RnaErnieForSequencePrediction",
    "RnaErnieForTokenPrediction",
    "RnaErnieModel",
    "RnaErniePreTrainedModel",
]
