"""UTR-LM's configuration: the shared encoder's switches set to the published hyperparameters."""

from __future__ import annotations

from ..configuration_utils import MultiMoleculeConfig


class UtrLmConfig(MultiMoleculeConfig):
    r"""Configuration of [UTR-LM](https://github.com/a96123155/UTR-LM) (Chu et al., 2024).

    Defaults are the published checkpoints: an ESM-2-style encoder of 6 pre-norm layers of width 128 with
    16 heads, rotary positions, ESM-2's token dropout at inference, a layer norm after the last layer, and the
    ESM contact regression. `mfe_head` and `structure_head` are the auxiliary pre-training heads the files carry:
    minimum-free-energy regression on the first token (both releases) and 3-class per-token secondary structure
    (`utrlm-mrl` only).

    Example:
        >>> from multimolecule import UtrLmConfig, UtrLmModel
        >>> model = UtrLmModel(UtrLmConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
        ...                                intermediate_size=128))
    """

    model_type = "utrlm"

    hidden_size: int = 128
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    position_embedding_type: str = "rotary"
    layer_norm_eps: float = 1e-5
    attention_contact_head: bool = True
    mfe_head: bool = True
    structure_head: bool = False
    num_structure_labels: int = 3
