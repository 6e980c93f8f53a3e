"""ERNIE-RNA's golden fixtures (written and run by the original fairseq code) reproduced through the CLI.

Each case is converted with `python -m multimolecule.convert` (in-process `main`) and loaded back as users load
it; upstream's input ids are fed through their token strings and every output the fixture has is compared within
its tolerance: hidden states, masked-LM logits, pooler output, the pair bias and the last layer's pre-softmax
scores, and the secondary-structure map of `ernierna-ss`.
"""

from __future__ import annotations

import re

import pytest
import torch
from conftest import assert_structure_batched_equals_alone, convert_golden, golden_case, run_convert
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

import multimolecule
from multimolecule import converters
from multimolecule.convert.vocabulary import VocabularyRemap
from multimolecule.models.ernierna.modeling_ernierna import base_pairing_prior

CASES = ("ernierna", "ernierna-ss")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """case -> output directory, each fixture converted once per module."""
    return convert_golden(tmp_path_factory.mktemp("converted"), [("ernierna", name) for name in CASES])


class Case:
    """A converted fixture: upstream's ids as ours, the real tokens, and comparisons within its tolerance."""

    def __init__(self, name: str, directory) -> None:
        self.case = golden_case("ernierna", name)
        self.meta, self.expected = self.case.meta, self.case.expected
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        converter = converters.get_converter(self.case.variant)
        self.remap = VocabularyRemap(
            self.meta["vocab"], list(self.tokenizer.get_vocab()), converter.spellings, converter.token_rows
        )
        self.input_ids = self.remap.ids(self.expected["input_ids"])
        self.attention_mask = self.expected["attention_mask"]
        self.real = self.attention_mask.bool()

    def assert_close(self, actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
        tolerance = self.meta["tolerance"]
        assert actual.shape == expected.shape, f"{what}: {actual.shape} vs {expected.shape}"
        difference = (actual - expected).abs().max().item()
        assert torch.allclose(actual, expected, atol=tolerance["atol"], rtol=tolerance["rtol"]), (
            f"{self.meta['case']} {what}: max |difference| {difference}"
        )

    def token_pairs(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every (real token, real token) entry of a (batch, [heads,] length, length) tensor."""
        return torch.cat([tensor[i][..., real, :][..., real].flatten() for i, real in enumerate(self.real)])


@pytest.fixture(scope="module")
def pretrained(converted):
    return Case("ernierna", converted["ernierna"])


@pytest.fixture(scope="module")
def structure(converted):
    return Case("ernierna-ss", converted["ernierna-ss"])


def test_convert_list_shows_both_variants_as_convertible(capsys):
    assert run_convert("list") == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert {variant: rows.get(variant) for variant in CASES} == dict.fromkeys(CASES, "yes")


def test_card_states_the_vocabulary_and_the_eager_attention(converted):
    card = (converted["ernierna"] / "README.md").read_text()
    assert "max abs diff" in card and "license: mit" in card
    assert re.search(r"`N`, [^\n]*take the original `<unk>` embedding, as the original tokenizer reads them", card)
    assert "eager" in card and "segment_embeddings" in card and "_float_tensor" in card


def test_pair_prior_and_bias_match_upstream(pretrained, converted):
    prior = base_pairing_prior(pretrained.input_ids, len(pretrained.tokenizer.get_vocab()))
    pretrained.assert_close(
        pretrained.token_pairs(prior), pretrained.token_pairs(pretrained.expected["twod_input"]), "prior"
    )
    model = AutoModel.from_pretrained(converted["ernierna"]).eval()
    with torch.no_grad():
        bias = model.pair_bias(pretrained.input_ids)
    pretrained.assert_close(
        pretrained.token_pairs(bias), pretrained.token_pairs(pretrained.expected["pair_bias"]), "bias"
    )


def test_backbone_outputs_through_automodel(pretrained, converted):
    model = AutoModel.from_pretrained(converted["ernierna"]).eval()
    assert isinstance(model, multimolecule.ErnieRnaModel) and model.config._attn_implementation == "eager"
    expected, real = pretrained.expected, pretrained.real
    with torch.no_grad():
        output = model(pretrained.input_ids, pretrained.attention_mask, output_hidden_states=True)
    pretrained.assert_close(output.last_hidden_state[real], expected["last_hidden_state"][real], "last_hidden_state")
    pretrained.assert_close(torch.stack(output.hidden_states)[:, real], expected["hidden_states"][:, real], "layers")
    pretrained.assert_close(output.pooler_output, expected["pooler_output"], "pooler_output")
    pretrained.assert_close(
        pretrained.token_pairs(output.attention_scores), pretrained.token_pairs(expected["last_attn_scores"]), "scores"
    )


def test_masked_lm_logits_by_token(pretrained, converted):
    model = AutoModelForMaskedLM.from_pretrained(converted["ernierna"]).eval()
    ours, theirs = pretrained.remap.shared_columns()
    # every dictionary token but the fillers, those read as <unk> (N and the IUPAC codes) and the special tokens
    # (<s> <pad> </s> <unk> <mask>), which the head never predicts
    assert len(theirs) == len(pretrained.meta["vocab"]) - 3 - 13 - 5
    with torch.no_grad():
        logits = model(pretrained.input_ids, pretrained.attention_mask).logits
    expected = pretrained.expected["logits"][pretrained.real][:, theirs]
    pretrained.assert_close(logits[pretrained.real][:, ours], expected, "logits")


def test_our_tokenizer_reads_n_as_upstream_reads_it(pretrained, converted):
    """Upstream tokenises N as <unk>; our tokenizer keeps N, whose row is <unk>'s, so the outputs agree."""
    model = AutoModel.from_pretrained(converted["ernierna"]).eval()
    for index, (sequence, tokens) in enumerate(
        zip(pretrained.meta["sequences"], pretrained.meta["tokens"], strict=True)
    ):
        ids = pretrained.tokenizer(sequence, return_tensors="pt")["input_ids"]
        ours = pretrained.tokenizer.convert_ids_to_tokens(ids[0])
        theirs = [{"<s>": "<cls>", "</s>": "<eos>", "<unk>": "N"}.get(token, token) for token in tokens]
        assert ours == theirs
        with torch.no_grad():
            hidden = model(ids).last_hidden_state[0]
        expected = pretrained.expected["last_hidden_state"][index][pretrained.real[index]]
        pretrained.assert_close(hidden, expected, f"sequence {index} from our tokenizer")


def test_a_padded_batch_is_finite_and_equals_each_sequence_alone(converted):
    model = multimolecule.ErnieRnaForMaskedLM.from_pretrained(converted["ernierna"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted["ernierna"])
    sequences = ["GGGUGCGAUCAUACCAGCACUAAUGCCC", "GGACUUCGGUCC", "ACGUN"]
    for side in ("right", "left"):
        tokenizer.padding_side = side
        batch = tokenizer(sequences, padding=True, return_tensors="pt")
        with torch.no_grad():
            output = model(**batch, output_hidden_states=True)
            for value in (output.logits, output.attention_scores, *output.hidden_states):
                assert torch.isfinite(value).all()
            for index, sequence in enumerate(sequences):
                alone = model(**tokenizer(sequence, return_tensors="pt"))
                real = batch["attention_mask"][index].bool()
                assert torch.allclose(output.logits[index][real], alone.logits[0], atol=1e-5)
                scores = output.attention_scores[index][:, real][..., real]
                assert torch.allclose(scores, alone.attention_scores[0], atol=1e-5)


def test_pair_bias_needs_input_ids_and_sdpa_is_refused(converted):
    model = AutoModel.from_pretrained(converted["ernierna"]).eval()
    with pytest.raises(ValueError, match=r"^ErnieRnaModel computes its pair bias from the tokens: pass input_ids$"):
        model(inputs_embeds=torch.zeros(1, 4, model.config.hidden_size))
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        AutoModel.from_pretrained(converted["ernierna"], attn_implementation="sdpa")


def test_structure_outputs_through_the_cli(structure, converted):
    model = multimolecule.ErnieRnaForSecondaryStructurePrediction.from_pretrained(converted["ernierna-ss"]).eval()
    head = model.config.ss_attention_head
    assert head == structure.meta["hyperparameters"]["ss_head_attention_head_used"]
    assert model.config.ss_num_layers == structure.meta["hyperparameters"]["ss_head_resnet_blocks"]
    assert model.config.pair_threshold is None  # the release calls pairs with a solver, not a threshold
    expected, real = structure.expected, structure.real
    with torch.no_grad():
        output = model(structure.input_ids, structure.attention_mask, output_hidden_states=True)
    structure.assert_close(output.hidden_states[-1][real], expected["last_hidden_state"][real], "last_hidden_state")
    scores = structure.token_pairs(output.attention_scores[:, head])
    structure.assert_close(scores, structure.token_pairs(expected["last_attn_scores_head5"]), "head scores")
    lengths = (structure.attention_mask.sum(-1) - 2).tolist()
    assert output.logits.shape == expected["ss_logits"].shape
    assert output.mask.sum((-1, -2)).tolist() == [n * n for n in lengths]
    ours, theirs = (
        torch.cat([t[i, :n, :n].flatten() for i, n in enumerate(lengths)])
        for t in (output.logits, expected["ss_logits"])
    )
    structure.assert_close(ours, theirs, "ss_logits")
    assert torch.equal(output.logits, output.logits.transpose(-1, -2))


def test_structure_map_in_a_padded_batch_equals_alone(converted):
    assert_structure_batched_equals_alone(
        multimolecule.ErnieRnaForSecondaryStructurePrediction, converted["ernierna-ss"]
    )


def test_structure_card_says_how_to_get_base_pairs(converted):
    card = (converted["ernierna-ss"] / "README.md").read_text()
    assert 'pipeline("rna-secondary-structure"' in card and "ss_attention_head" in card


def test_a_structure_head_past_the_last_attention_head_is_a_clear_error():
    config = multimolecule.ErnieRnaConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=4)
    with pytest.raises(ValueError, match=r"^ss_attention_head is 5, but the model has 4 attention heads$"):
        multimolecule.ErnieRnaForSecondaryStructurePrediction(config)
