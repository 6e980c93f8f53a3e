"""ERNIE-RNA's configuration: the shared encoder's switches set to the published `ernierna` hyperparameters."""

from __future__ import annotations

from ..configuration_utils import MultiMoleculeConfig


class ErnieRnaConfig(MultiMoleculeConfig):
    r"""Configuration of [ERNIE-RNA](https://github.com/Bruce-ywj/ERNIE-RNA) (Yin et al., 2024).

    Defaults are the published `ernierna` checkpoint: 12 post-norm layers of width 768 with 12 heads, fairseq's
    sinusoidal positions (the first token at row 2), a layer norm on the embeddings and none after the last
    layer, a tanh pooler, a masked-LM decoder tied to the token embedding with a bias of its own, and
    layer-norm epsilon 1e-5.

    Attention is biased by a base-pairing prior (`pair_prior_hidden_size` is the width of the small MLP that
    projects it to one bias per head), and each layer adds the previous layer's pre-softmax scores to its own.
    That needs the scores, so ERNIE-RNA always runs eager attention (`attn_implementation="sdpa"` is refused).

    `ss_*` size the secondary-structure head of `ernierna-ss`, which reads head `ss_attention_head` of the last
    layer's pre-softmax scores: `ss_conv_channels` channels of two `ss_kernel_size` convolutions, then
    `ss_num_layers` dilated residual blocks of `ss_hidden_size` channels. The release calls pairs with an
    iterative constraint solver rather than a probability threshold, so `pair_threshold` is None.

    Example:
        >>> from multimolecule import ErnieRnaConfig, ErnieRnaModel
        >>> model = ErnieRnaModel(ErnieRnaConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
        ...                                      intermediate_size=128))
    """

    model_type = "ernierna"

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 1024
    position_embedding_type: str = "sinusoidal"
    position_offset: int = 2
    layer_norm_position: str = "post"
    layer_norm_eps: float = 1e-5
    embedding_norm: bool = True
    final_norm: bool = False
    add_pooler: bool = True
    pair_prior_hidden_size: int = 6
    ss_attention_head: int = 5
    ss_conv_channels: int = 8
    ss_kernel_size: int = 7
    ss_hidden_size: int = 64
    ss_num_layers: int = 8
    ss_dropout: float = 0.3
