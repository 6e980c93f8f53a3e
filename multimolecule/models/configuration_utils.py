"""The configuration every family shares: the switches of the shared encoder and of the prediction heads."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

from ..modules.criterion import PROBLEM_TYPE_ALIASES, PROBLEM_TYPES, TRANSFORMERS_PROBLEM_TYPES
from ..tokenisers import RNA

POSITION_EMBEDDING_TYPES = ("absolute", "sinusoidal", "rotary", "none")
LAYER_NORM_POSITIONS = ("pre", "post")
POOLINGS = ("cls", "mean")

# A check returns what is wrong with a field's value ("must be ...; got ..."), or None when it is right.
Check = Callable[[Any, "MultiMoleculeConfig"], "str | None"]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _real(value: Any) -> bool:
    """A finite number, not a bool (math.isfinite would overflow on a huge int, which is finite anyway)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def positive_int(value: Any, config: MultiMoleculeConfig) -> str | None:
    return None if type(value) is int and value > 0 else f"must be a positive integer; got {_shown(value)}"


def non_negative_int(value: Any, config: MultiMoleculeConfig) -> str | None:
    return None if type(value) is int and value >= 0 else f"must be an integer >= 0; got {_shown(value)}"


def positive_number(value: Any, config: MultiMoleculeConfig) -> str | None:
    return None if _real(value) and value > 0 else f"must be a finite number > 0; got {_shown(value)}"


def non_negative_number(value: Any, config: MultiMoleculeConfig) -> str | None:
    return None if _real(value) and value >= 0 else f"must be a finite number >= 0; got {_shown(value)}"


def probability(value: Any, config: MultiMoleculeConfig) -> str | None:
    """A dropout: 1 would drop everything."""
    return None if _real(value) and 0 <= value < 1 else f"must be a probability in [0, 1); got {_shown(value)}"


def activation(value: Any, config: MultiMoleculeConfig) -> str | None:
    if isinstance(value, str) and value in ACT2FN:
        return None
    names = ", ".join(sorted(ACT2FN))
    return f"must be an activation of transformers.activations.ACT2FN ({names}); got {_shown(value)}"


def token_id(value: Any, config: MultiMoleculeConfig) -> str | None:
    """None, or a row of the embedding (a list of them for several end tokens)."""
    ids = value if isinstance(value, list | tuple) else [value]
    if value is None or all(type(item) is int and 0 <= item < config.vocab_size for item in ids):
        return None
    return f"must be None or a token id in [0, vocab_size={config.vocab_size}); got {_shown(value)}"


def one_of(*choices: str) -> Check:
    def check(value: Any, config: MultiMoleculeConfig) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}; got {_shown(value)}"

    return check


def optional(check: Check) -> Check:
    def optional_check(value: Any, config: MultiMoleculeConfig) -> str | None:
        return None if value is None else check(value, config)

    return optional_check


