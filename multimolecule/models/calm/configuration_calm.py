"""CaLM's configuration: the shared encoder's switches set to the published `calm` hyperparameters."""

from __future__ import annotations

from ...tokenisers import RNA
from ..configuration_utils import MultiMoleculeConfig


class CaLmConfig(MultiMoleculeConfig):
    r"""Configuration of [CaLM](https://github.com/oxpig/CaLM) (Outeiral and Deane, 2024).

    Defaults are the published `calm` checkpoint: 12 pre-norm layers of width 768 with 12 heads, rotary
    positions, a layer norm after the last layer and no embedding norm, over codons (the RNA codon vocabulary,
    `RnaTokenizer(codon=True)`), at most 1024 tokens.

    Example:
        >>> from multimolecule import CaLmConfig, CaLmModel
        >>> model = CaLmModel(CaLmConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
        ...                              intermediate_size=128))
    """

    model_type = "calm"

    vocab_size: int = len(RNA.vocabulary(3))
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    attention_dropout: float = 0.0
    max_position_embeddings: int = 1024
    position_embedding_type: str = "rotary"
    layer_norm_eps: float = 1e-5
