"""Fine-tune a converted checkpoint with transformers' Trainer: a sequence, a token and a contact task.

    python examples/finetune.py converted/rnafm [sequence|token|contact]

The data are toy labels computed from each sequence, so that the script runs anywhere; put your own in their place.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.stats import pearsonr
from transformers import AutoTokenizer, DataCollatorForTokenClassification, DataCollatorWithPadding, Trainer
from transformers import TrainingArguments as Arguments

from multimolecule import (
    AutoModelForContactPrediction,
    AutoModelForSequencePrediction,
    AutoModelForTokenPrediction,
    DataCollatorForContactPrediction,
)

SEQUENCES = ["GGGUGCGAUCAUACCAGCACUAAUG", "CCCUCCUGGGAAGUCC", "UCGUGAUCGAUCGGA", "AUGGCUAGCAAAGGAGAAGAACUUU"] * 4


def train(model, tokenizer, examples, collator, metrics, output="finetuned", steps=20):
    args = Arguments(output, max_steps=steps, per_device_train_batch_size=4, report_to=[], save_strategy="no")
    trainer = Trainer(model, args, data_collator=collator, train_dataset=examples, eval_dataset=examples,
                      compute_metrics=metrics)  # fmt: skip
    trainer.train()
    return trainer.evaluate()


def sequence_task(directory: str, **kwargs) -> dict:
    """Regression on one number per sequence (here its GC content), scored by Pearson's r."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequencePrediction.from_pretrained(directory, num_labels=1, problem_type="regression")
    examples = [{**tokenizer(s), "labels": (s.count("G") + s.count("C")) / len(s)} for s in SEQUENCES]

    def metrics(prediction):
        return {"pearson": pearsonr(prediction.predictions.ravel(), prediction.label_ids.ravel())[0]}

    return train(model, tokenizer, examples, DataCollatorWithPadding(tokenizer), metrics, **kwargs)


def token_task(directory: str, **kwargs) -> dict:
    """A class per nucleotide (here: purine or not); labels line up with the tokens, -100 at special tokens."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForTokenPrediction.from_pretrained(directory, num_labels=2)
    examples = []
    for sequence in SEQUENCES:
        encoded = tokenizer(sequence)
        tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
        special = tokenizer.get_special_tokens_mask(encoded["input_ids"], already_has_special_tokens=True)
        encoded["labels"] = [-100 if s else int(token in "AG") for token, s in zip(tokens, special, strict=True)]
        examples.append(encoded)
    return train(model, tokenizer, examples, DataCollatorForTokenClassification(tokenizer), accuracy, **kwargs)


def contact_task(directory: str, **kwargs) -> dict:
    """A class per nucleotide pair (here: Watson-Crick complementary or not), an (n, n) map per sequence."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForContactPrediction.from_pretrained(directory, num_labels=2)
    pairs = {("A", "U"), ("U", "A"), ("G", "C"), ("C", "G")}
    examples = [
        {**tokenizer(s), "labels": [[int((a, b) in pairs) for b in s] for a in s]} for s in SEQUENCES
    ]  # fmt: skip
    return train(model, tokenizer, examples, DataCollatorForContactPrediction(tokenizer), accuracy, **kwargs)


def accuracy(prediction) -> dict:
    """Over the labelled positions only: -100 marks special tokens, padding, and what is not labelled."""
    labels, predicted = prediction.label_ids, prediction.predictions.argmax(-1)
    return {"accuracy": float(np.mean(predicted[labels != -100] == labels[labels != -100]))}


TASKS = {"sequence": sequence_task, "token": token_task, "contact": contact_task}

if __name__ == "__main__":
    directory, *task = sys.argv[1:]
    for name in task or TASKS:
        print(name, TASKS[name](directory))
