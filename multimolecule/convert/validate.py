"""Proving a converted directory right before it is published.

1. It loads through every Auto class with every backbone weight present (only a new prediction head may be
   freshly initialised) and each loaded model runs a forward pass.
2. The tokenizer loads through `AutoTokenizer` and round-trips the reference sequences.
3. The fill-mask pipeline runs on masked-LM checkpoints.
4. Parity: against the golden fixture (outputs computed by the original code), and against the original
   implementation run live when it is installed; reported as max |difference| per output.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, pipeline
from transformers.utils import logging as transformers_logging

from ..models.modeling_utils import ForSecondaryStructurePrediction
from ..models.registry import (
    AutoModelForContactPrediction,
    AutoModelForSecondaryStructurePrediction,
    AutoModelForSequencePrediction,
    AutoModelForTokenPrediction,
)
from ..modules.heads import nucleotide_mask
from .engine import Conversion
from .vocabulary import VocabularyRemap

# Auto class -> prefixes of the weights it may add (a new task head, `classifier`); any other missing weight is a
# failure. The structure Auto class is checked on structure models only.
AUTO_CLASSES = (
    (AutoModel, ()),
    (AutoModelForMaskedLM, ()),
    (AutoModelForSequencePrediction, ("classifier.",)),
    (AutoModelForTokenPrediction, ("classifier.",)),
    (AutoModelForContactPrediction, ("classifier.",)),
    (AutoModelForSecondaryStructurePrediction, ()),
)


@dataclass
class Reference:
    """Outputs of the original implementation, in its conventions (ids in its vocabulary order)."""

    name: str
    tensors: dict[str, torch.Tensor]
    vocabulary: list[str]
    atol: float = 1e-4
    rtol: float = 1e-4


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ValidationReport:
    checks: list[Check] = field(default_factory=list)
    parity: dict[str, dict[str, float]] = field(default_factory=dict)  # reference -> output -> max |diff|

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        lines = [
            f"{'ok ' if check.ok else 'FAIL'} {check.name}{': ' + check.detail if check.detail else ''}"
            for check in self.checks
        ]
        return "\n".join(lines)


def attach_written_weights(model: torch.nn.Module, directory: Path) -> None:
    """Point `model`'s weights at the safetensors file just written to `directory` (memory-mapped, no copy).

    The tensors read from the upstream file are then freed, so validation never holds two copies of the weights:
    the Auto classes map the same file, and the parity checks run on exactly the weights being published.
    """
    state = load_file(directory / "model.safetensors")  # memory-mapped: pages are read when first used
    result = model.load_state_dict(state, strict=False, assign=True)
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    untied = sorted(set(result.missing_keys) - tied)
    if untied or result.unexpected_keys:
        raise ValueError(f"the written file does not match the model: missing {untied}, unexpected "
                         f"{sorted(result.unexpected_keys)}")  # fmt: skip
    model.tie_weights()
    gc.collect()


def golden_cases(golden_dir: Path | None, family: str) -> list[tuple[Path, dict]]:
    """(case directory, meta) of every golden fixture of a family."""
    if golden_dir is None or not (golden_dir / family).is_dir():
        return []
    cases = []
    for meta_path in sorted((golden_dir / family).glob("*/meta.json")):
        cases.append((meta_path.parent, json.loads(meta_path.read_text())))
    return cases


def golden_reference(case: Path, meta: dict) -> Reference:
    upstream = meta["upstream"]
    return Reference(
        name=f"golden fixture {meta['family']}/{meta['case']} ({upstream.get('package', upstream.get('commit'))})",
        tensors=load_file(case / "expected.safetensors"),
        vocabulary=meta["vocab"],
        atol=meta["tolerance"]["atol"],
        rtol=meta["tolerance"]["rtol"],
    )


def validate(
    directory: Path, conversion: Conversion, parity: list[tuple[Conversion, Reference]], sequences: list[str]
) -> ValidationReport:
    """Check the saved `directory` of `conversion`; `parity` pairs a conversion (this one, or a golden fixture's
    converted by the same converter as a self-test) with reference outputs to match."""
    report = ValidationReport()
    with _quiet_transformers():
        report.checks.append(_check_tokenizer(directory, conversion, sequences))
        for auto, new_prefixes in AUTO_CLASSES:
            if auto is AutoModelForMaskedLM and not hasattr(conversion.model, "lm_head"):
                continue
            if (auto is AutoModelForSecondaryStructurePrediction) != isinstance(
                conversion.model, ForSecondaryStructurePrediction
            ):
                continue
            report.checks.append(_check_auto_class(directory, auto, new_prefixes, conversion, sequences))
        if hasattr(conversion.model, "lm_head"):
            report.checks.append(_check_fill_mask(directory, sequences))
        for converted, reference in parity:
            report.checks.append(check_parity(converted, reference, report.parity))
    return report


def _check_tokenizer(directory: Path, conversion: Conversion, sequences: list[str]) -> Check:
    name = "AutoTokenizer loads and round-trips the reference sequences"
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
        if type(tokenizer) is not type(conversion.tokenizer):
            return Check(
                name, False, f"loaded {type(tokenizer).__name__}, expected {type(conversion.tokenizer).__name__}"
            )
        for sequence in sequences:
            decoded = tokenizer.decode(tokenizer(sequence)["input_ids"], skip_special_tokens=True)
            if decoded != sequence:
                return Check(name, False, f"{sequence!r} came back as {decoded!r}")
    except Exception as error:  # any failure to load or run is the finding
        return Check(name, False, f"{type(error).__name__}: {error}")
    return Check(name, True, f"{type(tokenizer).__name__}, {len(sequences)} sequences")


def _check_auto_class(directory: Path, auto, new_prefixes: tuple[str, ...], conversion: Conversion, sequences) -> Check:
    name = f"{auto.__name__} loads with every backbone weight and runs"
    try:
        new_head = {"num_labels": 2} if new_prefixes else {}  # a new head on purpose, even on a structure model
        model, info = auto.from_pretrained(directory, output_loading_info=True, **new_head)
        missing = sorted(key for key in info["missing_keys"] if not key.startswith(new_prefixes))
        if missing or info["mismatched_keys"]:
            return Check(
                name, False, f"not loaded from the checkpoint: {missing + sorted(map(str, info['mismatched_keys']))}"
            )
        batch = conversion.tokenizer(sequences, padding=True, return_tensors="pt")
        with torch.no_grad():
            output = model.eval()(**batch)
        values = output.logits if getattr(output, "logits", None) is not None else output.last_hidden_state
        if not torch.isfinite(values).all():
            return Check(name, False, "the forward pass produced non-finite values")
    except Exception as error:  # any failure to load or run is the finding
        return Check(name, False, f"{type(error).__name__}: {error}")
    fresh = sorted(key for key in info["missing_keys"])
    loaded = type(model).__name__
    del model, output, values
    gc.collect()  # the next Auto class maps the weights again: this one's mapping goes first
    return Check(name, True, loaded + (f", new head: {len(fresh)} tensors" if fresh else ""))


def _check_fill_mask(directory: Path, sequences: list[str]) -> Check:
    name = "the fill-mask pipeline runs"
    try:
        fill = pipeline("fill-mask", model=str(directory), tokenizer=str(directory))
        tokenizer = fill.tokenizer
        tokens = tokenizer.tokenize(sequences[0])
        tokens[len(tokens) // 2] = tokenizer.mask_token
        predictions = fill(tokenizer.convert_tokens_to_string(tokens), top_k=3)
        best = ", ".join(f"{p['token_str']} ({p['score']:.2f})" for p in predictions)
        del fill
        gc.collect()
    except Exception as error:  # any failure to load or run is the finding
        return Check(name, False, f"{type(error).__name__}: {error}")
    return Check(name, True, f"top predictions for a masked middle token: {best}")


def check_parity(conversion: Conversion, reference: Reference, parity: dict[str, dict[str, float]]) -> Check:
    """Compare the converted model with a reference's outputs; record max |difference| per output."""
    name = f"parity with {reference.name}"
    try:
        differences, failures = compare_outputs(conversion, reference)
    except Exception as error:  # any failure to run is the finding
        return Check(name, False, f"{type(error).__name__}: {error}")
    parity[reference.name] = differences
    detail = ", ".join(f"{output} {difference:.1e}" for output, difference in differences.items())
    if failures:
        return Check(
            name, False, f"outside atol={reference.atol}, rtol={reference.rtol}: {', '.join(failures)} ({detail})"
        )
    return Check(name, True, f"max |difference|: {detail}")


