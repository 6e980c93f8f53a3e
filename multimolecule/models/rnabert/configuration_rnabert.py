"""RNABERT's configuration: the shared encoder's switches set to the published `rnabert` hyperparameters."""

from __future__ import annotations

from ..configuration_utils import BertStyleConfig


class RnaBertConfig(BertStyleConfig):
    r"""Configuration of [RNABERT](https://github.com/mana438/RNABERT) (Akiyama and Sakakibara, 2022).

    Defaults are the published checkpoint: a post-norm BERT encoder of 6 layers, width 120 (12 heads of 10),
    a feed-forward only 40 wide, learned positions for 440 nucleotides counted from the first one (RNABERT adds no
    special tokens), a layer norm on the embeddings, a two-row token-type table of which row 0 is always used,
    a pooler, no dropout, and layer-norm epsilon 1e-12. Its masked-LM head has no activation (upstream's GELU is
    commented out) and an untied decoder; `ss_size` is the number of classes of its per-nucleotide structure head.
    """

    model_type = "rnabert"

    hidden_size: int = 120
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 40
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    max_position_embeddings: int = 440
    add_pooler: bool = True
    lm_head_act: str = "linear"
    tie_word_embeddings: bool = False
    ss_size: int = 8
