"""The one transformer encoder every family configures: embeddings, layers, final norm.

Built timm style from the classes it is made of: `Encoder.layer_class`, `EncoderLayer.attention_class` and
`EncoderLayer.ffn_class` (and `BackboneModel.embeddings_class` / `.encoder_class` one level up) are class
attributes; a family whose layer or feed-forward block differs subclasses that one piece and hands it to the
stack, instead of adding a switch every other family then carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput

from .attention import SelfAttention
from .packing import PackedTokens
from .positions import RotaryEmbedding, RotaryTable, sinusoidal_table


class Embeddings(nn.Module):
    """Token embedding plus learned or sinusoidal positions (and token types, where the release has them), an
    optional norm, padding zeroed."""

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = None
        if config.position_embedding_type == "absolute":
            rows = config.max_position_embeddings + config.position_offset
            self.position_embeddings = nn.Embedding(rows, config.hidden_size)
        self.token_type_embeddings = (
            nn.Embedding(config.type_vocab_size, config.hidden_size) if config.type_vocab_size else None
        )
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.embedding_norm else None
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        attention_mask: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeddings = self.token_embeddings(attention_mask, input_ids, inputs_embeds)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:  # row 0 for every token, as every release used it
                embeddings = embeddings + self.token_type_embeddings.weight[0]
            else:
                embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if position_ids is None:
            # counted over real tokens, so left and right padding give the same positions
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        if self.position_embeddings is not None:
            embeddings = embeddings + self.position_embeddings(position_ids + self.config.position_offset)
        elif self.config.position_embedding_type == "sinusoidal":
            table = sinusoidal_table(position_ids + self.config.position_offset, embeddings.shape[-1], embeddings.dtype)
            embeddings = embeddings + table
        if self.layer_norm is not None:
            embeddings = self.layer_norm(embeddings)
        embeddings = embeddings * attention_mask.unsqueeze(-1).to(embeddings.dtype)
        return self.dropout(embeddings)

    def token_embeddings(
        self, attention_mask: torch.Tensor, input_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        """The embedding of each token, before positions, token types and the norm are added."""
        return self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds


class TokenDropoutEmbeddings(Embeddings):
    """ESM-2's token dropout, which UTR-LM and RiNALMo keep at inference: `<mask>` embeddings are zeroed and every
    embedding of a sequence is scaled by (1 - 0.15 * 0.8) / (1 - its share of `<mask>` tokens), the share counted
    over its real tokens (special tokens included); x0.88 for a sequence without `<mask>`.

    `<mask>` is `config.mask_token_id`. Given `inputs_embeds` only, no token is known to be `<mask>` and the
    embeddings are scaled by 0.88, as the model always saw them.
    """

    # masking rate x share of masked positions replaced by <mask> during pre-training (ESM-2's constants)
    mask_ratio_train: ClassVar[float] = 0.15 * 0.8

    def token_embeddings(self, attention_mask, input_ids, inputs_embeds):
        embeddings = super().token_embeddings(attention_mask, input_ids, inputs_embeds)
        if input_ids is None:
            return embeddings * (1 - self.mask_ratio_train)
        masked = input_ids.eq(self.config.mask_token_id)
        embeddings = embeddings.masked_fill(masked.unsqueeze(-1), 0.0)
        lengths = attention_mask.sum(-1).clamp(min=1).to(embeddings.dtype)
        observed = masked.sum(-1).to(embeddings.dtype) / lengths
        scale = (1 - self.mask_ratio_train) / (1 - observed)
        return embeddings * scale[:, None, None]


class FeedForward(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACT2FN[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation(self.fc1(hidden_states))))


class EncoderLayer(GradientCheckpointingLayer):
    """Attention and feed-forward blocks, each with a residual; the norms go before (`pre`) or after (`post`).

    `attention_class` and `ffn_class` are built with the config; a family overrides them in a subclass.

    Everything but the attention treats each token alone, so the layer runs packed (hidden states
    (tokens, hidden), `PackedTokens` as the mask) whenever its attention does; a subclass whose blocks need the
    (batch, length) layout sets `supports_packed = False`.
    """

    attention_class: ClassVar[type[nn.Module]] = SelfAttention
    ffn_class: ClassVar[type[nn.Module]] = FeedForward
    supports_packed: ClassVar[bool] = True

    def __init__(self, config) -> None:
        super().__init__()
        self.pre_norm = config.layer_norm_position == "pre"
        self.attention = self.attention_class(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = self.ffn_class(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    @classmethod
    def runs_packed(cls) -> bool:
        """Whether the layer, its attention included, takes hidden states packed to the real tokens."""
        return cls.supports_packed and getattr(cls.attention_class, "supports_packed", False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | PackedTokens | None = None,
        rotary: RotaryTable | None = None,
        output_attentions: bool = False,
        bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(hidden states, attention weights when asked for, the scores the next layer adds when `bias` flows)."""
        carried = None

        def attend(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            nonlocal carried
            output, weights, carried = self.attention(x, attention_mask, rotary, output_attentions, bias)
            return output, weights

        block = self.pre_norm_block if self.pre_norm else self.post_norm_block
        return (*block(hidden_states, attend), carried)

    def pre_norm_block(self, hidden_states: torch.Tensor, attend) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x + attention(norm(x)), then x + ffn(norm(x)); `attend` runs the attention with the layer's mask."""
        attended, weights = attend(self.attention_norm(hidden_states))
        hidden_states = hidden_states + self.dropout(attended)
        hidden_states = hidden_states + self.dropout(self.ffn(self.ffn_norm(hidden_states)))
        return hidden_states, weights

    def post_norm_block(self, hidden_states: torch.Tensor, attend) -> tuple[torch.Tensor, torch.Tensor | None]:
        """norm(x + attention(x)), then norm(x + ffn(x)) (BERT)."""
        attended, weights = attend(hidden_states)
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))
        hidden_states = self.ffn_norm(hidden_states + self.dropout(self.ffn(hidden_states)))
        return hidden_states, weights


