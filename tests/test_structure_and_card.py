"""Structure models through an Auto class (item 8), the package version and the card's install line (item 9), and
a FASTA record handed to the tokenizer."""

from __future__ import annotations

import importlib.metadata
import json
import re
from types import SimpleNamespace

import pytest
from conftest import golden_case, run_convert
from families import STRUCTURE_FAMILIES, structure_checkpoint
from packaging.version import Version
from transformers import AutoTokenizer, pipeline

import multimolecule
from multimolecule import AutoModelForSecondaryStructurePrediction, RnaTokenizer, converters
from multimolecule.convert.card import _usage, install_line
from multimolecule.convert.catalogue import lookup
from multimolecule.models.modeling_utils import STRUCTURE_SUFFIX


@pytest.mark.parametrize("family", STRUCTURE_FAMILIES)
def test_structure_model_loads_through_its_auto_class_and_architectures(family):
    directory = structure_checkpoint(family)
    model = AutoModelForSecondaryStructurePrediction.from_pretrained(directory)
    architecture = json.loads((directory / "config.json").read_text())["architectures"][0]
    assert type(model) is getattr(multimolecule, architecture)
    with pytest.raises(ValueError, match="AutoModelForSecondaryStructurePrediction"):
        pipeline("token-classification", model=str(directory))


@pytest.mark.parametrize("family", STRUCTURE_FAMILIES)
def test_structure_card_first_snippet_loads_the_structure_model(family):
    directory = structure_checkpoint(family)
    variants = converters.family_variants(family).items()
    variant = next(name for name, c in variants if c.architecture.__name__.endswith(STRUCTURE_SUFFIX))
    model = AutoModelForSecondaryStructurePrediction.from_pretrained(directory)
    conversion = SimpleNamespace(model=model, tokenizer=AutoTokenizer.from_pretrained(directory))
    entry = lookup(variant)
    # the converted directory stands in for the Hub repository the card names
    snippet = re.search(r"```python\n(.*?)```", _usage(entry, conversion), re.S).group(1)
    namespace: dict = {}
    exec(snippet.replace(entry.repo_id, str(directory)), namespace)
    assert type(namespace["model"]) is converters.get_converter(variant).architecture
    assert namespace["pairing"].shape[-1] == namespace["pairing"].shape[-2] > 0


def test_version_supersedes_the_unrelated_release_and_the_card_pins_it():
    assert Version(multimolecule.__version__) > Version("0.2.2")
    assert importlib.metadata.version("multimolecule") == multimolecule.__version__
    assert install_line() == f'pip install "multimolecule>={multimolecule.__version__}"'


def test_card_install_line_is_in_every_card(tmp_path):
    case = golden_case("rnafm", "rnafm")
    assert run_convert(case.variant, "--checkpoint", case.checkpoint, "--output", tmp_path / "out", "--no-verify") == 0
    assert install_line() in (tmp_path / "out" / "README.md").read_text()


def test_fasta_record_with_its_header_is_a_clear_error():
    tokenizer = RnaTokenizer()
    with pytest.raises(ValueError, match="FASTA header"):
        tokenizer(">seq1\nACGU")
    with pytest.warns(UserWarning, match="outside the RNA alphabet"):
        RnaTokenizer().tokenize("hello world")
    assert tokenizer("ACGU")["input_ids"] == [1, 6, 7, 8, 9, 2]
