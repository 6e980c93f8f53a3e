"""`return_contacts` without `output_attentions` sums each layer's share of the contact regression as the layer
runs (no layer's attention weights outlive it); the result is the release's regression over all maps at once."""

from __future__ import annotations

import torch

from multimolecule import RnaFmConfig, RnaFmForMaskedLM
from multimolecule.modules.heads import average_product_correct, nucleotide_mask, pack_tokens

SIZE = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 64}


def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(6, 26, (3, 18), generator=generator)
    ids[:, 0], ids[:, -1] = 1, 2
    mask = torch.ones_like(ids)
    ids[1, 10], ids[1, 11:], mask[1, 11:] = 2, 0, 0  # a padded row
    return {"input_ids": ids, "attention_mask": mask}


def all_at_once(model: RnaFmForMaskedLM, attentions, mask) -> torch.Tensor:
    """ESM's formula over the concatenated maps (layer-major features), written out independently."""
    maps = torch.cat(attentions, dim=1)
    maps, valid = pack_tokens(maps.transpose(1, 2), mask)
    maps, _ = pack_tokens(maps.permute(0, 3, 2, 1), mask)
    maps = maps.permute(0, 2, 3, 1)
    maps = average_product_correct(maps + maps.transpose(-1, -2))
    contacts = torch.sigmoid(model.contact_head.regression(maps.permute(0, 2, 3, 1)).squeeze(-1))
    return contacts * (valid.unsqueeze(-1) & valid.unsqueeze(-2)).to(contacts.dtype)


def test_streamed_contacts_match_the_regression_over_all_maps() -> None:
    torch.manual_seed(0)
    model = RnaFmForMaskedLM(RnaFmConfig(**SIZE, attention_contact_head=True)).eval()
    inputs = batch()
    with torch.no_grad():
        streamed = model(**inputs, return_contacts=True)
        full = model(**inputs, return_contacts=True, output_attentions=True)
    mask = nucleotide_mask(model.config, inputs["input_ids"], inputs["attention_mask"])
    expected = all_at_once(model, full.attentions, mask)
    assert streamed.attentions is None
    torch.testing.assert_close(streamed.contacts, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(full.contacts, expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(streamed.logits, full.logits)


def test_streaming_leaves_no_hooks_behind() -> None:
    model = RnaFmForMaskedLM(RnaFmConfig(**SIZE, attention_contact_head=True)).eval()
    with torch.no_grad():
        model(**batch(), return_contacts=True)
    assert all(not layer.attention._forward_hooks for layer in model.model.encoder.layers)
