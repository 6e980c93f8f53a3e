"""The one conversion engine: upstream file -> MultiMolecule config, state dict, tokenizer.

A family declares a `Converter` (see `multimolecule.converters`): how to unpack its container, a `KeyMap`
from upstream names to ours, its vocabulary in id order, and how to read the config from the file.
Everything else happens here, the same way for every family:

1. a release directory is resolved to its weights file and sidecar config (`Converter.locate`);
2. the file is loaded without executing anything (`checkpoint.load_checkpoint`);
3. every upstream key is renamed (and transformed) by the key map or dropped with a stated reason; any other
   key is an error;
4. the config is read from the file and its sidecar, `--model.<field>` overrides fill in what they do not say;
5. vocabulary-indexed tensors (embedding rows, decoder rows and bias) are re-ordered by token string, upstream
   spellings read as ours (`[CLS]` -> `<cls>`, `T` -> `U`);
6. the state dict is loaded into the architecture strictly: a missing or an unexpected key is an error.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import PreTrainedModel, PreTrainedTokenizer

from ..models.configuration_utils import MultiMoleculeConfig
from ..tokenisers import RnaTokenizer
from .checkpoint import load_checkpoint
from .digest import check_crcs, file_sha256
from .errors import CheckpointError, ConversionError, KeyMismatchError
from .keymap import KeyMap
from .vocabulary import TOKEN_SPELLINGS, VocabularyRemap

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


@dataclass
class Conversion:
    """The result of converting one file: the model (eval mode), its tokenizer, and the provenance."""

    converter: Converter
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizer
    source: Path
    vocabulary: VocabularyRemap
    dropped: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    known_sha256: str | None = None  # given when the caller matched the file to the catalogue

    @property
    def sha256(self) -> str:
        """The converted file's sha256: the catalogue's, else hashed when first asked for (a full read of the
        file, which a conversion that never reports its provenance need not pay for)."""
        if self.known_sha256 is None:
            self.known_sha256 = file_sha256(self.source)
        return self.known_sha256


class Converter:
    """How one published checkpoint maps onto a MultiMolecule model. Families subclass it.

    Class attributes are what the whole family shares (config class, key map, allowed pickle globals, release
    layout); instance attributes what differs per variant (architecture, upstream vocabulary, tokenizer options,
    the golden fixtures that prove it).
    """

    family: ClassVar[str]
    config_class: ClassVar[type[MultiMoleculeConfig]]
    key_map: ClassVar[KeyMap]
    tokenizer_class: ClassVar[type[PreTrainedTokenizer]] = RnaTokenizer
    extra_globals: ClassVar[dict[str, Any]] = {}
    # A release directory: the weights file in it (what the catalogue's sha256 covers) and the config beside it
    # (hyperparameters; when absent, the published defaults and --model.<field> apply).
    weights_name: ClassVar[str | None] = None
    config_name: ClassVar[str | None] = None
    # Upstream spellings of our tokens, beyond the shared ones (`[CLS]` -> `<cls>`, `T` -> `U`, ...).
    spellings: ClassVar[dict[str, str]] = TOKEN_SPELLINGS

    def __init__(
        self,
        variant: str,
        architecture: type[PreTrainedModel],
        upstream_vocabulary: list[str],
        tokenizer_kwargs: dict[str, Any] | None = None,
        *,
        golden_cases: tuple[str, ...] | None = None,
        token_rows: dict[str, str] | None = None,
        parity: dict[str, tuple[str, str]] = MASKED_LM_PARITY,
        sample_sequences: tuple[str, ...] = SAMPLE_SEQUENCES,
    ) -> None:
        self.variant = variant
        self.architecture = architecture
        self.upstream_vocabulary = upstream_vocabulary
        self.tokenizer_kwargs = tokenizer_kwargs or {}
        # the cases under <golden dir>/<family>/ whose checkpoint is in this variant's format: the self-test
        self.golden_cases = (variant,) if golden_cases is None else golden_cases
        self.token_rows = token_rows or {}
        self.parity = parity
        self.sample_sequences = sample_sequences

    # what a family implements
    def unpack(self, content: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(state dict with upstream key names, metadata such as training args) from the file's content."""
        raise NotImplementedError

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        """Config fields the file determines (shapes, stored hyperparameters); may raise KeyError.

        `metadata["config"]` holds the sidecar config file's content when the release has one."""
        raise NotImplementedError

    def adapt(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        """Reproduce a load-time quirk of the upstream code on the upstream state dict (default: none)."""

    def fixture_overrides(self, meta: dict[str, Any]) -> dict[str, Any]:
        """`--model.<field>` values a golden fixture needs (hyperparameters its files do not store)."""
        return {}

    def reference(self, path: Path, sequences: list[str], config: MultiMoleculeConfig) -> Reference | None:
        """Outputs of the original implementation on `sequences`, or None where it is not installed."""
        return None

    # the engine
    def tokenizer(self, config: MultiMoleculeConfig) -> PreTrainedTokenizer:
        return self.tokenizer_class(model_max_length=config.max_position_embeddings, **self.tokenizer_kwargs)

    def vocabulary(self, tokenizer: PreTrainedTokenizer) -> VocabularyRemap:
        return VocabularyRemap(self.upstream_vocabulary, list(tokenizer.get_vocab()), self.spellings, self.token_rows)

    def locate(self, path: str | Path) -> tuple[Path, Path | None]:
        """(weights file, sidecar config or None) of a checkpoint given as a file or a release directory."""
        path = Path(path)
        if path.is_dir():
            if self.weights_name is None:
                raise CheckpointError(f"checkpoint {path} is a directory; a {self.family} checkpoint is one file")
            weights = path / self.weights_name
            if not weights.is_file():
                held = ", ".join(sorted(child.name for child in path.iterdir())[:10]) or "nothing"
                raise CheckpointError(
                    f"checkpoint directory {path} has no {self.weights_name} (it holds {held}); "
                    f"expected a {self.family} release directory"
                )
        else:
            weights = path
        sidecar = weights.parent / self.config_name if self.config_name else None
        return weights, sidecar if sidecar is not None and sidecar.is_file() else None

    def convert(
        self, path: str | Path, overrides: Mapping[str, Any] | None = None, *, sha256: str | None = None
    ) -> Conversion:
        """Convert the checkpoint at `path` (a file or a release directory); `sha256` is the weights file's hash
        when the caller has already matched it to the catalogue (the bytes are then the release's own, and the
        archive's CRC-32s are not read again)."""
        path, sidecar = self.locate(path)
        if sha256 is not None:
            conversion = self._convert(path, sidecar, overrides)
            conversion.known_sha256 = sha256
            return conversion
        # torch does not check the archive's CRC-32s: a thread reads the records beside loading and building
        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(check_crcs, _checked_file(path))
            try:
                conversion = self._convert(path, sidecar, overrides)
            except Exception:
                if isinstance(checked.exception(), CheckpointError):  # damaged bytes explain any failure best
                    raise checked.exception() from None
                raise
            checked.result()
        return conversion

    def _convert(self, path: Path, sidecar: Path | None, overrides: Mapping[str, Any] | None) -> Conversion:
        content = load_checkpoint(path, self.extra_globals, records_checked=True)
        if not isinstance(content, Mapping):
            raise CheckpointError(f"{path} holds a {type(content).__name__}; a {self.family} checkpoint is a dict")
        state, metadata = self.unpack(content, path)
        if sidecar is not None:
            metadata["config"] = read_sidecar(sidecar)
        self.adapt(state, metadata)
        converted, dropped, unmatched, upstream_of = self.key_map.rename(state)

        overrides = coerce_overrides(self.config_class, overrides or {})
        try:
            derived = self.read_config(state, metadata)
        except KeyError:  # not this family's layout: list what the published model would have needed
            with torch.device("meta"):
                expected = set(self.architecture(self.config_class()).state_dict())
            missing = sorted(expected - set(converted))
            raise KeyMismatchError(path, f"{self.family} ({self.variant})", unmatched, missing, self.hint()) from None
        for name, value in overrides.items():
            if name in derived and derived[name] != value:
                raise ConversionError(
                    f"--model.{name} {value} contradicts the checkpoint, which says {name}={derived[name]}"
                )
        config = self._config(path, {**derived, **overrides})
        tokenizer = self.tokenizer(config)
        vocabulary = self.vocabulary(tokenizer)
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
        unexpected = unmatched + [upstream_of[key] for key in converted if key not in expected]
        if missing or unexpected:
            raise KeyMismatchError(path, f"{self.family} ({self.variant})", unexpected, missing, hint=self.hint())
        _check_shapes(model, converted, upstream_of, path)
        model.load_state_dict(converted, strict=True, assign=True)
        model.tie_weights()
        return Conversion(self, model.eval(), tokenizer, path, vocabulary, dropped, dict(overrides))

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


def read_sidecar(path: Path) -> dict[str, Any]:
    """A release's JSON config file; not covered by the catalogue's hash, so read as data and checked by type."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"could not read the config {path}: {error}") from None
    if not isinstance(content, dict):
        raise CheckpointError(f"the config {path} holds a JSON {type(content).__name__}, expected an object")
    return content


def tensor_size(state: Mapping[str, torch.Tensor], key: str, dim: int) -> int:
    """A dimension of a tensor the config is read from (a missing tensor is a KeyError: another layout)."""
    tensor = state[key]
    if not isinstance(tensor, torch.Tensor) or tensor.dim() <= dim:
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ConversionError(f"{key} has shape {shape}, which has no dimension {dim}")
    return tensor.shape[dim]


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


def _checked_file(path: Path) -> Path:
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}; expected an upstream checkpoint file")
    return path
