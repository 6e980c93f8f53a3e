"""transformers' pipelines on every family: token classification (item 1), multi-label scores (item 3), left
padding (item 4) and fill-mask (item 5)."""

from __future__ import annotations

import pytest
import torch
from families import FAMILIES, SEQUENCES, checkpoint
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    pipeline,
)

LABELS = {0: "paired", 1: "unpaired", 2: "other"}


@pytest.mark.parametrize("family", FAMILIES)
def test_token_classification_pipeline_labels_each_nucleotide_with_its_own_output(family):
    directory = checkpoint(family)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(directory, num_labels=3, id2label=LABELS).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    tag = pipeline("token-classification", model=model, tokenizer=tokenizer, ignore_labels=[])
    entities = tag(SEQUENCES[0])
    with torch.no_grad():
        output = model(**tokenizer(SEQUENCES[0], return_tensors="pt"))
    expected = [LABELS[int(k)] for k in output.nucleotides()[0].argmax(-1)]
    assert [entity["entity"] for entity in entities] == expected
    assert [entity["word"] for entity in entities] == tokenizer.tokenize(SEQUENCES[0])


@pytest.mark.parametrize("family", FAMILIES)
def test_multilabel_config_stores_transformers_name_and_the_pipeline_scores_each_label(family, tmp_path):
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint(family), num_labels=3, problem_type="multilabel"
    ).eval()
    assert model.config.problem_type == "multi_label_classification"
    model.save_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert model.config.problem_type == "multi_label_classification"
    tokenizer = AutoTokenizer.from_pretrained(checkpoint(family))
    (scores,) = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)([SEQUENCES[0]])
    with torch.no_grad():
        expected = torch.sigmoid(model(**tokenizer(SEQUENCES[0], return_tensors="pt")).logits[0])
    got = torch.tensor([next(s["score"] for s in scores if s["label"] == f"LABEL_{i}") for i in range(3)])
    assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_cls_pooling_is_the_same_with_left_padding(family):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint(family), num_labels=2).eval()
    assert model.config.pooling == "cls"
    tokenizer = AutoTokenizer.from_pretrained(checkpoint(family), padding_side="left")
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, top_k=None)
    batched = classify(SEQUENCES, batch_size=len(SEQUENCES))
    alone = [classify([sequence])[0] for sequence in SEQUENCES]
    for one, other in zip(batched, alone, strict=True):
        assert [s["label"] for s in one] == [s["label"] for s in other]
        assert torch.allclose(torch.tensor([s["score"] for s in one]), torch.tensor([s["score"] for s in other]))


@pytest.mark.parametrize("family", FAMILIES)
def test_fill_mask_offers_only_tokens_of_the_alphabet(family):
    fill = pipeline("fill-mask", model=str(checkpoint(family)))
    tokenizer = fill.tokenizer
    tokens = tokenizer.tokenize(SEQUENCES[0])
    tokens[len(tokens) // 2] = tokenizer.mask_token
    predictions = fill(tokenizer.convert_tokens_to_string(tokens), top_k=tokenizer.vocab_size)
    specials = set(tokenizer.all_special_tokens) | {"<null>"}
    offered = [p for p in predictions if p["score"] > 0]
    assert offered and all(p["token_str"] not in specials for p in offered)
    assert all(len(p["sequence"]) == len(SEQUENCES[0]) for p in offered)
