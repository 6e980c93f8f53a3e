"""The golden fixtures of CaLM, UTR-LM and RiNALMo (written and run by each original code base) reproduced
through the CLI.

Each case is converted with `python -m multimolecule.convert` (in-process `main`), loaded back with the Auto
classes (and the architecture its config names) as users load it, fed upstream's input ids through their token
strings, and every output the fixture has is compared within the fixture's tolerance: hidden states, masked-LM
logits (upstream vocabulary order, matched by token), contacts, UTR-LM's MFE and structure heads, RiNALMo's
secondary-structure map.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import assert_structure_batched_equals_alone, convert_golden, golden_case, run_convert
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

import multimolecule
from multimolecule import converters
from multimolecule.convert.vocabulary import VocabularyRemap

CASES = [
    ("calm", "calm"),
    ("utrlm", "utrlm-te_el"),
    ("utrlm", "utrlm-mrl"),
    ("rinalmo", "rinalmo"),
    ("rinalmo", "rinalmo-ss"),
]
IDS = [case for _, case in CASES]
NEW_VARIANTS = ("calm", "utrlm-te_el", "utrlm-mrl", "rinalmo-giga", "rinalmo-mega", "rinalmo-micro", "rinalmo-giga-ss")


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """case -> output directory, each fixture converted once per module."""
    return convert_golden(tmp_path_factory.mktemp("converted"), CASES)


class Loaded:
    """A converted case: the fixture, its tokenizer, and upstream's ids and vocabulary columns as ours."""

    def __init__(self, family: str, name: str, directory) -> None:
        self.case = golden_case(family, name)
        self.directory = directory
        self.meta, self.expected = self.case.meta, self.case.expected
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        converter = converters.get_converter(self.case.variant)
        self.remap = VocabularyRemap(self.meta["vocab"], list(self.tokenizer.get_vocab()), converter.spellings)
        self.input_ids = self.remap.ids(self.expected["input_ids"])
        self.attention_mask = self.expected["attention_mask"]
        self.real = self.attention_mask.bool()
        self.lengths = (self.attention_mask.sum(-1) - 2).tolist()  # nucleotides (or codons), specials excluded

    def assert_close(self, actual, expected, what):
        tolerance = self.meta["tolerance"]
        assert actual.shape == expected.shape, f"{self.meta['case']} {what}: {actual.shape} vs {expected.shape}"
        difference = (actual - expected).abs().max().item()
        assert torch.allclose(actual, expected, atol=tolerance["atol"], rtol=tolerance["rtol"]), (
            f"{self.meta['case']} {what}: max |difference| {difference}"
        )

    def pairs(self, tensor):
        return torch.cat([tensor[i, :n, :n].flatten() for i, n in enumerate(self.lengths)])

    def architecture(self):
        config = json.loads((self.directory / "config.json").read_text())
        return getattr(multimolecule, config["architectures"][0]).from_pretrained(self.directory).eval()


@pytest.fixture(params=CASES, ids=IDS)
def loaded(request, converted):
    family, name = request.param
    return Loaded(family, name, converted[name])


def test_convert_list_shows_the_new_variants_as_convertible(capsys):
    assert run_convert("list") == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert {variant: rows.get(variant) for variant in NEW_VARIANTS} == dict.fromkeys(NEW_VARIANTS, "yes")


