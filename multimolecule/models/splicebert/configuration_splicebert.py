"""SpliceBERT's configuration: the shared encoder's switches set to the published `splicebert` hyperparameters."""

from __future__ import annotations

from ..configuration_utils import BertStyleConfig


class SpliceBertConfig(BertStyleConfig):
    r"""Configuration of [SpliceBERT](https://github.com/chenkenbio/SpliceBERT) (Chen et al., 2024).

    Defaults are the published `splicebert` (SpliceBERT.1024nt) checkpoint: a post-norm BERT encoder of 6 layers,
    width 512, 16 heads, learned positions for 1026 tokens (`splicebert.510` and `splicebert-human.510` have
    512), a layer norm on the embeddings, a two-row token-type table of which row 0 is always used, exact GELU and
    layer-norm epsilon 1e-12. The masked-LM decoder is tied to the token embedding.
    """

    model_type = "splicebert"

    hidden_size: int = 512
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 2048
    max_position_embeddings: int = 1026
