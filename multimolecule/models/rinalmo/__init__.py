from ...tokenisers import RnaTokenizer
from ..registry import register_family
from .configuration_rinalmo import RiNALMoConfig
from .modeling_rinalmo import (
    RiNALMoForContactPrediction,
    RiNALMoForMaskedLM,
    RiNALMoForSecondaryStructurePrediction,
    RiNALMoForSequencePrediction,
    RiNALMoForTokenPrediction,
    RiNALMoModel,
    RiNALMoPreTrainedModel,
)

register_family(
    RiNALMoConfig,
    RnaTokenizer,
    model=RiNALMoModel,
    masked_lm=RiNALMoForMaskedLM,
    sequence_prediction=RiNALMoForSequencePrediction,
    token_prediction=RiNALMoForTokenPrediction,
    contact_prediction=RiNALMoForContactPrediction,
    secondary_structure=RiNALMoForSecondaryStructurePrediction,
)

__all__ = [
    "RiNALMoConfig",
    "RiNALMoForContactPrediction",
    "RiNALMoForMaskedLM",
    "RiNALMoForSecondaryStructurePrediction",
    "RiNALMoForSequencePrediction",
    "RiNALMoForTokenPrediction",
    "RiNALMoModel",
    "RiNALMoPreTrainedModel",
]
