"""PEFT's LoRA task types (item 2) and torch.compile / torch.export (item 7) on every family."""

from __future__ import annotations

import pytest
import torch
from families import FAMILIES, SEQUENCES, checkpoint
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

TASKS = {"SEQ_CLS": AutoModelForSequenceClassification, "TOKEN_CLS": AutoModelForTokenClassification}


def batch(family):
    return AutoTokenizer.from_pretrained(checkpoint(family))(SEQUENCES, padding=True, return_tensors="pt")


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", FAMILIES)
def test_lora_task_type_trains_and_saves_the_head(family, task, tmp_path):
    inputs = batch(family)
    torch.manual_seed(0)
    base = TASKS[task].from_pretrained(checkpoint(family), num_labels=2)
    model = get_peft_model(base, LoraConfig(task_type=task, target_modules=["q_proj", "v_proj"]))
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert any(".classifier." in name for name in trainable)
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    labels = torch.ones(inputs["input_ids"].shape, dtype=torch.long) if task == "TOKEN_CLS" else torch.tensor([0, 1, 1])
    for _ in range(2):
        model(**inputs, labels=labels).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    with torch.no_grad():
        trained = model(**inputs).logits
    model.save_pretrained(tmp_path)
    torch.manual_seed(1)  # another random head: the adapter must bring the trained one
    fresh = TASKS[task].from_pretrained(checkpoint(family), num_labels=2)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(**inputs).logits, trained, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_compile_fullgraph_and_export_match_eager(family):
    inputs = batch(family)
    model = AutoModelForTokenClassification.from_pretrained(checkpoint(family), num_labels=2).eval()
    torch._dynamo.reset()  # each family compiles the shared forward anew: earlier families' graphs do not count
    with torch.no_grad():
        eager = model(**inputs).logits
        compiled = torch.compile(model, fullgraph=True, backend="eager")(**inputs).logits
        exported = torch.export.export(model, (), dict(inputs)).module()(**inputs).logits
    assert torch.allclose(compiled, eager, atol=1e-5)
    assert torch.allclose(exported, eager, atol=1e-5)
    bad = inputs["input_ids"].clone()
    bad[0, 1] = model.config.vocab_size
    with pytest.raises(ValueError, match="input_ids must lie in"):  # eager keeps its clear error
        model(input_ids=bad)
