"""RNAErnie's configuration: the shared encoder's switches set to the published `rnaernie` hyperparameters."""

from __future__ import annotations

from ..configuration_utils import BertStyleConfig


class RnaErnieConfig(BertStyleConfig):
    r"""Configuration of [RNAErnie](https://github.com/CatIIIIIIII/RNAErnie) (Wang et al., 2024).

    Defaults are the published checkpoint (PaddleNLP's ERNIE): a post-norm encoder of 12 layers, width 768,
    12 heads, a 3072-wide ReLU feed-forward (the release's config omits it; PaddleNLP's default applies), learned
    positions for 513 tokens, a layer norm on the embeddings, a two-row token-type table of which row 0 is
    always used, a pooler, a ReLU masked-LM transform, and layer-norm epsilon 1e-12 everywhere.
    """

    model_type = "rnaernie"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "relu"
    max_position_embeddings: int = 513
    add_pooler: bool = True
    lm_head_act: str = "relu"