def compare_outputs(conversion: Conversion, reference: Reference) -> tuple[dict[str, float], list[str]]:
    model, converter, tensors = conversion.model, conversion.converter, reference.tensors
    remap = VocabularyRemap(
        reference.vocabulary, list(conversion.tokenizer.get_vocab()), converter.spellings, converter.token_rows
    )
    input_ids = remap.ids(tensors["input_ids"])
    attention_mask = tensors["attention_mask"]
    ours = _our_outputs(model, input_ids, attention_mask)
    tokens = attention_mask.bool()
    nucleotides = nucleotide_mask(model.config, input_ids, attention_mask)
    if nucleotides.dim() == 3:  # alignments (batch, rows, columns): pair outputs are over the query row's columns
        nucleotides = nucleotides[:, 0]
    lengths = nucleotides.sum(-1).tolist()
    columns = remap.shared_columns()

    differences, failures = {}, []
    for name, (field_name, kind) in converter.parity.items():
        if name not in tensors:
            continue
        actual, expected = ours[field_name], tensors[name]
        if kind == "tokens":
            actual, expected = actual[tokens], expected[tokens]
        elif kind == "sequences":
            pass  # one row per sequence: compared whole
        elif kind == "layers":
            actual, expected = torch.stack(actual)[:, tokens], expected[:, tokens]
        elif kind == "vocabulary":
            actual, expected = actual[tokens][:, columns[0]], expected[tokens][:, columns[1]]
        elif kind == "token_pairs":  # (batch, [heads,] length, length) over every real token
            actual, expected = (
                torch.cat([tensor[i][..., real, :][..., real].flatten() for i, real in enumerate(tokens)])
                for tensor in (actual, expected)
            )
        elif kind == "pairs":
            actual = torch.cat([actual[i, :n, :n].flatten() for i, n in enumerate(lengths)])
            expected = torch.cat([expected[i, :n, :n].flatten() for i, n in enumerate(lengths)])
        differences[name] = (actual - expected).abs().max().item() if actual.numel() else 0.0
        if actual.shape != expected.shape or not torch.allclose(
            actual, expected, atol=reference.atol, rtol=reference.rtol
        ):
            failures.append(name)
    if not differences:
        raise ValueError(f"the reference has none of the outputs {sorted(converter.parity)}")
    return differences, failures


def _our_outputs(model, input_ids, attention_mask) -> dict:
    """The model's outputs by name, with the last layer's hidden states as `last_hidden_state`."""
    kwargs = {"return_contacts": True} if getattr(model, "contact_head", None) is not None else {}
    with torch.no_grad():
        output = model.eval()(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
    ours = {key: value for key, value in output.items() if value is not None}
    ours["last_hidden_state"] = output.hidden_states[-1]
    return ours


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Load reports and progress bars are noise here: the checks read the loading info themselves."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        transformers_logging.enable_progress_bar()
