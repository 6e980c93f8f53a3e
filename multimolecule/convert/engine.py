"""The one conversion engine: upstream file -> MultiMolecule config, state dict, tokenizer.

A family declares a `Converter` (see `multimolecule.converters`): how to unpack its container, a `KeyMap`
from upstream names to ours, its vocabulary in id order, and how to read the config from the file.
Everything else happens here, the same way for every family:

1. the file is loaded without executing anything (`checkpoint.load_checkpoint`);
2. every upstream key is renamed by the key map or dropped with a stated reason; any other key is an error;
3. the config is read from the file, `--model.<field>` overrides fill in what the file does not say;
4. vocabulary-indexed tensors (embedding rows, decoder rows and bias) are re-ordered by token string;
5. the state dict is loaded into the architecture strictly: a missing or an unexpected key is an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizer

from ..models.configuration_utils import MultiMoleculeConfig
from ..tokenisers import RnaTokenizer
from .checkpoint import load_checkpoint
from .errors import CheckpointError, ConversionError, KeyMismatchError

if typing.TYPE_CHECKING:
    from .validate import Reference

# Our names of the tensors indexed by vocabulary id (rows), and how a token upstream lacks is filled.
VOCABULARY_TENSORS = {
    "model.embeddings.word_embeddings.weight": "embedding",
    "lm_head.decoder.weight": "embedding",
    "lm_head.decoder.bias": "logit",
}
# Reference output -> (our output field, how to compare): the masked-LM families' default.
MASKED_LM_PARITY = {
    "last_hidden_state": ("last_hidden_state", "tokens"),
    "logits": ("logits", "vocabulary"),
    "contacts": ("contacts", "pairs"),
}
SAMPLE_SEQUENCES = ("GGGUGCGAUCAUACCAGCACUAAUGCCCUCCUGGGAAGUCCUCGUG", "UAGCUUAUCAGACUGAUGUUGA", "ACGUNACGU")
# Decoder bias of tokens the upstream model never saw: they are never predicted, and the probabilities of
# upstream's own tokens are unchanged.
ABSENT_TOKEN_LOGIT = -1.0e4


def fairseq_vocabulary(
    standard: Iterable[str],
    prepend: tuple[str, ...] = ("<cls>", "<pad>", "<eos>", "<unk>"),
    append: tuple[str, ...] = ("<mask>",),
) -> list[str]:
    """The id order of a fairseq / ESM alphabet: prepended specials, the standard tokens, `<null_k>` fillers
    up to a multiple of 8, then the appended specials."""
    tokens = [*prepend, *standard]
    tokens += [f"<null_{index + 1}>" for index in range(-len(tokens) % 8)]
    return [*tokens, *append]


class KeyMap:
    """Ordered regex rules from upstream key to ours; the first rule whose pattern matches the whole key wins.

    `dropped` maps patterns of keys deliberately left out to the reason, which goes into the model card.
    """

    def __init__(self, rules: Iterable[tuple[str, str]], dropped: Mapping[str, str] | None = None) -> None:
        self.rules = [(re.compile(pattern), replacement) for pattern, replacement in rules]
        self.dropped = [(re.compile(pattern), reason) for pattern, reason in (dropped or {}).items()]

    def apply(self, keys: Iterable[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """(renamed: upstream -> ours, dropped: upstream -> reason, unmatched upstream keys)."""
        renamed, dropped, unmatched = {}, {}, []
        for key in keys:
            reason = next((why for pattern, why in self.dropped if pattern.fullmatch(key)), None)
            if reason is not None:
                dropped[key] = reason
                continue
            for pattern, replacement in self.rules:
                if pattern.fullmatch(key):
                    renamed[key] = pattern.sub(replacement, key)
                    break
            else:
                unmatched.append(key)
        return renamed, dropped, unmatched


@dataclass
class VocabularyRemap:
    """How upstream's vocabulary became ours, in words a model card can state."""

    upstream: list[str]
    ours: list[str]

    @property
    def absent(self) -> list[str]:
        """Our tokens upstream lacks: they take upstream's `<unk>` row, which is what upstream would use for them."""
        return [token for token in self.ours if token not in self.upstream]

    @property
    def discarded(self) -> list[str]:
        """Upstream tokens we do not have (fillers such as `<null_1>`): their rows are dropped."""
        return [token for token in self.upstream if token not in self.ours]

    def source_rows(self) -> list[int]:
        index = {token: row for row, token in enumerate(self.upstream)}
        return [index.get(token, index["<unk>"]) for token in self.ours]

    def apply(self, key: str, tensor: torch.Tensor, kind: str) -> torch.Tensor:
        if tensor.shape[0] != len(self.upstream):
            raise ConversionError(
                f"{key} has {tensor.shape[0]} rows but the upstream vocabulary of this variant has "
                f"{len(self.upstream)} tokens; is this checkpoint of another variant?"
            )
        remapped = tensor[self.source_rows()].clone()
        if kind == "logit":
            absent = [row for row, token in enumerate(self.ours) if token not in self.upstream]
            remapped[absent] = ABSENT_TOKEN_LOGIT
        return remapped