class MultiMoleculeConfig(PreTrainedConfig):
    r"""Base configuration of a MultiMolecule model.

    A family subclasses it, sets `model_type` and overrides the defaults with its published hyperparameters.

    Encoder:
        vocab_size: rows of the token embedding (the shared RNA vocabulary has 26).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: the transformer's size.
        hidden_act: activation of the feed-forward block (any key of `transformers.activations.ACT2FN`).
        hidden_dropout, attention_dropout: dropout probabilities.
        max_position_embeddings: the most tokens (special tokens included) the model accepts.
        position_embedding_type: `absolute` (learned), `sinusoidal`, `rotary` or `none`.
        position_offset: learned positions only; row of the first token (the rows before are unused, as in
            fairseq/ESM checkpoints that reserve them for padding).
        rotary_base: base of the rotary frequencies.
        layer_norm_position: `pre` (norm before attention / feed-forward) or `post` (BERT style).
        type_vocab_size: rows of a token-type (segment) embedding, as BERT-style releases carry; 0 for none.
            Row 0 is added to every token unless `token_type_ids` say otherwise (every release here only ever
            used row 0). Without a table, `token_type_ids` are accepted and ignored.
        embedding_norm: a layer norm on the embeddings, before the first layer.
        final_norm: a layer norm after the last layer (pre-norm models).
        attention_bias: biases on the query / key / value / output projections.
        add_pooler: the backbone also returns `pooler_output`, dense + tanh on the first token (BERT's pooler),
            for releases that carry one.
        pack_padded_batches: on a batch with padding, the layers' per-token work (norms, projections, feed-forward)
            runs on the real tokens only, and only attention on the padded length (`multimolecule.modules.packing`);
            the outputs at real tokens are the same, padded positions of the hidden states hold zeros. False runs
            the whole padded rectangle. A run-time choice: it changes no weight.

    Heads:
        num_labels, problem_type: what the prediction heads predict. `problem_type` is `regression`, `binary`,
            or transformers' `single_label_classification` / `multi_label_classification` (`multiclass` /
            `multilabel` are accepted and stored under transformers' names, which its pipelines read). When
            unset, transformers' convention decides at the first loss: `num_labels == 1` is regression, integer
            labels single-label, anything else multi-label; the choice is then stored in the config.
        pooling: how `...ForSequencePrediction` summarises a sequence: `cls` (the first token) or `mean`
            (the mean over nucleotide tokens, special tokens and padding excluded).
        head_dropout, head_act: dropout and activation of the prediction heads.
        lm_head_act: activation of the masked-LM head's transform (`linear` for none).
        pair_threshold: structure models: the pairing probability above which the release calls a base pair (set
            at conversion from the release or the catalogue; read by the `rna-secondary-structure` pipeline).
        attention_contact_head: the masked-LM model carries an ESM-style contact regression over the attention
            maps (as RNA-FM's release does); `return_contacts=True` then returns contact probabilities.
    """

    model_type = "multimolecule"
    # Trainer's predictions are the logits alone (an array for compute_metrics, not a tuple with the mask)
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["mask", "hidden_states", "attentions", "contacts", "lm_logits"]

    # field -> check, in order (vocab_size before the token ids checked against it). A family adds its own
    # fields: `field_checks: ClassVar[Mapping[str, Check]] = {**MultiMoleculeConfig.field_checks, "x": check}`.
    field_checks: ClassVar[Mapping[str, Check]] = {
        "vocab_size": positive_int,
        "hidden_size": positive_int,
        "num_hidden_layers": positive_int,
        "num_attention_heads": positive_int,
        "intermediate_size": positive_int,
        "max_position_embeddings": positive_int,
        "num_labels": positive_int,
        "hidden_act": activation,
        "head_act": activation,
        "position_embedding_type": one_of(*POSITION_EMBEDDING_TYPES),
        "position_offset": non_negative_int,
        "rotary_base": positive_number,
        "layer_norm_position": one_of(*LAYER_NORM_POSITIONS),
        "layer_norm_eps": positive_number,
        "initializer_range": non_negative_number,
        "pooling": one_of(*POOLINGS),
        "problem_type": optional(one_of(*PROBLEM_TYPES, *PROBLEM_TYPE_ALIASES)),
    }
    # field name ending -> check, for every field with that ending (those a family adds included)
    suffix_checks: ClassVar[Mapping[str, Check]] = {
        "_token_id": token_id,
        "_dropout": probability,
        "_eps": positive_number,
    }

    vocab_size: int = len(RNA.vocabulary())
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 1024
    position_embedding_type: str = "absolute"
    position_offset: int = 0
    rotary_base: float = 10000.0
    layer_norm_position: str = "pre"
    layer_norm_eps: float = 1e-12
    type_vocab_size: int = 0
    embedding_norm: bool = False
    final_norm: bool = True
    attention_bias: bool = True
    add_pooler: bool = False
    pack_padded_batches: bool = True
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2
    unk_token_id: int = 3
    mask_token_id: int = 4
    null_token_id: int = 5
    problem_type: str | None = None
    pooling: str = "cls"
    head_dropout: float = 0.1
    head_act: str = "gelu"
    lm_head_act: str = "gelu"
    pair_threshold: float | None = None
    attention_contact_head: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_fields()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )

    def check_fields(self) -> None:
        """Refuse values that cannot be right, with a one-line `ValueError` naming the field.

        Runs `field_checks`, then `suffix_checks` on every field name with that ending, then requires every
        float field to be finite (NaN and infinity pass most comparisons and poison every output).
        """
        names = [field.name for field in dataclasses.fields(self)]
        checks = [*self.field_checks.items()]
        for suffix, check in self.suffix_checks.items():
            checks += [(name, check) for name in names if name.endswith(suffix)]
        for name, check in checks:
            problem = check(getattr(self, name), self)
            if problem:
                raise ValueError(f"{name} {problem}")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number; got {value}")

    def __setattr__(self, name: str, value) -> None:
        if name == "problem_type":  # however it is set (from_pretrained(..., problem_type=...) sets it after init)
            value = TRANSFORMERS_PROBLEM_TYPES.get(value, value)
        super().__setattr__(name, value)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def special_token_ids(self) -> tuple[int, ...]:
        """Ids the token and contact heads drop: they predict one output per nucleotide."""
        return tuple(
            token_id for token_id in (self.pad_token_id, self.bos_token_id, self.eos_token_id) if token_id is not None
        )


class BertStyleConfig(MultiMoleculeConfig):
    """The layout BERT-style releases share: post-norm layers, a layer norm on the embeddings and none after the
    last layer, a two-row token-type table, layer-norm epsilon 1e-12. Their families subclass this one."""

    model_type = "bert-style"

    layer_norm_position: str = "post"
    layer_norm_eps: float = 1e-12
    embedding_norm: bool = True
    final_norm: bool = False
    type_vocab_size: int = 2
