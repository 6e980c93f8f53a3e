"""RNA-FM's golden fixtures (written and run by the original rna-fm code) reproduced through the CLI.

Each case is converted with `python -m multimolecule.convert` (in-process `main`), the output is loaded back
the way users load it, upstream's input ids are fed through their token strings, and every output the fixture
has is compared within its tolerance.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import golden_case, run_convert
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

import multimolecule

CASES = ["rnafm", "mrnafm", "rnafm-ss"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """case -> output directory, converted once per module."""
    root = tmp_path_factory.mktemp("converted")
    outputs = {}
    for name in CASES:
        case = golden_case("rnafm", name)
        output = root / name
        status = run_convert(name, "--checkpoint", case.checkpoint, "--output", output, "--no-verify", *case.overrides)
        assert status == 0, f"conversion of {name} failed"
        outputs[name] = output
    return outputs


def our_ids(case, tokenizer) -> torch.Tensor:
    vocabulary = tokenizer.get_vocab()
    return torch.tensor(
        [[vocabulary[case.meta["vocab"][i]] for i in row] for row in case.expected["input_ids"].tolist()]
    )


def assert_close(actual, expected, case, what):
    tolerance = case.meta["tolerance"]
    difference = (actual - expected).abs().max().item()
    assert torch.allclose(actual, expected, atol=tolerance["atol"], rtol=tolerance["rtol"]), (
        f"{case.meta['case']} {what}: max |difference| {difference}"
    )


@pytest.mark.parametrize("name", CASES)
def test_output_directory_is_complete(converted, name):
    output = converted[name]
    files = {path.name for path in output.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt", "README.md"} <= files
    config = json.loads((output / "config.json").read_text())
    expected = "RnaFmForSecondaryStructurePrediction" if name == "rnafm-ss" else "RnaFmForMaskedLM"
    assert config["architectures"] == [expected]
    assert config["model_type"] == "rnafm"
    card = (output / "README.md").read_text()
    assert "library_name: multimolecule" in card and "license: mit" in card
    assert "max abs diff" in card  # parity figures from the validation made it into the card


@pytest.mark.parametrize("name", CASES)
def test_tokenizer_reproduces_upstream_tokenisation(converted, name):
    case = golden_case("rnafm", name)
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    for sequence, upstream_ids in zip(case.meta["sequences"], case.meta["tokens"], strict=True):
        ours = tokenizer.convert_ids_to_tokens(tokenizer(sequence)["input_ids"])
        assert ours == [case.meta["vocab"][i] for i in upstream_ids]


@pytest.mark.parametrize("name", CASES)
def test_last_hidden_state_through_automodel(converted, name):
    case = golden_case("rnafm", name)
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    model = AutoModel.from_pretrained(converted[name]).eval()
    assert isinstance(model, multimolecule.RnaFmModel)
    mask = case.expected["attention_mask"]
    with torch.no_grad():
        hidden = model(input_ids=our_ids(case, tokenizer), attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert_close(hidden[real], case.expected["last_hidden_state"][real], case, "last_hidden_state")


@pytest.mark.parametrize("name", CASES)
def test_masked_lm_logits_on_shared_tokens(converted, name):
    case = golden_case("rnafm", name)
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    model = AutoModelForMaskedLM.from_pretrained(converted[name]).eval()
    vocabulary = tokenizer.get_vocab()
    # special tokens are never predicted (their logits are the minimum): the alphabet is compared
    shared = [token for token in case.meta["vocab"] if token in vocabulary and not token.startswith("<")]
    assert len(shared) >= len(case.meta["vocab"]) - 4 - 6  # less the <null_k> fillers and the special tokens
    mask = case.expected["attention_mask"]
    with torch.no_grad():
        logits = model(input_ids=our_ids(case, tokenizer), attention_mask=mask).logits
    real = mask.bool()
    ours = logits[real][:, [vocabulary[token] for token in shared]]
    theirs = case.expected["logits"][real][:, [case.meta["vocab"].index(token) for token in shared]]
    assert_close(ours, theirs, case, "logits")


def pairs(tensor, lengths):
    return torch.cat([tensor[i, :n, :n].flatten() for i, n in enumerate(lengths)])


@pytest.mark.parametrize("name", ["rnafm", "mrnafm"])
def test_contacts_through_architecture_class(converted, name):
    case = golden_case("rnafm", name)
    config = json.loads((converted[name] / "config.json").read_text())
    model_class = getattr(multimolecule, config["architectures"][0])
    model = model_class.from_pretrained(converted[name]).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    mask = case.expected["attention_mask"]
    with torch.no_grad():
        contacts = model(input_ids=our_ids(case, tokenizer), attention_mask=mask, return_contacts=True).contacts
    lengths = (mask.sum(-1) - 2).tolist()
    assert_close(pairs(contacts, lengths), pairs(case.expected["contacts"], lengths), case, "contacts")


def test_secondary_structure_head(converted):
    case = golden_case("rnafm", "rnafm-ss")
    model = multimolecule.RnaFmForSecondaryStructurePrediction.from_pretrained(converted["rnafm-ss"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted["rnafm-ss"])
    mask = case.expected["attention_mask"]
    input_ids = our_ids(case, tokenizer)
    with torch.no_grad():
        output = model(input_ids=input_ids, attention_mask=mask)
    lengths = (mask.sum(-1) - 2).tolist()
    # padding-free semantics: the batched map equals upstream's map of each sequence run alone
    assert_close(pairs(output.logits, lengths), pairs(case.expected["ss_logits_unbatched"], lengths), case, "ss logits")
    assert torch.equal(output.logits, output.logits.transpose(-1, -2))
    # the masked-LM head the ss file also carries
    vocabulary = tokenizer.get_vocab()
    alphabet = [token for token in case.meta["vocab"] if token in vocabulary and not token.startswith("<")]
    columns = [vocabulary[token] for token in alphabet]  # special tokens are never predicted
    upstream = [case.meta["vocab"].index(token) for token in alphabet]
    real = mask.bool()
    assert_close(output.lm_logits[real][:, columns], case.expected["logits"][real][:, upstream], case, "lm logits")


def test_secondary_structure_does_not_depend_on_batch_padding(converted):
    model = multimolecule.RnaFmForSecondaryStructurePrediction.from_pretrained(converted["rnafm-ss"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted["rnafm-ss"])
    sequences = ["GGGUGCGAUCAUACCAGCACUAAUGCCCUCC", "GGACUUCGGUCC"]
    with torch.no_grad():
        batched = model(**tokenizer(sequences, padding=True, return_tensors="pt")).logits
        alone = model(**tokenizer(sequences[1], return_tensors="pt")).logits
    n = len(sequences[1])
    assert torch.allclose(batched[1, :n, :n], alone[0], atol=1e-5)