@dataclass
class Conversion:
    """The result of converting one file: the model (eval mode), its tokenizer, and the provenance."""

    converter: Converter
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizer
    source: Path
    sha256: str
    vocabulary: VocabularyRemap
    dropped: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


class Converter:
    """How one published checkpoint maps onto a MultiMolecule model. Families subclass it.

    Class attributes are what the whole family shares (config class, key map, allowed pickle globals);
    instance attributes what differs per variant (architecture, upstream vocabulary, tokenizer options).
    """

    family: ClassVar[str]
    config_class: ClassVar[type[MultiMoleculeConfig]]
    key_map: ClassVar[KeyMap]
    tokenizer_class: ClassVar[type[PreTrainedTokenizer]] = RnaTokenizer
    extra_globals: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        variant: str,
        architecture: type[PreTrainedModel],
        upstream_vocabulary: list[str],
        tokenizer_kwargs: dict[str, Any] | None = None,
        *,
        parity: dict[str, tuple[str, str]] = MASKED_LM_PARITY,
        sample_sequences: tuple[str, ...] = SAMPLE_SEQUENCES,
    ) -> None:
        self.variant = variant
        self.architecture = architecture
        self.upstream_vocabulary = upstream_vocabulary
        self.tokenizer_kwargs = tokenizer_kwargs or {}
        self.parity = parity
        self.sample_sequences = sample_sequences

    # what a family implements
    def unpack(self, content: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(state dict with upstream key names, metadata such as training args) from the file's content."""
        raise NotImplementedError

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        """Config fields the file determines (shapes, stored hyperparameters); may raise KeyError."""
        raise NotImplementedError

    def adapt(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        """Reproduce a load-time quirk of the upstream code on the upstream state dict (default: none)."""

    def fixture_overrides(self, meta: dict[str, Any]) -> dict[str, Any]:
        """`--model.<field>` values a golden fixture needs (hyperparameters its file does not store)."""
        return {}

    def reference(self, path: Path, sequences: list[str], config: MultiMoleculeConfig) -> Reference | None:
        """Outputs of the original implementation on `sequences`, or None where it is not installed."""
        return None

    # the engine
    def tokenizer(self, config: MultiMoleculeConfig) -> PreTrainedTokenizer:
        return self.tokenizer_class(model_max_length=config.max_position_embeddings, **self.tokenizer_kwargs)

    def convert(
        self, path: str | Path, overrides: Mapping[str, Any] | None = None, *, sha256: str | None = None
    ) -> Conversion:
        """Convert the file at `path`; `sha256` is its hash when the caller has already verified it."""
        path = Path(path)
        sha256 = sha256 or file_sha256(path)
        content = load_checkpoint(path, self.extra_globals)
        if not isinstance(content, Mapping):
            raise CheckpointError(f"{path} holds a {type(content).__name__}; a {self.family} checkpoint is a dict")
        state, metadata = self.unpack(content, path)
        self.adapt(state, metadata)
        renamed, dropped, unmatched = self.key_map.apply(state)

        overrides = coerce_overrides(self.config_class, overrides or {})
        try:
            derived = self.read_config(state, metadata)
        except KeyError:  # not this family's layout: list what the published model would have needed
            with torch.device("meta"):
                expected = set(self.architecture(self.config_class()).state_dict())
            missing = sorted(expected - set(renamed.values()))
            raise KeyMismatchError(path, f"{self.family} ({self.variant})", unmatched, missing, self.hint()) from None
        for name, value in overrides.items():
            if name in derived and derived[name] != value:
                raise ConversionError(
                    f"--model.{name} {value} contradicts the checkpoint, which says {name}={derived[name]}"
                )
        config = self._config(path, {**derived, **overrides})
        tokenizer = self.tokenizer(config)
        vocabulary = VocabularyRemap(self.upstream_vocabulary, list(tokenizer.get_vocab()))
        converted = {renamed[key]: tensor for key, tensor in state.items() if key in renamed}
        for key, kind in VOCABULARY_TENSORS.items():
            if key in converted:
                converted[key] = vocabulary.apply(key, converted[key], kind)
        config.vocab_size = len(vocabulary.ours)  # ours, whatever upstream's was
        config.tie_word_embeddings = _tied(converted)
        config.architectures = [self.architecture.__name__]
        with torch.device("meta"):  # every weight comes from the file: skip random initialisation
            model = self.architecture(config)
        expected = set(model.state_dict())
        missing = sorted(expected - set(converted))
        upstream_of = {ours: upstream for upstream, ours in renamed.items()}
        unexpected = unmatched + [upstream_of[key] for key in converted if key not in expected]
        if missing or unexpected:
            raise KeyMismatchError(path, f"{self.family} ({self.variant})", unexpected, missing, hint=self.hint())
        _check_shapes(model, converted, upstream_of, path)
        model.load_state_dict(converted, strict=True, assign=True)
        model.tie_weights()
        return Conversion(self, model.eval(), tokenizer, path, sha256, vocabulary, dropped, dict(overrides))

    def _config(self, path: Path, fields: dict[str, Any]) -> MultiMoleculeConfig:
        try:
            return self.config_class(**fields)
        except ValueError as error:
            raise ConversionError(
                f"{path}: the configuration is invalid ({error}). The checkpoint determines "
                f"{', '.join(sorted(fields))}; anything else is the published default of {self.config_class.__name__} "
                "unless given with --model.<field> VALUE."
            ) from None

    def hint(self) -> str:
        return (
            f"Is this a {self.family} '{self.variant}' checkpoint? "
            "`python -m multimolecule.convert list` shows the variants."
        )


def _tied(state: dict[str, torch.Tensor]) -> bool:
    decoder = state.get("lm_head.decoder.weight")
    embedding = state.get("model.embeddings.word_embeddings.weight")
    return decoder is None or embedding is None or torch.equal(decoder, embedding)


def _check_shapes(model: PreTrainedModel, state: dict[str, torch.Tensor], upstream_of: dict, path: Path) -> None:
    expected = model.state_dict()
    wrong = [
        f"{upstream_of.get(key, key)} {tuple(tensor.shape)} vs {key} {tuple(expected[key].shape)}"
        for key, tensor in state.items()
        if tuple(tensor.shape) != tuple(expected[key].shape)
    ]
    if wrong:
        raise ConversionError(
            f"{path}: tensor shapes do not fit the configuration ({'; '.join(wrong[:6])}). A hyperparameter the "
            "file does not store is probably wrong: pass it with --model.<field> VALUE."
        )


def coerce_overrides(config_class: type[MultiMoleculeConfig], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Type `--model.<field>` values like the field's default; unknown fields are an error."""
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    result = {}
    for name, value in overrides.items():
        if name not in fields:
            raise ConversionError(
                f"{config_class.__name__} has no field {name!r}; "
                f"--model.<field> takes one of: {', '.join(sorted(fields))}"
            )
        default = fields[name].default
        kind = type(default) if default not in (None, dataclasses.MISSING) else None
        result[name] = _coerce(name, value, kind)
    return result


def _coerce(name: str, value: Any, kind: type | None) -> Any:
    if isinstance(value, str) and value.lower() in ("none", "null"):
        return None
    try:
        if kind is bool and not isinstance(value, bool):
            if str(value).lower() not in ("true", "1", "yes", "false", "0", "no"):
                raise ValueError(value)
            return str(value).lower() in ("true", "1", "yes")
        if kind is int and float(value) != int(float(value)):
            raise ValueError(value)
        return kind(value) if kind in (bool, int, float, str) else value
    except (TypeError, ValueError, OverflowError):  # OverflowError: int('inf')
        raise ConversionError(f"--model.{name} {value!r} is not a valid {kind.__name__}") from None


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}; expected an upstream checkpoint file")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
