"""What every family's models are made of.

A family writes `class XxxModel(XxxPreTrainedModel, BackboneModel)` and one line per head,
`class XxxForMaskedLM(XxxPreTrainedModel, ForMaskedLM)`; the heads build the family's backbone, which
`BackboneModel` subclasses register under their `model_type` when they are defined.
"""

from __future__ import annotations

import dataclasses
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
    nucleotide_mask,
    pack_tokens,
)
from ..modules.precision import warn_if_slow_bf16
from .configuration_utils import MultiMoleculeConfig

_BACKBONES: dict[str, type[BackboneModel]] = {}


@dataclass
class MaskedLMOutput(ModelOutput):
    """`logits` over the vocabulary for every token; `contacts` (batch, n, n) when asked for."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    contacts: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class PredictionOutput(ModelOutput):
    """`logits` is (batch, num_labels) for sequences, (batch, n, num_labels) for tokens and
    (batch, n, n, num_labels) for contacts, n being the most nucleotides in the batch; `mask` says which
    of those positions (or pairs) are real. Special tokens are not among the n positions."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


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
    """

    embeddings_class: ClassVar[type[nn.Module]] = Embeddings
    encoder_class: ClassVar[type[nn.Module]] = Encoder

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        _BACKBONES[cls.config_class.model_type] = cls

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = self.encoder_class(config)
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
    ) -> BaseModelOutputWithPooling | tuple:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
        if reference.dim() != 2:
            raise ValueError(f"expected a batch of shape (batch, length), got {tuple(reference.shape)}")
        batch, length = reference.shape
        if batch == 0:
            raise ValueError("the batch is empty")
        self._check_length(length)
        if attention_mask is None:
            attention_mask = (
                input_ids.ne(self.config.pad_token_id)
                if input_ids is not None
                else torch.ones(batch, length, dtype=torch.long, device=reference.device)
            )
        checks = [~attention_mask.bool().all()]
        if input_ids is not None:
            checks.append(((input_ids < 0) | (input_ids >= self.config.vocab_size)).any())
        types = self.config.type_vocab_size
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
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = (
            self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        )
        if types == 0:
            token_type_ids = None  # no table: accepted and ignored (see MultiMoleculeConfig.type_vocab_size)
        warn_if_slow_bf16(self.embeddings.word_embeddings.weight)
        embeddings = self.embeddings(attention_mask, input_ids, inputs_embeds, position_ids, token_type_ids)
        encoded = self.encoder(
            embeddings,
            self._additive_mask(attention_mask, embeddings.dtype) if padded else None,  # None: SDPA's fastest kernel
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        outputs = BaseModelOutputWithPooling(
            last_hidden_state=encoded.last_hidden_state,
            pooler_output=self.pooler(encoded.last_hidden_state) if self.pooler is not None else None,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return outputs if return_dict else outputs.to_tuple()

    def _check_length(self, length: int) -> None:
        limit = self.config.max_position_embeddings
        if self.config.position_embedding_type == "absolute" and length > limit:
            raise ValueError(
                f"the input has {length} tokens but {type(self).__name__} has positions for {limit} (special tokens "
                f"included); tokenize with truncation=True (max_length={limit}) or split the sequence"
            )

    @staticmethod
    def _additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
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
    mlm_labels: ClassVar[bool] = True  # `labels` are masked-LM labels (False: the other heads' labels)

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.decoder.weight": "model.embeddings.word_embeddings.weight"}

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.model = self._backbone()
        self.lm_head = MaskedLMHead(config)
        self.contact_head = AttentionContactHead(config) if config.attention_contact_head else None
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
        streamed = return_contacts and not output_attentions
        if streamed:  # each layer's weights become its share of the contact logits, then are freed
            mask = nucleotide_mask(self.config, input_ids, _mask_or_default(self.config, input_ids, attention_mask))
            shares: list[torch.Tensor] = []
            hooks = [
                layer.attention.register_forward_hook(_contact_share(self.contact_head, index, mask, shares))
                for index, layer in enumerate(self.model.encoder.layers)
            ]
        try:
            outputs = self.model(
                input_ids,
                attention_mask,
                output_attentions=bool(output_attentions or return_contacts),
                output_hidden_states=output_hidden_states,
                return_dict=True,
                **kwargs,
            )
        finally:
            for hook in hooks if streamed else ():
                hook.remove()
        logits = self.lm_head(outputs.last_hidden_state)
        contacts = None
        if streamed:
            contacts = self.contact_head.contacts(shares[0], mask)
        elif return_contacts:
            mask = nucleotide_mask(self.config, input_ids, _mask_or_default(self.config, input_ids, attention_mask))
            contacts = self.contact_head(outputs.attentions, mask)
        loss = None
        if labels is not None and self.mlm_labels:
            loss = masked_lm_loss(logits, labels)
        fields = {
            "loss": loss,
            "logits": logits,
            "contacts": contacts,
            "hidden_states": outputs.hidden_states,
            "attentions": outputs.attentions if output_attentions else None,
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
    `lm_logits` and `contacts`: the masked-LM head and the contact regression the release also carries."""

    lm_logits: torch.Tensor | None = None
    contacts: torch.Tensor | None = None


