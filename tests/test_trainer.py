"""transformers' Trainer and collators on every family (items 1 and 6): token labels through
DataCollatorForTokenClassification, contact labels through DataCollatorForContactPrediction, and evaluate / predict
across batches of different lengths giving compute_metrics one array of logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from families import FAMILIES, SEQUENCES, checkpoint
from transformers import (
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)

from multimolecule import AutoModelForContactPrediction, AutoModelForTokenPrediction, DataCollatorForContactPrediction

EVAL = SEQUENCES * 2  # batch size 2: batches of different lengths


def args(tmp_path) -> TrainingArguments:
    return TrainingArguments(
        tmp_path, per_device_train_batch_size=2, per_device_eval_batch_size=2, max_steps=2, report_to=[],
        use_cpu=True, save_strategy="no", logging_strategy="no", disable_tqdm=True,
    )  # fmt: skip


def token_examples(tokenizer) -> list[dict]:
    examples = []
    for index, sequence in enumerate(EVAL):
        ids = tokenizer(sequence)["input_ids"]
        special = tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        labels = [-100 if s else (index + position) % 2 for position, s in enumerate(special)]
        examples.append({"input_ids": ids, "labels": labels})
    return examples


def accuracy(prediction) -> dict:
    """The tutorials' compute_metrics: argmax, then only the labelled positions."""
    labels = prediction.label_ids
    predicted = prediction.predictions.argmax(-1)
    return {"accuracy": float((predicted[labels != -100] == labels[labels != -100]).mean())}


def train_and_predict(model, collator, examples, tmp_path):
    """A few training steps, then `predict`, whose predictions must be one array."""
    trainer = Trainer(
        model, args(tmp_path), data_collator=collator, train_dataset=examples, eval_dataset=examples,
        compute_metrics=accuracy,
    )  # fmt: skip
    trainer.train()
    predicted = trainer.predict(examples)
    assert isinstance(predicted.predictions, np.ndarray)
    return trainer, predicted


def direct_accuracy(model, tokenizer, examples, flat=False) -> float:
    hits = total = 0
    model.eval()
    for example in examples:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
        labels = torch.as_tensor(example["labels"]).flatten() if flat else torch.tensor(example["labels"])
        keep = labels != -100
        hits += int((logits.argmax(-1)[keep] == labels[keep]).sum())
        total += int(keep.sum())
    return hits / total


@pytest.mark.parametrize("family", FAMILIES)
def test_token_classification_with_trainer_and_collator(family, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(checkpoint(family))
    torch.manual_seed(0)
    model = AutoModelForTokenPrediction.from_pretrained(checkpoint(family), num_labels=2)
    examples = token_examples(tokenizer)
    trainer, predicted = train_and_predict(model, DataCollatorForTokenClassification(tokenizer), examples, tmp_path)
    longest = max(len(example["input_ids"]) for example in examples)
    assert predicted.predictions.shape == (len(examples), longest, 2)
    expected = direct_accuracy(model, tokenizer, examples)
    assert predicted.metrics["test_accuracy"] == pytest.approx(expected)
    assert trainer.evaluate()["eval_accuracy"] == pytest.approx(expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_contact_prediction_with_trainer_across_batches_of_different_lengths(family, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(checkpoint(family))
    torch.manual_seed(0)
    model = AutoModelForContactPrediction.from_pretrained(checkpoint(family), num_labels=2)
    examples = []
    for sequence in EVAL:
        ids = tokenizer(sequence)["input_ids"]
        n = len(tokenizer.tokenize(sequence))
        pairs = torch.arange(n)
        examples.append({"input_ids": ids, "labels": ((pairs[:, None] - pairs[None, :]).abs() < 3).long()})
    trainer, predicted = train_and_predict(model, DataCollatorForContactPrediction(tokenizer), examples, tmp_path)
    collated = [DataCollatorForContactPrediction(tokenizer)([dict(example)]) for example in examples]
    aligned = [{"input_ids": c["input_ids"][0].tolist(), "labels": c["labels"][0]} for c in collated]
    expected = direct_accuracy(model, tokenizer, aligned, flat=True)
    assert predicted.metrics["test_accuracy"] == pytest.approx(expected)
    assert trainer.evaluate()["eval_accuracy"] == pytest.approx(expected)
