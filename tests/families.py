"""Every model family, as a tiny converted checkpoint on disk: the ecosystem tests run over all of them.

Families come from `multimolecule.converters.FAMILIES`; each uses its first golden fixture (converted by its own
converter, no validation run), its structure fixture where it has one, and a family without fixtures is built from
its registered config at a tiny size, so a new family is covered as soon as it is listed.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch
from conftest import GOLDEN, golden_case
from transformers import AutoConfig, AutoModelForMaskedLM

from multimolecule import RnaTokenizer, converters
from multimolecule.models.modeling_utils import STRUCTURE_SUFFIX

FAMILIES = list(converters.FAMILIES)
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
# lengths that are multiples of 3, so codon families read them too
SEQUENCES = ["AUGGCUAGCAAAGGA", "AUGGCU", "AUGGCUAGCAAAGGAGAAGAA"]


def _cases(family: str) -> list:
    return [golden_case(family, meta.parent.name) for meta in sorted((GOLDEN / family).glob("*/meta.json"))]


def _is_structure(case) -> bool:
    return converters.get_converter(case.variant).architecture.__name__.endswith(STRUCTURE_SUFFIX)


def _directory(prefix: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, directory, True)
    return directory


def convert(case, directory: Path) -> Path:
    """The fixture `case` converted by its own converter into `directory` (model and tokenizer)."""
    converter = converters.get_converter(case.variant)
    conversion = converter.convert(case.checkpoint, converter.fixture_overrides(case.meta))
    conversion.model.save_pretrained(directory)
    conversion.tokenizer.save_pretrained(directory)
    return directory


@functools.cache
def checkpoint(family: str) -> Path:
    """A directory holding the family's tiny masked-LM (or pre-training) checkpoint and its tokenizer."""
    directory = _directory(f"mm-{family}-")
    cases = [case for case in _cases(family) if not _is_structure(case)]
    if cases:
        return convert(cases[0], directory)
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(AutoConfig.for_model(family, **TINY)).save_pretrained(directory)
    RnaTokenizer().save_pretrained(directory)
    return directory


STRUCTURE_FAMILIES = [family for family in FAMILIES if any(_is_structure(case) for case in _cases(family))]


@functools.cache
def structure_checkpoint(family: str) -> Path:
    case = next(case for case in _cases(family) if _is_structure(case))
    return convert(case, _directory(f"mm-{family}-ss-"))
