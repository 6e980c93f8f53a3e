"""`return_contacts` without `output_attentions` streams: each layer's attention maps become that layer's share
of the contact regression while the layer runs, so no two layers' maps exist at once. The result is the
release's regression over all layers' maps, which is written out here on its own, per sequence."""

from __future__ import annotations

import weakref

import pytest
import torch
from families import FAMILIES, SEQUENCES, checkpoint
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

CONTACT_FAMILIES = [family for family in FAMILIES if AutoConfig.for_model(family).attention_contact_head]


def release_contacts(model, attentions, input_ids, attention_mask) -> list[torch.Tensor]:
    """Per sequence: the maps between its nucleotides, symmetrised, APC-corrected, then the logistic regression
    over every layer's heads (layer-major), as ESM and RNA-FM compute it for one unpadded sequence."""
    special = set(model.config.special_token_ids)
    maps = torch.cat(attentions, dim=1)
    weight, bias = model.contact_head.regression.weight[0], model.contact_head.regression.bias
    out = []
    for row, (ids, real) in enumerate(zip(input_ids, attention_mask, strict=True)):
        keep = torch.tensor([bool(r) and int(i) not in special for i, r in zip(ids, real, strict=True)])
        square = maps[row][:, keep][:, :, keep]
        square = square + square.transpose(-1, -2)
        corrected = square - square.sum(-1, keepdim=True) * square.sum(-2, keepdim=True) / square.sum(
            (-1, -2), keepdim=True
        )
        out.append(torch.sigmoid(torch.einsum("cij,c->ij", corrected, weight) + bias))
    return out


def test_the_release_families_have_contact_heads():
    assert {"rnafm", "utrlm", "rnamsm"} <= set(CONTACT_FAMILIES)


@pytest.fixture(params=CONTACT_FAMILIES)
def loaded(request):
    directory = checkpoint(request.param)
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    batch = AutoTokenizer.from_pretrained(directory)(SEQUENCES, padding=True, return_tensors="pt")
    return model, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def test_streamed_contacts_are_the_regression_over_all_maps(loaded):
    model, inputs = loaded
    assert model.contact_head is not None
    with torch.no_grad():
        streamed = model(**inputs, return_contacts=True)
        full = model(**inputs, return_contacts=True, output_attentions=True)
    assert streamed.attentions is None
    assert len(full.attentions) == model.config.num_hidden_layers
    torch.testing.assert_close(streamed.contacts, full.contacts, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(streamed.logits, full.logits)
    expected = release_contacts(model, full.attentions, inputs["input_ids"], inputs["attention_mask"])
    for row, square in enumerate(expected):
        n = square.shape[-1]
        torch.testing.assert_close(streamed.contacts[row, :n, :n], square, atol=1e-6, rtol=1e-5)
        assert not streamed.contacts[row, n:].any() and not streamed.contacts[row, :, n:].any()


def test_no_two_layers_maps_are_alive_at_once(loaded, monkeypatch):
    model, inputs = loaded
    head = type(model.contact_head)
    original = head.layer_logits
    seen: list[weakref.ref] = []

    def spy(self, layer, weights, mask):
        assert all(ref() is None for ref in seen), "an earlier layer's attention maps are still alive"
        seen.append(weakref.ref(weights))
        return original(self, layer, weights, mask)

    monkeypatch.setattr(head, "layer_logits", spy)
    with torch.no_grad():
        model(**inputs, return_contacts=True)
    assert len(seen) == model.config.num_hidden_layers


def test_streaming_leaves_no_hooks_and_trains(loaded):
    model, inputs = loaded
    model.train()
    output = model(**inputs, return_contacts=True)
    output.contacts.sum().backward()
    assert model.contact_head.regression.weight.grad.abs().sum() > 0
    assert all(not layer.attention._forward_hooks for layer in model.model.encoder.layers)
    foreign = inputs["input_ids"].clone()
    foreign[0, 1] = model.config.vocab_size
    with pytest.raises(ValueError, match="input_ids must lie in"):  # an error inside the pass removes the hooks too
        model(input_ids=foreign, attention_mask=inputs["attention_mask"], return_contacts=True)
    assert all(not layer.attention._forward_hooks for layer in model.model.encoder.layers)
