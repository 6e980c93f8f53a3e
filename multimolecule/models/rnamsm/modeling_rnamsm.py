"""RNA-MSM: an MSA Transformer over alignments (batch, rows, columns), built from the shared pieces.

Its own modules are the tied row attention, the column attention and the axial layer that chains them with the
shared feed-forward block; the embeddings add one learned scalar per alignment row. Both attentions go through
the shared attention interface: tied row attention is ordinary attention whose head vectors are every row's,
side by side, so one dot product sums the scores over the rows.

Each alignment of a padded batch gets the output it gets alone: row attention is scaled by the alignment's own
row count (upstream uses the batch's padded count), padded positions never enter a sum or a softmax, and
contacts are computed over each alignment's own columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ...modules.attention import SelfAttention
from ...modules.encoder import Embeddings, Encoder, EncoderLayer
from ...modules.heads import AttentionContactHead, attention_pairs, nucleotide_mask
from ..modeling_utils import (
    BackboneModel,
    ForContactPrediction,
    ForMaskedLM,
    ForSequencePrediction,
    ForTokenPrediction,
    MultiMoleculePreTrainedModel,
    _mask_or_default,
)
from .configuration_rnamsm import RnaMsmConfig


@dataclass
class AlignmentMask:
    """The padding of a batch of alignments as the axial layers use it, computed once per forward pass."""

    positions: torch.Tensor  # (batch, rows, columns, 1): 1 at real tokens; padded queries leave the row sum
    rows: torch.Tensor  # (batch,): real rows of each alignment, which scale its row attention
    keys: torch.Tensor  # (batch, 1, 1, columns) additive: padded columns are never attended to
    columns: torch.Tensor  # (batch * columns, 1, 1, rows) additive: padded rows of real columns are never attended to

    @classmethod
    def from_padding(cls, attention_mask: torch.Tensor, dtype: torch.dtype) -> AlignmentMask:
        real = attention_mask.bool()
        batch, rows, columns = real.shape
        blocked = torch.finfo(dtype).min
        keys = torch.zeros(batch, 1, 1, columns, dtype=dtype, device=real.device)
        by_column = real.transpose(1, 2).reshape(batch * columns, 1, 1, rows)
        # a padded column attends over its own padding rather than over nothing: a softmax with every key masked
        # can overflow to NaN in half precision, and NaN values would leak into the next layer's real positions
        by_column = by_column | ~by_column.any(-1, keepdim=True)
        return cls(
            positions=real.unsqueeze(-1).to(dtype),
            rows=real.any(-1).sum(-1).clamp(min=1).to(dtype),
            keys=keys.masked_fill(~real[:, 0, None, None, :], blocked),
            columns=torch.zeros(by_column.shape, dtype=dtype, device=real.device).masked_fill(~by_column, blocked),
        )


class RowSelfAttention(SelfAttention):
    """Tied row attention: one (columns x columns) map per alignment and head, from scores summed over its rows
    and scaled by head_dim**-0.5 / sqrt(rows), applied to every row's values."""

    supports_packed = False  # its queries of a column are summed over the alignment's rows

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: AlignmentMask | None = None,
        rotary: None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, rows, columns, width = hidden_states.shape
        real_rows = attention_mask.rows if attention_mask is not None else hidden_states.new_full((batch,), rows)
        query = self.q_proj(hidden_states) * (self.scaling / real_rows.sqrt()).view(batch, 1, 1, 1)
        if attention_mask is not None:
            query = query * attention_mask.positions  # padding adds nothing to the sum over rows
        key, value = self.k_proj(hidden_states), self.v_proj(hidden_states)
        query, key, value = (self._rows_side_by_side(x) for x in (query, key, value))
        keys = attention_mask.keys if attention_mask is not None else None
        output, weights = self.attend(query, key, value, keys, 1.0, output_attentions)
        # (batch, columns, heads, rows * head_dim) -> (batch, rows, columns, width)
        output = output.reshape(batch, columns, self.num_heads, rows, self.head_dim).permute(0, 3, 1, 2, 4)
        return self.out_proj(output.reshape(batch, rows, columns, width)), weights

    def _rows_side_by_side(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, rows, columns, width) -> (batch, heads, columns, rows * head_dim)."""
        batch, rows, columns, _ = x.shape
        x = x.view(batch, rows, columns, self.num_heads, self.head_dim).permute(0, 3, 2, 1, 4)
        return x.reshape(batch, self.num_heads, columns, rows * self.head_dim)


class ColumnSelfAttention(SelfAttention):
    """Attention over the rows of each column, columns being independent: above `max_tokens_per_alignment`
    tokens the columns go through in chunks, so the (rows x rows) maps of all columns never coexist."""

    supports_packed = False  # it reads (batch, rows, columns, hidden)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: AlignmentMask | None = None,
        rotary: None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, None]:
        batch, rows, columns, width = hidden_states.shape
        sequences = hidden_states.transpose(1, 2).reshape(batch * columns, rows, width)
        mask = attention_mask.columns if attention_mask is not None else None
        step = max(1, self.config.max_tokens_per_alignment // rows)
        outputs = [
            super(ColumnSelfAttention, self).forward(
                sequences[start : start + step], mask[start : start + step] if mask is not None else None
            )[0]
            for start in range(0, batch * columns, step)
        ]
        return torch.cat(outputs).view(batch, columns, rows, width).transpose(1, 2), None


def per_token_chunks(function: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, limit: int) -> torch.Tensor:
    """`function` of every token, at most `limit` tokens at a time (the feed-forward block widens each token
    4-fold, which for a large alignment is the largest tensor of the layer)."""
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[0] <= limit:
        return function(x)
    return torch.cat([function(chunk) for chunk in flat.split(limit)]).view(x.shape)


class RnaMsmLayer(EncoderLayer):
    """Axial pre-norm layer: x + row_attention(norm(x)), then x + column_attention(norm(x)), then
    x + ffn(norm(x)). Returns the row attention weights when asked for."""

    supports_packed = False  # axial: both attentions need the alignment's (rows, columns) layout

    attention_class = RowSelfAttention
    column_attention_class = ColumnSelfAttention

    def __init__(self, config: RnaMsmConfig) -> None:
        super().__init__(config)
        self.column_attention = self.column_attention_class(config)
        self.column_attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.max_tokens = config.max_tokens_per_alignment

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: AlignmentMask | None = None,
        rotary: None = None,
        output_attentions: bool = False,
        bias: None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        """Row attention, column attention, feed-forward, each pre-norm with a residual; no bias flows between
        axial layers (the third output, the carried scores of the shared layer interface, is None)."""
        attended, weights = self.attention(self.attention_norm(hidden_states), attention_mask, None, output_attentions)
        hidden_states = hidden_states + self.dropout(attended)
        attended, _ = self.column_attention(self.column_attention_norm(hidden_states), attention_mask)
        hidden_states = hidden_states + self.dropout(attended)
        feed_forward = per_token_chunks(lambda x: self.ffn(self.ffn_norm(x)), hidden_states, self.max_tokens)
        return hidden_states + self.dropout(feed_forward), weights, None


class RnaMsmEncoder(Encoder):
    layer_class = RnaMsmLayer


class RnaMsmEmbeddings(Embeddings):
    """The shared embeddings (tokens, learned positions along each row, norm, padding zeroed) plus one learned
    scalar per alignment row, added to every channel."""

    def __init__(self, config: RnaMsmConfig) -> None:
        super().__init__(config)
        self.row_embeddings = nn.Parameter(torch.zeros(config.max_alignment_rows))

    def token_embeddings(self, attention_mask, input_ids, inputs_embeds):
        embeddings = super().token_embeddings(attention_mask, input_ids, inputs_embeds)
        rows = embeddings.shape[1]
        return embeddings + self.row_embeddings[:rows].view(1, rows, 1, 1).to(embeddings.dtype)


class AlignmentContactHead(AttentionContactHead):
    """The release's contact regression over the row attentions, on the query row's columns."""

    def positions(self, mask: torch.Tensor) -> torch.Tensor:
        return mask[:, 0] if mask.dim() == 3 else mask


@dataclass
class RnaMsmModelOutput(BaseModelOutputWithPooling):
    """`last_hidden_state`: every row (batch, rows, columns, hidden), or (batch, length, hidden) for a
    (batch, length) input; `query_hidden_state`: row 0 (batch, columns, hidden); `pair_representation`: the row
    attention maps between the query row's nucleotides, (batch, layers * heads, n, n) layer-major, zero outside
    each alignment's n_b x n_b square (upstream's `row_attentions` without `<cls>`); `attentions`: row attention
    maps per layer (batch, heads, columns, columns)."""

    query_hidden_state: torch.Tensor | None = None
    pair_representation: torch.Tensor | None = None


class RnaMsmPreTrainedModel(MultiMoleculePreTrainedModel):
    config_class = RnaMsmConfig
    _no_split_modules = ["RnaMsmLayer"]  # noqa: RUF012 - transformers reads it as a class attribute

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, RnaMsmEmbeddings):
            init.normal_(module.row_embeddings, std=0.01)


class RnaMsmModel(RnaMsmPreTrainedModel, BackboneModel):
    """RNA-MSM encoder over alignments (batch, rows, columns), `<cls>` opening every row; a (batch, length)
    input is a one-row alignment and comes back as (batch, length, hidden). `output_pair_representation=True`
    returns the row attention maps between nucleotides without returning the attentions themselves."""

    embeddings_class = RnaMsmEmbeddings
    encoder_class = RnaMsmEncoder
    input_layout = ("batch", "rows", "columns")

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        output_pair_representation: bool = False,
        **kwargs,
    ) -> RnaMsmModelOutput | tuple:
        reference = input_ids if input_ids is not None else inputs_embeds[..., 0] if inputs_embeds is not None else None
        one_row = reference is not None and reference.dim() == 2
        if one_row:
            inputs = (input_ids, attention_mask, position_ids, inputs_embeds)
            input_ids, attention_mask, position_ids, inputs_embeds = (_one_row(x) for x in inputs)
        elif reference is not None and reference.dim() != 3:
            shape = tuple(reference.shape)
            raise ValueError(f"expected alignments (batch, rows, columns) or sequences (batch, length), got {shape}")
        if reference is not None:
            self._check_alignment(1 if one_row else reference.shape[1], reference.shape[-1])
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        outputs = super().forward(
            input_ids,
            attention_mask,
            position_ids,
            inputs_embeds,
            output_attentions=output_attentions or output_pair_representation,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        pairs = None
        if output_pair_representation:
            mask = nucleotide_mask(self.config, input_ids, _mask_or_default(self.config, input_ids, attention_mask))
            pairs, _ = attention_pairs(outputs.attentions, mask[:, 0])

        def layout(x: torch.Tensor) -> torch.Tensor:
            return x.squeeze(1) if one_row else x

        result = RnaMsmModelOutput(
            last_hidden_state=layout(outputs.last_hidden_state),
            query_hidden_state=outputs.last_hidden_state[:, 0],
            pair_representation=pairs,
            hidden_states=tuple(map(layout, outputs.hidden_states)) if outputs.hidden_states is not None else None,
            attentions=outputs.attentions if output_attentions else None,
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return result if return_dict else result.to_tuple()

    def _check_alignment(self, rows: int, columns: int) -> None:
        limit = self.config.max_alignment_rows
        if rows == 0 or columns == 0:
            raise ValueError(f"the alignment is empty ({rows} rows × {columns} columns)")
        if rows > limit:
            raise ValueError(
                f"the alignment has {rows} rows × {columns} columns but {type(self).__name__} takes at most {limit} "
                f"rows (max_alignment_rows, the rows its row embedding was trained for); keep the query and at most "
                f"{limit - 1} other rows (upstream's inference subsamples to 512)"
            )

    @staticmethod
    def _encoder_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> AlignmentMask:
        return AlignmentMask.from_padding(attention_mask, dtype)


def _one_row(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.unsqueeze(1)


class RnaMsmForMaskedLM(RnaMsmPreTrainedModel, ForMaskedLM):
    """RNA-MSM with its masked-LM head (tied to the embedding) over every row, and the contact regression of the
    release over the row attentions (`return_contacts=True`: the query row's nucleotide pairs)."""

    contact_head_class = AlignmentContactHead


class QueryRow:
    """A shared prediction head on the query row (row 0) of each alignment; a (batch, length) input as is."""

    def features(self, hidden_states, input_ids, attention_mask):
        if hidden_states.dim() == 4:
            hidden_states, attention_mask = hidden_states[:, 0], attention_mask[:, 0]
            input_ids = input_ids[:, 0] if input_ids is not None else None
        return super().features(hidden_states, input_ids, attention_mask)


class RnaMsmForSequencePrediction(RnaMsmPreTrainedModel, QueryRow, ForSequencePrediction):
    """RNA-MSM with a sequence-level regression / classification head on the query row."""


class RnaMsmForTokenPrediction(RnaMsmPreTrainedModel, QueryRow, ForTokenPrediction):
    """RNA-MSM with a per-nucleotide regression / classification head on the query row."""


class RnaMsmForContactPrediction(RnaMsmPreTrainedModel, QueryRow, ForContactPrediction):
    """RNA-MSM with a per-nucleotide-pair regression / classification head on the query row."""