@dataclass
class EncoderOutput(BaseModelOutput):
    """`attention_scores`: the last layer's pre-softmax scores (batch, heads, length, length), the flowing bias
    included, when a `bias` flows through the layers; padded keys hold the dtype's minimum."""

    attention_scores: torch.Tensor | None = None


class Encoder(nn.Module):
    """The stack of `layer_class` layers. `hidden_states[-1]` of the output is the final (normed)
    `last_hidden_state`.

    A `bias` (batch, heads, length, length) flows through the stack: the first layer adds it to its attention
    scores and each layer hands its pre-softmax scores to the next (eager attention). Without one, nothing
    extra is computed or kept.

    A padded batch (`token_mask` given) runs packed where that changes nothing but the time (see `packing`): the
    layers see only the real tokens, and the outputs are padded again at the end. Either way, padded positions
    of every layer's output hold zeros (the embeddings, `hidden_states[0]`, are zeroed there already); no head
    reads them."""

    layer_class: ClassVar[type[EncoderLayer]] = EncoderLayer

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(self.layer_class(config) for _ in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.final_norm else None
        self.rotary = (
            RotaryEmbedding(config.head_dim, config.rotary_base) if config.position_embedding_type == "rotary" else None
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        bias: torch.Tensor | None = None,
        token_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """`attention_mask`: additive, as the layers' attention adds it; `token_mask` (batch, length), nonzero at
        real tokens, when the batch has padding (it allows packed execution)."""
        all_hidden_states = [hidden_states] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        rotary = None
        if self.rotary is not None:  # once per pass, not once per layer (on the padded length)
            rotary = self.rotary.table(hidden_states.shape[-2], hidden_states.device, hidden_states.dtype)
        packing = self.packing(token_mask, attention_mask, output_attentions, bias)
        if packing is not None:
            hidden_states, attention_mask = packing.pack(hidden_states), packing
        for layer in self.layers:
            hidden_states, weights, bias = layer(hidden_states, attention_mask, rotary, output_attentions, bias)
            if output_hidden_states:
                all_hidden_states.append(hidden_states)
            if output_attentions:
                all_attentions.append(weights)
        if self.final_norm is not None:
            hidden_states = self.final_norm(hidden_states)
        as_returned = self.padded_output(packing, token_mask)
        hidden_states = as_returned(hidden_states)
        if output_hidden_states:
            all_hidden_states[1:-1] = map(as_returned, all_hidden_states[1:-1])
            all_hidden_states[-1] = hidden_states
        return EncoderOutput(
            last_hidden_state=hidden_states,
            hidden_states=tuple(all_hidden_states) if output_hidden_states else None,
            attentions=tuple(all_attentions) if output_attentions else None,
            attention_scores=bias,
        )

    @staticmethod
    def padded_output(
        packing: PackedTokens | None, token_mask: torch.Tensor | None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """How a layer's output is returned: in the padded layout, zero at padded positions whichever path ran, so
        that packed, padded and compiled runs return the same tensors."""
        if packing is not None:
            return packing.pad
        if token_mask is None:
            return lambda hidden_states: hidden_states
        padding = ~token_mask.bool().unsqueeze(-1)
        return lambda hidden_states: hidden_states.masked_fill(padding, 0.0)

    def packing(
        self,
        token_mask: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        output_attentions: bool,
        bias: torch.Tensor | None,
    ) -> PackedTokens | None:
        """Where the real tokens of a padded batch are, when the layers can run on them alone; None runs the padded
        rectangle. Not packed: no padding; a layer that needs the (batch, length) layout; attention weights or
        carried scores asked for (maps over the padded length, whose padded rows would change); tracing,
        torch.compile or torch.export (the token count depends on the data); `config.pack_padded_batches` off."""
        if token_mask is None or attention_mask is None or output_attentions or bias is not None:
            return None
        if not self.config.pack_padded_batches or not self.layer_class.runs_packed():
            return None
        if torch.compiler.is_compiling() or torch.jit.is_tracing():
            return None
        return PackedTokens.from_token_mask(token_mask, attention_mask)
