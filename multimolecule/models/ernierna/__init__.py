from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_ernierna import ErnieRnaConfig
from .modeling_ernierna import (
    ErnieRnaForContactPrediction,
    ErnieRnaForMaskedLM,
    ErnieRnaForSecondaryStructurePrediction,
    ErnieRnaForSequencePrediction,
    ErnieRnaForTokenPrediction,
    ErnieRnaModel,
    ErnieRnaPreTrainedModel,
)

register_family(
    ErnieRnaConfig,
    RnaTokenizer,
    model=ErnieRnaModel,
    masked_lm=ErnieRnaForMaskedLM,
    sequence_prediction=ErnieRnaForSequencePrediction,
    token_prediction=ErnieRnaForTokenPrediction,
    contact_prediction=ErnieRnaForContactPrediction,
    secondary_structure=ErnieRnaForSecondaryStructurePrediction,
)

__all__ = [
    "ErnieRnaConfig",
    "ErnieRnaForContactPrediction",
    "ErnieRnaForMaskedLM",
    "ErnieRnaForSecondaryStructurePrediction",
    "ErnieRnaForSequencePrediction",
    "ErnieRnaForTokenPrediction",
    "ErnieRnaModel",
    "ErnieRnaPreTrainedModel",
]
