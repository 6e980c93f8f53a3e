"""RNA-MSM's configuration: the shared encoder's switches and the alignment limits, set to the published model."""

from __future__ import annotations

from ..configuration_utils import MultiMoleculeConfig


class RnaMsmConfig(MultiMoleculeConfig):
    r"""Configuration of [RNA-MSM](https://github.com/yikunpku/RNA-MSM) (Zhang et al., 2023).

    Defaults are the published checkpoint: an MSA Transformer of 10 pre-norm axial layers (tied row attention,
    column attention, feed-forward) of width 768 with 12 heads, learned positions for 1024 columns (the first
    token uses row 2 of the table, as in fairseq), one learned scalar per alignment row, a layer norm on the
    embeddings and after the last layer, and the ESM contact regression over the row attentions.

    Alignment limits:
        max_alignment_rows: the most rows an alignment may have (the rows of the learned row embedding).
        max_tokens_per_alignment: above rows x columns of this, column attention and the feed-forward block run
            over chunks of columns (exact: columns are independent there), as upstream does above its
            `max_tokens_per_msa`, so memory grows with the alignment, not with its square.

    Example:
        >>> from multimolecule import RnaMsmConfig, RnaMsmModel
        >>> model = RnaMsmModel(RnaMsmConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
        ...                                  intermediate_size=128))
    """

    model_type = "rnamsm"

    hidden_size: int = 768
    num_hidden_layers: int = 10
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 1024
    position_offset: int = 2
    layer_norm_eps: float = 1e-5
    embedding_norm: bool = True
    attention_contact_head: bool = True
    max_alignment_rows: int = 1024
    max_tokens_per_alignment: int = 16384
