"""`pipeline("rna-secondary-structure")`: probabilities, base pairs and dot-bracket from the fixtures."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import golden_case, run_convert
from transformers import pipeline

from multimolecule import RnaFmConfig, RnaFmForSecondaryStructurePrediction
from multimolecule.io import from_dot_bracket
from multimolecule.pipelines import pairs_from_probabilities, release_threshold

SEQUENCE = "GGGUGCGAUCAUACCAGCACUAAUGCCCUCC"


def test_structure_from_the_ss_head(converted):
    predictor = pipeline("rna-secondary-structure", model=str(converted["rnafm-ss"]))
    assert isinstance(predictor.model, RnaFmForSecondaryStructurePrediction)
    result = predictor(SEQUENCE)
    n = len(SEQUENCE)
    assert result["threshold"] == pytest.approx(0.47729617)  # the catalogue's, stored in config at conversion
    inputs = predictor.tokenizer(SEQUENCE, return_tensors="pt")
    with torch.no_grad():
        expected = torch.sigmoid(predictor.model(**inputs).logits[0])
    torch.testing.assert_close(result["probabilities"], expected)
    assert result["pairs"] == pairs_from_probabilities(expected, 0.47729617)
    assert result["pairs"], "the fixture predicts some pairs above the threshold"
    assert len(result["dot_bracket"]) == n and from_dot_bracket(result["dot_bracket"]) == result["pairs"]
    paired = [base for pair in result["pairs"] for base in pair]
    assert len(paired) == len(set(paired))  # each base pairs at most once
    assert predictor(SEQUENCE, threshold=1.0)["dot_bracket"] == "." * n
    batch = predictor([SEQUENCE, SEQUENCE[:12]])
    assert [len(r["dot_bracket"]) for r in batch] == [n, 12]


def test_contacts_option_for_masked_lm(converted):
    predictor = pipeline("rna-secondary-structure", model=str(converted["rnafm"]))
    with pytest.raises(ValueError, match=r"no secondary-structure head .* pass contacts=True"):
        predictor(SEQUENCE)
    with pytest.raises(ValueError, match="no release tuned a threshold"):
        predictor(SEQUENCE, contacts=True)
    result = predictor(SEQUENCE, contacts=True, threshold=0.5)
    inputs = predictor.tokenizer(SEQUENCE, return_tensors="pt")
    with torch.no_grad():
        contacts = predictor.model(**inputs, return_contacts=True).contacts[0]
    torch.testing.assert_close(result["probabilities"], contacts)
    assert result["pairs"] == pairs_from_probabilities(contacts, 0.5)


def test_release_threshold_sources():
    config = RnaFmConfig(num_hidden_layers=1, hidden_size=8, num_attention_heads=2, intermediate_size=8)
    with pytest.raises(ValueError, match="no release threshold is known"):
        release_threshold(config)
    config._name_or_path = "multimolecule/rnafm-ss"  # loaded from the Hub before the config stored it
    assert release_threshold(config) == pytest.approx(0.47729617)
    config.pair_threshold = 0.3
    assert release_threshold(config) == 0.3


def test_every_structure_release_goes_through_the_pipeline(tmp_path):
    """Each family's structure model gives base pairs: at the threshold stored in its file or the catalogue, or,
    where the release has none (ERNIE-RNA calls pairs with a solver), at the caller's."""
    for family, case_name in (("rinalmo", "rinalmo-ss"), ("ernierna", "ernierna-ss")):
        case = golden_case(family, case_name)
        output = tmp_path / case_name
        argv = ("--checkpoint", case.checkpoint, "--output", output, "--no-verify", *case.overrides)
        assert run_convert(case.variant, *argv) == 0
        stored = json.loads((output / "config.json").read_text()).get("pair_threshold")
        predictor = pipeline("rna-secondary-structure", model=str(output))
        if stored is None:
            with pytest.raises(ValueError, match="no release threshold is known"):
                predictor(SEQUENCE)
        result = predictor(SEQUENCE, threshold=0.5) if stored is None else predictor(SEQUENCE)
        assert result["threshold"] == pytest.approx(0.5 if stored is None else stored)
        assert from_dot_bracket(result["dot_bracket"]) == result["pairs"]
