"""What every family's models are made of.

A family writes `class XxxModel(XxxPreTrainedModel, BackboneModel)` and one line per head,
`class XxxForMaskedLM(XxxPreTrainedModel, ForMaskedLM)`; the heads build the family's backbone, which
`BackboneModel` subclasses register under their `model_type` when they are defined.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from ..modules.criterion import IGNORE_INDEX, prediction_loss
from ..modules.encoder import Embeddings, Encoder
from ..modules.heads import (
    AttentionContactHead,
    ContactPredictionHead,
    MaskedLMHead,
    Pooler,
    PredictionHead,
    first_real_token,
    nucleotide_mask,
    pack_tokens,
)
from ..modules.precision import warn_if_slow_bf16
from .configuration_utils import MultiMoleculeConfig

_BACKBONES: dict[str, type[BackboneModel]] = {}


@dataclass
class BackboneOutput(BaseModelOutputWithPooling):
    """`attention_scores`: the last layer's pre-softmax attention scores (batch, heads, length, length), for a
    family whose attention bias flows from layer to layer (`BackboneModel.pair_bias_class`); None otherwise."""

    attention_scores: torch.Tensor | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    """`logits` over the vocabulary for every token; `contacts` (batch, n, n) when asked for; `pooler_output`
    where the release has a pooler; `attention_scores` as in `BackboneOutput`."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    contacts: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    attention_scores: torch.Tensor | None = None


