"""MultiMolecule: pre-trained RNA language models for Hugging Face transformers.

Importing the package registers every model family with transformers' `AutoConfig`, `AutoModel`,
`AutoModelForMaskedLM`, `AutoModelForSequenceClassification`, `AutoModelForTokenClassification` and
`AutoTokenizer`; it changes no other global state (no seeding, no logging configuration).
"""

from .models import (
    AutoModelForContactPrediction,
    AutoModelForSequencePrediction,
    AutoModelForTokenPrediction,
    CaLmConfig,
    CaLmForContactPrediction,
    CaLmForMaskedLM,
    CaLmForSequencePrediction,
    CaLmForTokenPrediction,
    CaLmModel,
    CaLmPreTrainedModel,
    MultiMoleculeConfig,
    RnaFmConfig,
    RnaFmForContactPrediction,
    RnaFmForMaskedLM,
    RnaFmForSecondaryStructurePrediction,
    RnaFmForSequencePrediction,
    RnaFmForTokenPrediction,
    RnaFmModel,
    RnaFmPreTrainedModel,
    UtrLmConfig,
    UtrLmForContactPrediction,
    UtrLmForMaskedLM,
    UtrLmForPreTraining,
    UtrLmForSequencePrediction,
    UtrLmForTokenPrediction,
    UtrLmModel,
    UtrLmPreTrainedModel,
    UtrLmPreTrainingOutput,
)
from .tokenisers import RnaTokenizer

__version__ = "0.1.0"

__all__ = [
    "AutoModelForContactPrediction",
    "AutoModelForSequencePrediction",
    "AutoModelForTokenPrediction",
    "CaLmConfig",
    "CaLmForContactPrediction",
    "CaLmForMaskedLM",
    "CaLmForSequencePrediction",
    "CaLmForTokenPrediction",
    "CaLmModel",
    "CaLmPreTrainedModel",
    "MultiMoleculeConfig",
    "RnaFmConfig",
    "RnaFmForContactPrediction",
    "RnaFmForMaskedLM",
    "RnaFmForSecondaryStructurePrediction",
    "RnaFmForSequencePrediction",
    "RnaFmForTokenPrediction",
    "RnaFmModel",
    "RnaFmPreTrainedModel",
    "RnaTokenizer",
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
