"""`pooler_output` (BERT's pooler, in the releases that carry one) reads each sequence's `<cls>`, whichever side
the batch is padded on: a left-padded batch gives every sequence the pooler output it gets alone."""

from __future__ import annotations

import pytest
import torch
from families import FAMILIES, SEQUENCES, checkpoint
from transformers import AutoConfig, AutoModel, AutoTokenizer

POOLER_FAMILIES = [family for family in FAMILIES if AutoConfig.for_model(family).add_pooler]


def test_the_releases_with_a_pooler_are_covered():
    assert {"rnabert", "rnaernie", "ernierna"} <= set(POOLER_FAMILIES)


@pytest.mark.parametrize("family", POOLER_FAMILIES)
@pytest.mark.parametrize("side", ["left", "right"])
def test_pooler_reads_the_first_real_token(family: str, side: str):
    directory = checkpoint(family)
    model = AutoModel.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory, padding_side=side)
    batch = tokenizer(SEQUENCES, padding=True, return_tensors="pt")
    assert not batch["attention_mask"].all()  # the batch is padded
    with torch.no_grad():
        pooled = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).pooler_output
        for row, sequence in enumerate(SEQUENCES):
            alone = model(**tokenizer(sequence, return_tensors="pt")).pooler_output[0]
            torch.testing.assert_close(pooled[row], alone, atol=1e-5, rtol=1e-4)