@dataclass
class PredictionOutput(ModelOutput):
    """`logits` is (batch, num_labels) for sequences, (batch, length, num_labels) for tokens and
    (batch, length * length, num_labels) for contacts: one output per input token (pair), special tokens and
    padding included, as transformers' pipelines, collators and Trainer expect. Contacts are flat (pair (i, j) at
    i * length + j) because Trainer pads and concatenates batches along one dimension only; `unflatten(1,
    (length, length))` gives the map. `mask` (batch, length) is True at nucleotides; `nucleotides()` keeps
    only those."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    def nucleotides(self) -> list[torch.Tensor]:
        """Per sequence, the logits at its nucleotides only: (n, num_labels) for tokens, (n, n, num_labels) for
        contacts; special tokens and padding removed."""
        if self.mask is None:
            raise ValueError("sequence outputs have one row per sequence; there are no nucleotide positions")
        length = self.mask.shape[1]
        pairs = self.logits.shape[1] != length
        rows = []
        for logits, mask in zip(self.logits, self.mask, strict=True):
            rows.append(logits.unflatten(0, (length, length))[mask][:, mask] if pairs else logits[mask])
        return rows


class MultiMoleculePreTrainedModel(PreTrainedModel):
    config_class = MultiMoleculeConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _no_split_modules: ClassVar[list[str]] = ["EncoderLayer"]

    def _backbone(self) -> BackboneModel:
        try:
            backbone_class = _BACKBONES[self.config_class.model_type]
        except KeyError:
            raise TypeError(
                f"{type(self).__name__}: no backbone is defined for {self.config_class.model_type!r}"
            ) from None
        return backbone_class(self.config)


class BackboneModel(MultiMoleculePreTrainedModel):
    """Embeddings and encoder; returns `last_hidden_state` for every token, special tokens included, and
    `pooler_output` when the release has a pooler (`config.add_pooler`).

    Built from `embeddings_class` and `encoder_class`: a family whose embeddings or layers differ sets its own
    (e.g. `embeddings_class = TokenDropoutEmbeddings`, an encoder whose `layer_class` is the family's layer).

    `pair_bias_class`, when a family sets it, is built with the config and called on `input_ids`; it returns
    an additive attention bias (batch, heads, length, length) that flows through the layers (each layer adds
    the previous one's pre-softmax scores, eager attention), and the last layer's scores are returned as
    `attention_scores`. Families without it compute and keep nothing extra.
    """

    embeddings_class: ClassVar[type[nn.Module]] = Embeddings
    encoder_class: ClassVar[type[nn.Module]] = Encoder
    pair_bias_class: ClassVar[type[nn.Module] | None] = None
    # the dimensions of `input_ids`; an alignment model takes ("batch", "rows", "columns")
    input_layout: ClassVar[tuple[str, ...]] = ("batch", "length")

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        _BACKBONES[cls.config_class.model_type] = cls

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = self.encoder_class(config)
        self.pair_bias = self.pair_bias_class(config) if self.pair_bias_class is not None else None
        self.pooler = Pooler(config) if config.add_pooler else None
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> BackboneOutput | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if self.pair_bias is not None and input_ids is None:
            raise ValueError(f"{type(self).__name__} computes its pair bias from the tokens: pass input_ids")
        reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
        if attention_mask is None:
            attention_mask = (
                input_ids.ne(self.config.pad_token_id)
                if input_ids is not None
                else torch.ones(reference.shape, dtype=torch.long, device=reference.device)
            )
        types = self.config.type_vocab_size
        # Under torch.compile / torch.export the host-side checks would break the graph: skip them, and always
        # pass the mask (its absence only selects a faster kernel).
        compiling = torch.compiler.is_compiling()
        padded = True if compiling else self._check_inputs(input_ids, attention_mask, token_type_ids)
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = (
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        if types == 0:
            token_type_ids = None  # no table: accepted and ignored (see MultiMoleculeConfig.type_vocab_size)
        if not compiling:
            warn_if_slow_bf16(self.embeddings.word_embeddings.weight)
        embeddings = self.embeddings(attention_mask, input_ids, inputs_embeds, position_ids, token_type_ids)
        encoded = self.encoder(
            embeddings,
            self._encoder_mask(attention_mask, embeddings.dtype) if padded else None,  # None: SDPA's fastest kernel
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            bias=self.pair_bias(input_ids).to(embeddings.dtype) if self.pair_bias is not None else None,
            token_mask=attention_mask if padded else None,
        )
        outputs = BackboneOutput(
            last_hidden_state=encoded.last_hidden_state,
            pooler_output=self.pooler(encoded.last_hidden_state, attention_mask) if self.pooler is not None else None,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
            attention_scores=encoded.attention_scores,
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return outputs if return_dict else outputs.to_tuple()

    def _check_inputs(self, input_ids, attention_mask, token_type_ids) -> bool:
        """Clear errors for input this model cannot read; returns whether any position is padding."""
        reference = input_ids if input_ids is not None else attention_mask
        if reference.dim() != len(self.input_layout):
            layout = ", ".join(self.input_layout)
            raise ValueError(f"expected a batch of shape ({layout}), got {tuple(reference.shape)}")
        if reference.shape[0] == 0:
            raise ValueError("the batch is empty")
        self._check_length(reference.shape[-1])
        _check_mask_shape(attention_mask, reference)
        types = self.config.type_vocab_size
        checks = [~attention_mask.bool().all()]
        if input_ids is not None:
            checks.append(((input_ids < 0) | (input_ids >= self.config.vocab_size)).any())
        if token_type_ids is not None and types:
            checks.append(((token_type_ids < 0) | (token_type_ids >= types)).any())
        padded, *foreign = torch.stack(checks).tolist()  # one host-device synchronisation for all
        if input_ids is not None and foreign[0]:
            raise ValueError(
                f"input_ids must lie in [0, {self.config.vocab_size}); got values from {int(input_ids.min())} "
                f"to {int(input_ids.max())}. Was the input made by this model's tokenizer?"
            )
        if any(foreign):
            raise ValueError(
                f"token_type_ids must lie in [0, {types}) (type_vocab_size); got values from "
                f"{int(token_type_ids.min())} to {int(token_type_ids.max())}"
            )
        return padded

    def _check_length(self, length: int) -> None:
        limit = self.config.max_position_embeddings
        if self.config.position_embedding_type == "absolute" and length > limit:
            raise ValueError(
                f"the input has {length} tokens but {type(self).__name__} has positions for {limit} (special tokens "
                f"included); tokenize with truncation=True (max_length={limit}) or split the sequence"
            )

    @staticmethod
    def _encoder_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The padding as the encoder's layers take it: additive, (batch, 1, 1, length)."""
        blocked = ~attention_mask.bool()[:, None, None, :]
        return torch.zeros(blocked.shape, dtype=dtype, device=attention_mask.device).masked_fill(
            blocked, torch.finfo(dtype).min
        )


class ForMaskedLM(MultiMoleculePreTrainedModel):
    """Masked language model; with `config.attention_contact_head`, also the release's contact regression.

    A release with further heads subclasses it: it builds them, names its `output_class` and fills their fields
    in `head_outputs`.
    """

    output_class: ClassVar[type[ModelOutput]] = MaskedLMOutput
    contact_head_class: ClassVar[type[nn.Module]] = AttentionContactHead
    mlm_labels: ClassVar[bool] = True  # `labels` are masked-LM labels (False: the other heads' labels)

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.decoder.weight": "model.embeddings.word_embeddings.weight"}

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.model = self._backbone()
        self.lm_head = MaskedLMHead(config)
        self.contact_head = self.contact_head_class(config) if config.attention_contact_head else None
        self.post_init()

    def head_outputs(self, last_hidden_state, input_ids, attention_mask, labels, fields) -> dict:
        """Fields a release's other heads add to (or replace in) the masked-LM `fields`, from the final hidden
        states; `labels` are given here instead of to the masked-LM loss when `mlm_labels` is False."""
        return {}

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.decoder

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head.decoder = value

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_contacts: bool = False,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        if return_contacts and self.contact_head is None:
            raise ValueError(f"{type(self).__name__} has no contact head (config.attention_contact_head is False)")
        contacts, streaming = None, nullcontext()
        if return_contacts:
            given = _mask_or_default(self.config, input_ids, attention_mask, kwargs.get("inputs_embeds"))
            mask = nucleotide_mask(self.config, input_ids, given)
        if return_contacts and not output_attentions:  # each layer's maps become its share as the layer runs
            attentions = [layer.attention for layer in self.model.encoder.layers]
            streaming = self.contact_head.streaming(attentions, mask)
        with streaming as streamed_contacts:
            outputs = self.model(
                input_ids,
                attention_mask,
                output_attentions=bool(output_attentions or return_contacts),
                output_hidden_states=output_hidden_states,
                return_dict=True,
                **kwargs,
            )
        logits = _alphabet_only(self.config, self.lm_head(outputs.last_hidden_state))
        if return_contacts:
            contacts = streamed_contacts() if streamed_contacts else self.contact_head(outputs.attentions, mask)
        loss = None
        if labels is not None and self.mlm_labels:
            loss = masked_lm_loss(logits, labels, _never_predicted(self.config, logits.shape[-1]))
        fields = {
            "loss": loss,
            "logits": logits,
            "contacts": contacts,
            "pooler_output": outputs.pooler_output,
            "hidden_states": outputs.hidden_states,
            "attentions": outputs.attentions if output_attentions else None,
            "attention_scores": outputs.get("attention_scores"),
        }
        head_labels = None if self.mlm_labels else labels
        fields.update(self.head_outputs(outputs.last_hidden_state, input_ids, attention_mask, head_labels, fields))
        declared = {field.name for field in dataclasses.fields(self.output_class)}
        output = self.output_class(**{k: v for k, v in fields.items() if k in declared or v is not None})
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()


@dataclass
class SecondaryStructureOutput(PredictionOutput):
    """`logits`: base-pairing logits (batch, n, n), symmetric, before the sigmoid; `mask`: real pairs;
    `lm_logits` and `contacts`: the masked-LM head and the contact regression the release also carries;
    `pooler_output` and `attention_scores` as in `BackboneOutput`."""

    lm_logits: torch.Tensor | None = None
    contacts: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    attention_scores: torch.Tensor | None = None


class ForSecondaryStructurePrediction(ForMaskedLM):
    """A release's secondary-structure model: the masked-LM model (and contact regression, where the release has
    one) plus `ss_head_class`, built with the config and called on `ss_features` (by default the nucleotides'
    final hidden states, (batch, n, hidden)) and the nucleotides' mask (batch, n); it returns pair logits
    (batch, n, n). `labels`: (batch, n, n) base-pair map, 1 paired, 0 unpaired, -100 ignored."""

    ss_head_class: ClassVar[type[nn.Module]]
    output_class = SecondaryStructureOutput
    mlm_labels = False

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.ss_head = self.ss_head_class(config)
        self.post_init()

    def ss_features(self, last_hidden_state, nucleotides, fields) -> tuple[torch.Tensor, torch.Tensor]:
        """(what the head reads, packed to the n nucleotides of each sequence, and their mask (batch, n)) from
        the final hidden states, the nucleotide positions (batch, length) and the output fields so far."""
        return pack_tokens(last_hidden_state, nucleotides)

    def head_outputs(self, last_hidden_state, input_ids, attention_mask, labels, fields):
        attention_mask = _mask_or_default(self.config, input_ids, attention_mask)
        nucleotides = nucleotide_mask(self.config, input_ids, attention_mask)
        features, valid = self.ss_features(last_hidden_state, nucleotides, fields)
        logits = self.ss_head(features, valid)
        mask = valid.unsqueeze(-1) & valid.unsqueeze(-2)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape:
                raise ValueError(f"labels have shape {tuple(labels.shape)}; expected {tuple(logits.shape)}")
            labels = labels.to(logits.device)
            keep = mask & (labels != IGNORE_INDEX)
            loss = nn.functional.binary_cross_entropy_with_logits(logits[keep].float(), labels[keep].float())
        return {"loss": loss, "logits": logits, "mask": mask, "lm_logits": fields["logits"]}


class _Predictor(MultiMoleculePreTrainedModel):
    """Backbone plus one prediction head, `classifier` (the name PEFT's SEQ_CLS / TOKEN_CLS task types keep
    trainable and save with an adapter); subclasses say how the hidden states become features."""

    head_class: ClassVar[type[nn.Module]]

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.model = self._backbone()
        self.classifier = self.head_class(config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As transformers', but a secondary-structure checkpoint is refused unless `num_labels` says a new head
        is meant: its trained head cannot be read here, and a random one would pass for a prediction."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        structure = [name for name in model.config.architectures or [] if name.endswith(STRUCTURE_SUFFIX)]
        if structure and "num_labels" not in kwargs:
            raise ValueError(
                f"the checkpoint holds a secondary-structure model ({structure[0]}); load it with "
                f"AutoModelForSecondaryStructurePrediction, or pass num_labels to train a new {cls.__name__} head"
            )
        return loaded

    def features(self, hidden_states, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def finish(self, logits: torch.Tensor) -> torch.Tensor:
        """The head's output as returned (contacts flatten their pairs)."""
        return logits

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> PredictionOutput | tuple:
        outputs = self.model(
            input_ids,
            attention_mask,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
            **kwargs,
        )
        attention_mask = _mask_or_default(self.config, input_ids, attention_mask, outputs.last_hidden_state)
        features, mask = self.features(outputs.last_hidden_state, input_ids, attention_mask)
        logits = self.finish(self.classifier(features))
        loss = None
        if labels is not None:
            loss = prediction_loss(self.config, logits, self.flat_labels(labels, logits), self.loss_mask(mask))
        output = PredictionOutput(
            loss=loss, logits=logits, mask=mask, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()

    def flat_labels(self, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return labels

    def loss_mask(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        return mask


class ForSequencePrediction(_Predictor):
    """One output per sequence, pooled by `config.pooling` (`cls`: the first real token, whatever the padding
    side; `mean`: the mean over nucleotides). Labels: (batch,) or, for multi-label / multi-output regression,
    (batch, num_labels)."""

    head_class = PredictionHead

    def features(self, hidden_states, input_ids, attention_mask):
        if self.config.pooling == "cls":
            return first_real_token(hidden_states, attention_mask), None
        mask = nucleotide_mask(self.config, input_ids, attention_mask)
        weights = mask.unsqueeze(-1).to(hidden_states.dtype)
        return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1), None


class ForTokenPrediction(_Predictor):
    """One output per input token, special tokens and padding included (transformers' convention: the
    token-classification pipeline and `DataCollatorForTokenClassification` rely on it). Labels: (batch, length),
    -100 at special tokens and padding (which never count). `output.nucleotides()` keeps the nucleotides."""

    head_class = PredictionHead

    def features(self, hidden_states, input_ids, attention_mask):
        return hidden_states, nucleotide_mask(self.config, input_ids, attention_mask)


class ForContactPrediction(_Predictor):
    """One output per input-token pair, symmetric, flat: (batch, length * length, num_labels). Labels:
    (batch, length, length) or flat (batch, length * length), -100 ignored; pairs with a special token or padding
    never count. `DataCollatorForContactPrediction` pads and flattens them for Trainer."""

    head_class = ContactPredictionHead

    def features(self, hidden_states, input_ids, attention_mask):
        return hidden_states, nucleotide_mask(self.config, input_ids, attention_mask)

    def finish(self, logits):
        return logits.flatten(1, 2)

    def flat_labels(self, labels, logits):
        squared = labels.dim() >= 3 and labels.shape[1] * labels.shape[2] == logits.shape[1]
        return labels.flatten(1, 2) if squared else labels

    def loss_mask(self, mask):
        return (mask.unsqueeze(-1) & mask.unsqueeze(-2)).flatten(1)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, never: list[int] = ()) -> torch.Tensor:
    """Cross-entropy over the vocabulary; -100 labels are ignored. A label among `never` (the special tokens the
    head never predicts) is an error, not an infinite loss: label masked nucleotides, -100 elsewhere (as
    `DataCollatorForLanguageModeling` does)."""
    labels = labels.to(logits.device)
    if (
        never
        and not torch.compiler.is_compiling()
        and torch.isin(labels, torch.tensor(never, device=labels.device)).any()
    ):
        raise ValueError(
            "masked-LM labels hold special-token ids, which the head never predicts; set them to -100 (only masked "
            "nucleotides carry a label)"
        )
    return nn.functional.cross_entropy(
        logits.view(-1, logits.shape[-1]).float(), labels.to(logits.device).view(-1), ignore_index=IGNORE_INDEX
    )


STRUCTURE_SUFFIX = "ForSecondaryStructurePrediction"


def _never_predicted(config: MultiMoleculeConfig, vocab_size: int) -> list[int]:
    """Ids of `<pad> <cls> <eos> <unk> <mask> <null>`: no masked position holds one."""
    ids = (*config.special_token_ids, config.unk_token_id, config.mask_token_id, config.null_token_id)
    return sorted({i for i in ids if i is not None and 0 <= i < vocab_size})


def _alphabet_only(config: MultiMoleculeConfig, logits: torch.Tensor) -> torch.Tensor:
    """Masked-LM logits with the special tokens (`<pad> <cls> <eos> <unk> <mask> <null>`) at the dtype's minimum:
    a masked position holds a nucleotide, so fill-mask and sampling offer tokens of the alphabet only."""
    ids = _never_predicted(config, logits.shape[-1])
    if not ids:
        return logits
    return logits.index_fill(-1, torch.tensor(ids, device=logits.device), torch.finfo(logits.dtype).min)


def _mask_or_default(config, input_ids, attention_mask, hidden_states=None) -> torch.Tensor:
    """The attention mask the backbone used when none was given (`hidden_states`: anything shaped (..., hidden)
    over the tokens, for input given as embeddings)."""
    if attention_mask is not None:
        if input_ids is not None:
            _check_mask_shape(attention_mask, input_ids)
        return attention_mask
    if input_ids is not None:
        return input_ids.ne(config.pad_token_id)
    return torch.ones(hidden_states.shape[:-1], dtype=torch.long, device=hidden_states.device)


def _check_mask_shape(attention_mask: torch.Tensor, input_ids: torch.Tensor) -> None:
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids {tuple(input_ids.shape)}; "
            "they must match"
        )
