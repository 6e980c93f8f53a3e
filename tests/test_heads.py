"""The shared prediction heads: outputs per sequence / nucleotide / pair, and their losses."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from multimolecule import (
    AutoModelForContactPrediction,
    AutoModelForSequencePrediction,
    AutoModelForTokenPrediction,
    RnaFmConfig,
    RnaFmForContactPrediction,
    RnaFmForSequencePrediction,
    RnaFmForTokenPrediction,
    RnaTokenizer,
)

SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
SEQUENCES = ["ACGUAGCUAG", "GGCUA", "UUAGCNNACGUAC"]
LENGTHS = [len(s) for s in SEQUENCES]


def make(model_class, **config):
    torch.manual_seed(0)
    return model_class(RnaFmConfig(**SIZE, **config)).eval()


def inputs(padding_side="right"):
    return RnaTokenizer(padding_side=padding_side)(SEQUENCES, padding=True, return_tensors="pt")


def test_token_prediction_has_one_output_per_input_token():
    model = make(RnaFmForTokenPrediction, num_labels=3)
    with torch.no_grad():
        output = model(**inputs())
        backbone = model.model(**inputs()).last_hidden_state
    assert output.logits.shape == (3, max(LENGTHS) + 2, 3)
    assert output.mask.sum(-1).tolist() == LENGTHS
    assert torch.allclose(output.logits, model.classifier(backbone), atol=1e-6)
    # nucleotide j of sequence i is token j + 1, after <cls>
    for i, n in enumerate(LENGTHS):
        assert torch.allclose(output.nucleotides()[i], model.classifier(backbone[i, 1 : n + 1]), atol=1e-6)


def test_outputs_do_not_depend_on_padding_side():
    model = make(RnaFmForTokenPrediction, num_labels=2)
    with torch.no_grad():
        right, left = model(**inputs("right")), model(**inputs("left"))
    for one, other in zip(right.nucleotides(), left.nucleotides(), strict=True):
        assert torch.allclose(one, other, atol=1e-5)


def test_contact_prediction_is_symmetric_per_nucleotide_pair():
    model = make(RnaFmForContactPrediction, num_labels=2)
    with torch.no_grad():
        output = model(**inputs())
    length = max(LENGTHS) + 2
    assert output.logits.shape == (3, length * length, 2)
    maps = output.logits.unflatten(1, (length, length))
    assert torch.allclose(maps, maps.transpose(1, 2), atol=1e-6)
    assert [tuple(m.shape) for m in output.nucleotides()] == [(n, n, 2) for n in LENGTHS]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_pooling(pooling):
    model = make(RnaFmForSequencePrediction, num_labels=1, pooling=pooling)
    batch = inputs()
    with torch.no_grad():
        output = model(**batch)
        hidden = model.model(**batch).last_hidden_state
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:  # nucleotides only: neither <cls>, <eos> nor padding
        pooled = torch.stack([hidden[i, 1 : n + 1].mean(0) for i, n in enumerate(LENGTHS)])
    assert torch.allclose(output.logits, model.classifier(pooled), atol=1e-6)


def test_regression_loss_ignores_padding_and_minus_100():
    model = make(RnaFmForTokenPrediction, num_labels=1, problem_type="regression")
    n = max(LENGTHS) + 2
    labels = torch.randn(3, n)
    labels[0, 2] = -100  # ignored
    labels[1, LENGTHS[1] + 1 :] = 1e6  # <eos> and padding: ignored whatever they hold
    with torch.no_grad():
        output = model(**inputs(), labels=labels)
    keep = output.mask.clone()
    keep[0, 2] = False
    expected = F.mse_loss(output.logits.squeeze(-1)[keep], labels[keep])
    assert torch.allclose(output.loss, expected)


def test_multiclass_binary_and_multilabel_losses():
    n = max(LENGTHS) + 2
    model = make(RnaFmForTokenPrediction, num_labels=4, problem_type="multiclass")
    labels = torch.randint(0, 4, (3, n))
    labels[~model(**inputs()).mask] = -100
    with torch.no_grad():
        output = model(**inputs(), labels=labels)
    assert torch.allclose(output.loss, F.cross_entropy(output.logits[output.mask], labels[output.mask]))

    model = make(RnaFmForSequencePrediction, num_labels=1, problem_type="binary")
    labels = torch.tensor([0, 1, 1])
    with torch.no_grad():
        output = model(**inputs(), labels=labels)
    assert torch.allclose(output.loss, F.binary_cross_entropy_with_logits(output.logits.squeeze(-1), labels.float()))

    model = make(RnaFmForSequencePrediction, num_labels=3, problem_type="multilabel")
    labels = torch.tensor([[0.0, 1.0, 1.0], [1.0, -100, 0.0], [0.0, 0.0, 0.0]])
    with torch.no_grad():
        output = model(**inputs(), labels=labels)
    keep = labels != -100
    assert torch.allclose(output.loss, F.binary_cross_entropy_with_logits(output.logits[keep], labels[keep]))


def test_contact_loss_counts_only_real_pairs():
    model = make(RnaFmForContactPrediction, num_labels=1, problem_type="binary")
    n = max(LENGTHS) + 2
    labels = torch.randint(0, 2, (3, n, n))
    with torch.no_grad():
        output = model(**inputs(), labels=labels)
    pairs = (output.mask.unsqueeze(-1) & output.mask.unsqueeze(-2)).flatten(1)
    expected = F.binary_cross_entropy_with_logits(output.logits.squeeze(-1)[pairs], labels.flatten(1)[pairs].float())
    assert torch.allclose(output.loss, expected)


@pytest.mark.parametrize(
    ("num_labels", "labels", "inferred"),
    [
        (1, torch.tensor([0.5, 1.0, 2.0]), "regression"),
        (3, torch.tensor([0, 2, 1]), "single_label_classification"),
        (3, torch.tensor([[0.0, 1.0, 0.0]] * 3), "multi_label_classification"),
    ],
)
def test_problem_type_follows_transformers_convention_when_unset(num_labels, labels, inferred):
    model = make(RnaFmForSequencePrediction, num_labels=num_labels)
    assert model.config.problem_type is None
    model(**inputs(), labels=labels)
    assert model.config.problem_type == inferred


def test_transformers_problem_type_names_are_accepted():
    model = make(RnaFmForSequencePrediction, num_labels=3, problem_type="single_label_classification")
    output = model(**inputs(), labels=torch.tensor([0, 2, 1]))
    assert torch.allclose(output.loss, F.cross_entropy(output.logits, torch.tensor([0, 2, 1])))


@pytest.mark.parametrize(
    ("config", "labels", "message"),
    [
        ({"num_labels": 3, "problem_type": "multiclass"}, torch.tensor([0.5, 1.0, 2.0]), "integer class indices"),
        ({"num_labels": 3, "problem_type": "multiclass"}, torch.tensor([0, 3, 1]), r"lie in \[0, 2\]"),
        ({"num_labels": 2, "problem_type": "binary"}, torch.tensor([0, 1, 1]), "binary needs num_labels=1"),
        ({"num_labels": 1, "problem_type": "binary"}, torch.tensor([0, 2, 1]), r"binary labels must lie in \[0, 1\]"),
        ({"num_labels": 3, "problem_type": "multilabel"}, torch.tensor([1.0, 0.0, 1.0]), r"needs \(3, 3\)"),
        ({"num_labels": 1, "problem_type": "regression"}, torch.randn(3, 2), r"labels have shape \(3, 2\)"),
    ],
)
def test_labels_that_contradict_the_problem_type_are_clear_errors(config, labels, message):
    model = make(RnaFmForSequencePrediction, **config)
    with pytest.raises(ValueError, match=message):
        model(**inputs(), labels=labels)


def test_unknown_problem_type_or_pooling_is_rejected_in_the_config():
    with pytest.raises(ValueError, match="problem_type must be one of"):
        RnaFmConfig(problem_type="ranking")
    with pytest.raises(ValueError, match="pooling must be one of cls, mean"):
        RnaFmConfig(pooling="max")


@pytest.mark.parametrize(
    ("auto", "expected"),
    [
        (AutoModelForSequencePrediction, RnaFmForSequencePrediction),
        (AutoModelForTokenPrediction, RnaFmForTokenPrediction),
        (AutoModelForContactPrediction, RnaFmForContactPrediction),
        (AutoModelForSequenceClassification, RnaFmForSequencePrediction),
        (AutoModelForTokenClassification, RnaFmForTokenPrediction),
    ],
)
def test_auto_classes_build_the_family_heads_from_a_config(auto, expected):
    assert type(auto.from_config(RnaFmConfig(**SIZE, num_labels=2))) is expected
