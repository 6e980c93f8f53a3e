from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_splicebert import SpliceBertConfig
from .modeling_splicebert import (
    SpliceBertForContactPrediction,
    SpliceBertForMaskedLM,
    SpliceBertForSequencePrediction,
    SpliceBertForTokenPrediction,
    SpliceBertModel,
    SpliceBertPreTrainedModel,
)

register_family(
    SpliceBertConfig,
    RnaTokenizer,
    model=SpliceBertModel,
    masked_lm=SpliceBertForMaskedLM,
    sequence_prediction=SpliceBertForSequencePrediction,
    token_prediction=SpliceBertForTokenPrediction,
    contact_prediction=SpliceBertForContactPrediction,
)

__all__ = [
    "SpliceBertConfig",
    "SpliceBertForContactPrediction",
    "SpliceBertForMaskedLM",
    "SpliceBertForSequencePrediction",
    "SpliceBertForTokenPrediction",
    "SpliceBertModel",
    "SpliceBertPreTrainedModel",
]
