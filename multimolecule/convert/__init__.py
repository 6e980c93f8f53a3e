"""Converting published upstream checkpoints into MultiMolecule models: `python -m multimolecule.convert`."""

from .engine import Conversion, Converter
from .errors import (
    CheckpointError,
    ChecksumError,
    ConversionError,
    KeyMismatchError,
    OutputExistsError,
    PushError,
    UnknownVariantError,
    UnsafeCheckpointError,
    ValidationError,
)
from .keymap import KeyMap
from .vocabulary import fairseq_vocabulary

__all__ = [
    "CheckpointError",
    "ChecksumError",
    "Conversion",
    "ConversionError",
    "Converter",
    "KeyMap",
    "KeyMismatchError",
    "OutputExistsError",
    "PushError",
    "UnknownVariantError",
    "UnsafeCheckpointError",
    "ValidationError",
    "fairseq_vocabulary",
]
