from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_rnabert import RnaBertConfig
from .modeling_rnabert import (
    RnaBertForContactPrediction,
    RnaBertForMaskedLM,
    RnaBertForPreTraining,
    RnaBertForSequencePrediction,
    RnaBertForTokenPrediction,
    RnaBertModel,
    RnaBertPreTrainedModel,
    RnaBertPreTrainingOutput,
)

register_family(
    RnaBertConfig,
    RnaTokenizer,
    model=RnaBertModel,
    masked_lm=RnaBertForMaskedLM,
    sequence_prediction=RnaBertForSequencePrediction,
    token_prediction=RnaBertForTokenPrediction,
    contact_prediction=RnaBertForContactPrediction,
    pre_training=RnaBertForPreTraining,
)

__all__ = [
    "RnaBertConfig",
    "RnaBertForContactPrediction",
    "RnaBertForMaskedLM",
    "RnaBertForPreTraining",
    "RnaBertForSequencePrediction",
    "RnaBertForTokenPrediction",
    "RnaBertModel",
    "RnaBertPreTrainedModel",
    "RnaBertPreTrainingOutput",
]
