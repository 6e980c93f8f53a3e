"""RNA-FM's configuration: the shared encoder's switches set to the published `rnafm` hyperparameters."""

from __future__ import annotations

from ..configuration_utils import MultiMoleculeConfig


class RnaFmConfig(MultiMoleculeConfig):
    r"""Configuration of [RNA-FM](https://github.com/ml4bio/RNA-FM) (Chen et al., 2022).

    Defaults are the published `rnafm` checkpoint: 12 pre-norm layers of width 640 with 20 heads, learned
    positions for 1024 tokens (rows 0 and 1 of the position table are reserved, as in fairseq, so the first
    token uses row 2), a layer norm on the embeddings and after the last layer, and the ESM-style contact
    regression the release carries. `mrnafm` is the same model at width 1280 over codons, without the
    embedding norm. `ss_*` size the ResNet secondary-structure head of `rnafm-ss`.

    Example:
        >>> from multimolecule import RnaFmConfig, RnaFmModel
        >>> model = RnaFmModel(RnaFmConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
        ...                                intermediate_size=128))
    """

    model_type = "rnafm"

    hidden_size: int = 640
    num_hidden_layers: int = 12
    num_attention_heads: int = 20
    intermediate_size: int = 5120
    max_position_embeddings: int = 1024
    position_offset: int = 2
    layer_norm_eps: float = 1e-5
    embedding_norm: bool = True
    attention_contact_head: bool = True
    ss_reduction_size: int = 128
    ss_hidden_size: int = 64
    ss_num_layers: int = 32
    ss_dropout: float = 0.3
