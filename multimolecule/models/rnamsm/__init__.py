from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_rnamsm import RnaMsmConfig
from .modeling_rnamsm import (
    RnaMsmForContactPrediction,
    RnaMsmForMaskedLM,
    RnaMsmForSequencePrediction,
    RnaMsmForTokenPrediction,
    RnaMsmModel,
    RnaMsmModelOutput,
    RnaMsmPreTrainedModel,
)

register_family(
    RnaMsmConfig,
    RnaTokenizer,
    model=RnaMsmModel,
    masked_lm=RnaMsmForMaskedLM,
    sequence_prediction=RnaMsmForSequencePrediction,
    token_prediction=RnaMsmForTokenPrediction,
    contact_prediction=RnaMsmForContactPrediction,
)

__all__ = [
    "RnaMsmConfig",
    "RnaMsmForContactPrediction",
    "RnaMsmForMaskedLM",
    "RnaMsmForSequencePrediction",
    "RnaMsmForTokenPrediction",
    "RnaMsmModel",
    "RnaMsmModelOutput",
    "RnaMsmPreTrainedModel",
]
