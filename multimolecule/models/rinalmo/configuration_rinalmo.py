"""RiNALMo's configuration: the shared encoder's switches set to the published `rinalmo-giga` hyperparameters."""

from __future__ import annotations

from ..configuration_utils import MultiMoleculeConfig


class RiNALMoConfig(MultiMoleculeConfig):
    r"""Configuration of [RiNALMo](https://github.com/lbcb-sci/RiNALMo) (Penić et al., 2025).

    Defaults are the published `rinalmo-giga` checkpoint: 33 layers of width 1280 with 20 heads, rotary
    positions, bias-free attention projections, SwiGLU feed-forward blocks of width int(2/3 * 4 * 1280) = 3413,
    ESM-2's token dropout at inference, a layer norm after the last layer, and an untied masked-LM decoder.
    (`rinalmo-mega`: 30 layers of width 640, 1706; `rinalmo-micro`: 12 layers of width 480, 1280.)
    `ss_*` size the 2-D ResNet secondary-structure head of `rinalmo-giga-ss`; `pair_threshold` is the probability
    above which the authors call a pair (stored in that checkpoint).

    Example:
        >>> from multimolecule import RiNALMoConfig, RiNALMoModel
        >>> model = RiNALMoModel(RiNALMoConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
        ...                                    intermediate_size=170))
    """

    model_type = "rinalmo"

    hidden_size: int = 1280
    num_hidden_layers: int = 33
    num_attention_heads: int = 20
    intermediate_size: int = 3413
    max_position_embeddings: int = 1024
    position_embedding_type: str = "rotary"
    layer_norm_eps: float = 1e-5
    attention_bias: bool = False
    tie_word_embeddings: bool = False
    ss_hidden_size: int = 64
    ss_num_layers: int = 2
    ss_kernel_size: int = 3