class ForSecondaryStructurePrediction(ForMaskedLM):
    """A release's secondary-structure model: the masked-LM model (and contact regression, where the release has
    one) plus `ss_head_class`, built with the config and called on the nucleotides' final hidden states
    (batch, n, hidden) and their mask (batch, n); it returns pair logits (batch, n, n).
    `labels`: (batch, n, n) base-pair map, 1 paired, 0 unpaired, -100 ignored."""

    ss_head_class: ClassVar[type[nn.Module]]
    output_class = SecondaryStructureOutput
    mlm_labels = False

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.ss_head = self.ss_head_class(config)
        self.post_init()

    def head_outputs(self, last_hidden_state, input_ids, attention_mask, labels, fields):
        attention_mask = _mask_or_default(self.config, input_ids, attention_mask)
        features, valid = pack_tokens(last_hidden_state, nucleotide_mask(self.config, input_ids, attention_mask))
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
    """Backbone plus one prediction head; subclasses say how the hidden states become features."""

    head_class: ClassVar[type[nn.Module]]

    def __init__(self, config: MultiMoleculeConfig) -> None:
        super().__init__(config)
        self.model = self._backbone()
        self.head = self.head_class(config)
        self.post_init()

    def features(self, hidden_states, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

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
        logits = self.head(features)
        loss = prediction_loss(self.config, logits, labels, mask) if labels is not None else None
        output = PredictionOutput(
            loss=loss, logits=logits, mask=mask, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()


class ForSequencePrediction(_Predictor):
    """One output per sequence, pooled by `config.pooling` (`cls`: the first token; `mean`: the mean over
    nucleotides). Labels: (batch,) or, for multilabel / multi-output regression, (batch, num_labels)."""

    head_class = PredictionHead

    def features(self, hidden_states, input_ids, attention_mask):
        if self.config.pooling == "cls":
            return hidden_states[:, 0], None
        mask = nucleotide_mask(self.config, input_ids, attention_mask) if input_ids is not None else attention_mask
        weights = mask.unsqueeze(-1).to(hidden_states.dtype)
        return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1), None


class ForTokenPrediction(_Predictor):
    """One output per nucleotide, special tokens and padding removed. Labels: (batch, n) padded with -100."""

    head_class = PredictionHead

    def features(self, hidden_states, input_ids, attention_mask):
        return pack_tokens(hidden_states, nucleotide_mask(self.config, input_ids, attention_mask))


class ForContactPrediction(_Predictor):
    """One output per nucleotide pair, symmetric, special tokens removed. Labels: (batch, n, n), -100 ignored."""

    head_class = ContactPredictionHead

    def features(self, hidden_states, input_ids, attention_mask):
        packed, valid = pack_tokens(hidden_states, nucleotide_mask(self.config, input_ids, attention_mask))
        return packed, valid.unsqueeze(-1) & valid.unsqueeze(-2)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the vocabulary; -100 labels are ignored."""
    return nn.functional.cross_entropy(
        logits.view(-1, logits.shape[-1]).float(), labels.to(logits.device).view(-1), ignore_index=IGNORE_INDEX
    )


def _contact_share(head: AttentionContactHead, layer: int, mask: torch.Tensor, shares: list[torch.Tensor]):
    """A forward hook on layer `layer`'s attention: its weights become the layer's share of the contact logits
    and are dropped from the output, so no more than one layer's (batch, heads, length, length) is alive."""

    def hook(module: nn.Module, args, output):
        attended, weights = output
        share = head.layer_logits(layer, weights, mask)
        shares[:] = [shares[0] + share] if shares else [share]  # a running sum: one (batch, n, n) kept
        return attended, None

    return hook


def _mask_or_default(config, input_ids, attention_mask, hidden_states=None) -> torch.Tensor:
    """The attention mask the backbone used when none was given."""
    if attention_mask is not None:
        return attention_mask
    if input_ids is not None:
        return input_ids.ne(config.pad_token_id)
    return torch.ones(hidden_states.shape[:2], dtype=torch.long, device=hidden_states.device)
