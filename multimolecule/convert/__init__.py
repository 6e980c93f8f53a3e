"""Converting published upstream checkpoints into MultiMolecule models: `python -m multimolecule.convert`."""

from .engine import Conversion, Converter, KeyMap, fairseq_vocabulary
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
