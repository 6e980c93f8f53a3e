from .attention import SelfAttention, eager_attention
from .criterion import IGNORE_INDEX, prediction_loss, resolve_problem_type
from .encoder import Embeddings, Encoder, EncoderLayer, FeedForward, TokenDropoutEmbeddings
from .heads import (
    AttentionContactHead,
    ContactPredictionHead,
    MaskedLMHead,
    PredictionHead,
    attention_pairs,
    nucleotide_mask,
    pack_tokens,
)
from .positions import RotaryEmbedding, sinusoidal_table

__all__ = [
    "IGNORE_INDEX",
    "AttentionContactHead",
    "ContactPredictionHead",
    "Embeddings",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "MaskedLMHead",
    "PredictionHead",
    "RotaryEmbedding",
    "SelfAttention",
    "TokenDropoutEmbeddings",
    "attention_pairs",
    "eager_attention",
    "nucleotide_mask",
    "pack_tokens",
    "prediction_loss",
    "resolve_problem_type",
    "sinusoidal_table",
]