def test_output_directory_has_the_card_with_parity(loaded):
    files = {path.name for path in loaded.directory.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt", "README.md"} <= files
    assert json.loads((loaded.directory / "config.json").read_text())["model_type"] == loaded.meta["family"]
    assert "max abs diff" in (loaded.directory / "README.md").read_text()


def test_tokenizer_reproduces_upstream_tokenisation(loaded):
    masked = loaded.meta.get("masked_positions", {})
    spelling = dict(zip(loaded.meta["vocab"], loaded.remap.canonical, strict=True))  # upstream's T is our U
    for index, (sequence, tokens) in enumerate(zip(loaded.meta["sequences"], loaded.meta["tokens"], strict=True)):
        ours = loaded.tokenizer.convert_ids_to_tokens(loaded.tokenizer(sequence)["input_ids"])
        theirs = [spelling[token] for token in tokens]
        if masked.get("sequence_index") == index:  # the fixture put <mask> there after tokenising
            for position in masked["token_positions"]:
                ours[position] = "<mask>"
        assert ours == theirs


def test_hidden_states_through_automodel(loaded):
    model = AutoModel.from_pretrained(loaded.directory).eval()
    assert type(model).__name__.endswith("Model") and model.config.model_type == loaded.meta["family"]
    with torch.no_grad():
        output = model(input_ids=loaded.input_ids, attention_mask=loaded.attention_mask, output_hidden_states=True)
    real = loaded.real
    loaded.assert_close(output.last_hidden_state[real], loaded.expected["last_hidden_state"][real], "last_hidden_state")
    if "hidden_states" in loaded.expected:
        ours = torch.stack(output.hidden_states)[:, real]
        loaded.assert_close(ours, loaded.expected["hidden_states"][:, real], "hidden_states")


def test_masked_lm_logits_by_token_through_automodel(loaded):
    model = AutoModelForMaskedLM.from_pretrained(loaded.directory).eval()
    ours_columns, upstream_columns = loaded.remap.shared_columns()
    # every upstream token of the alphabet is compared (special tokens are never predicted)
    alphabet = [token for token in loaded.meta["vocab"] if not (token.startswith("<") or token.startswith("["))]
    assert len(upstream_columns) >= len(alphabet) - 1
    with torch.no_grad():
        logits = model(input_ids=loaded.input_ids, attention_mask=loaded.attention_mask).logits
    ours = logits[loaded.real][:, ours_columns]
    loaded.assert_close(ours, loaded.expected["logits"][loaded.real][:, upstream_columns], "logits")


def test_release_heads_through_the_architecture(loaded):
    """Whatever else the fixture has: contacts, MFE, structure logits, secondary-structure map."""
    model = loaded.architecture()
    expected = loaded.expected
    kwargs = {"return_contacts": True} if "contacts" in expected else {}
    with torch.no_grad():
        output = model(input_ids=loaded.input_ids, attention_mask=loaded.attention_mask, **kwargs)
    compared = 0
    if "contacts" in expected:
        loaded.assert_close(loaded.pairs(output.contacts), loaded.pairs(expected["contacts"]), "contacts")
        compared += 1
    if "logits_supervised" in expected:
        loaded.assert_close(output.mfe, expected["logits_supervised"], "MFE head")
        compared += 1
    if "logits_structure" in expected:
        loaded.assert_close(
            output.structure_logits[loaded.real], expected["logits_structure"][loaded.real], "structure"
        )
        compared += 1
    else:
        assert getattr(output, "structure_logits", None) is None
    if "ss_logits" in expected:
        loaded.assert_close(loaded.pairs(output.logits), loaded.pairs(expected["ss_logits"]), "ss_logits")
        assert torch.equal(output.logits, output.logits.transpose(-1, -2))
        assert model.config.pair_threshold == loaded.meta["hyperparameters"]["threshold"]
        compared += 1
    heads = {"calm": 0, "utrlm-te_el": 2, "utrlm-mrl": 3, "rinalmo": 0, "rinalmo-ss": 1}
    assert compared == heads[loaded.meta["case"]]


def test_rinalmo_secondary_structure_in_a_padded_batch_equals_alone(converted):
    assert_structure_batched_equals_alone(multimolecule.RiNALMoForSecondaryStructurePrediction, converted["rinalmo-ss"])


def test_token_dropout_scales_by_the_share_of_masks(converted):
    """UTR-LM / RiNALMo keep ESM-2's token dropout at inference: no <mask> -> x0.88, <mask> rows zeroed."""
    model = AutoModel.from_pretrained(converted["rinalmo"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted["rinalmo"])
    batch = tokenizer(["ACGU", "AC<mask>U"], padding=True, return_tensors="pt")
    with torch.no_grad():
        embedded = model(**batch, output_hidden_states=True).hidden_states[0]
        table = model.get_input_embeddings().weight
    ids = batch["input_ids"]
    assert torch.allclose(embedded[0], table[ids[0]] * 0.88, atol=1e-6)
    assert torch.allclose(embedded[1], table[ids[1]] * 0.88 / (1 - 1 / 6) * ids[1].ne(4).unsqueeze(-1), atol=1e-6)
