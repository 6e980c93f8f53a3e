"""Packed execution of padded batches (issue 14, item 3): on a batch with padding, the shared encoder's per-token
work runs on the real tokens only, packed as (tokens, hidden); attention runs on the re-padded queries, keys and
values. Real tokens must get what the padded path gives them and what each sequence gets alone, gradients
included; families whose layers need the padded layout (RNA-MSM's axial attention, ERNIE-RNA's carried scores)
keep the padded path, as do attention weights and torch.compile."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from families import FAMILIES, SEQUENCES, checkpoint
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

PADDED_ONLY = {"ernierna", "rnamsm"}  # a flowing pair bias / axial attention over (batch, rows, columns)
PACKED = [family for family in FAMILIES if family not in PADDED_ONLY]
# mixed lengths: the longest, the shortest and one between, in an order where padding sits in every row but one
MIXED = [SEQUENCES[1], SEQUENCES[2], SEQUENCES[0]]


def tolerance(expected: torch.Tensor) -> dict[str, float]:
    """float32 rounding of a few layers, relative to the size of what is compared."""
    return {"rtol": 1e-5, "atol": 1e-5 * max(1.0, expected.abs().max().item())}


def load(family: str, model_class=AutoModel, **overrides) -> torch.nn.Module:
    return model_class.from_pretrained(checkpoint(family), **overrides).eval()


def encode(family: str, side: str = "right") -> dict[str, torch.Tensor]:
    tokenizer = AutoTokenizer.from_pretrained(checkpoint(family), padding_side=side)
    return tokenizer(MIXED, padding=True, return_tensors="pt")


@contextmanager
def layer_inputs(model: torch.nn.Module):
    """The number of dimensions of the hidden states each encoder layer is called with: 2 when packed."""
    seen: list[int] = []
    layers = getattr(model, "model", model).encoder.layers
    hooks = [layer.register_forward_pre_hook(lambda _, args: seen.append(args[0].dim())) for layer in layers]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def zero_at_padding(output, real: torch.Tensor) -> bool:
    """Padded positions of every returned hidden state hold zeros, whichever path ran (the embeddings,
    `hidden_states[0]`, are zeroed there by the embedding layer)."""
    states = (output.last_hidden_state, *(output.hidden_states or ()))
    return all((state[~real] == 0).all() for state in states)


def padded_path(model: torch.nn.Module):
    """The same model with packing switched off (`config.pack_padded_batches`)."""
    model.config.pack_padded_batches = False
    return model


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("family", PACKED)
def test_packed_batch_matches_the_padded_path_and_each_sequence_alone(family, side):
    model = load(family)
    inputs = encode(family, side)
    real = inputs["attention_mask"].bool()
    assert not real.all()
    with torch.no_grad(), layer_inputs(model) as seen:
        packed = model(**inputs, output_hidden_states=True)
    assert seen and set(seen) == {2}, "the layers did not run packed"
    layers = model.config.num_hidden_layers
    assert len(packed.hidden_states) == layers + 1
    assert all(state.shape == (*real.shape, model.config.hidden_size) for state in packed.hidden_states)
    torch.testing.assert_close(packed.hidden_states[-1], packed.last_hidden_state, rtol=0, atol=0)
    assert zero_at_padding(packed, real)

    with torch.no_grad(), layer_inputs(model) as seen:
        padded = padded_path(model)(**inputs, output_hidden_states=True)
    assert set(seen) == {3}
    assert zero_at_padding(padded, real)
    for ours, theirs in zip(packed.hidden_states, padded.hidden_states, strict=True):
        torch.testing.assert_close(ours, theirs, **tolerance(theirs))

    tokenizer = AutoTokenizer.from_pretrained(checkpoint(family))
    for row, sequence in enumerate(MIXED):
        with torch.no_grad():
            alone = model(**tokenizer(sequence, return_tensors="pt")).last_hidden_state[0]
        ours = packed.last_hidden_state[row][real[row]]
        torch.testing.assert_close(ours, alone, **tolerance(alone))


@pytest.mark.parametrize("family", PACKED)
def test_packed_batch_gives_the_padded_path_gradients(family):
    inputs = encode(family, "left")
    real = inputs["attention_mask"].bool()
    gradients = []
    for pack in (True, False):
        model = load(family, AutoModelForMaskedLM)
        model.config.pack_padded_batches = pack
        output = model(**inputs)
        probe = torch.randn(output.logits.shape, generator=torch.Generator().manual_seed(0))
        (output.logits[real] * probe[real]).sum().backward()
        gradients.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    packed, padded = gradients
    assert packed.keys() == padded.keys() and len(packed) > 10
    for name, expected in padded.items():
        torch.testing.assert_close(packed[name], expected, **tolerance(expected), msg=name)


@pytest.mark.parametrize("family", ["rnafm", "rinalmo"])
def test_gradient_checkpointing_runs_packed(family):
    """Training with gradient checkpointing: the packed layers are recomputed with the same packing."""
    inputs = encode(family)
    gradients = []
    for checkpointing in (False, True):
        model = load(family, AutoModelForMaskedLM, hidden_dropout=0.0, attention_dropout=0.0).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        with layer_inputs(model) as seen:
            model(**inputs).logits.logsumexp(-1)[inputs["attention_mask"].bool()].sum().backward()
        assert set(seen) == {2}
        gradients.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    for name, expected in gradients[0].items():
        torch.testing.assert_close(gradients[1][name], expected, **tolerance(expected), msg=name)


@pytest.mark.parametrize("family", sorted(PADDED_ONLY))
def test_layers_that_need_the_padded_layout_keep_it(family):
    model = load(family)
    inputs = encode(family)
    with torch.no_grad(), layer_inputs(model) as seen:
        output = model(**inputs, output_hidden_states=True)
    assert seen and 2 not in seen
    assert zero_at_padding(output, inputs["attention_mask"].bool())


def test_attention_weights_contacts_and_unpadded_batches_keep_the_padded_path():
    model = load("rnafm", AutoModelForMaskedLM)
    inputs = encode("rnafm")
    with torch.no_grad(), layer_inputs(model) as seen:
        model(**inputs, output_attentions=True)
        model(**inputs, return_contacts=True)
        model(**AutoTokenizer.from_pretrained(checkpoint("rnafm"))(MIXED[:1], return_tensors="pt"))
    assert seen and 2 not in seen
    with torch.no_grad(), layer_inputs(model) as seen:
        model(**inputs)
    assert set(seen) == {2}
