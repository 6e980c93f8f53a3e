"""The BERT-style families' golden fixtures (written and run by the original code) reproduced through the CLI:
RNABERT (DataParallel state dict), SpliceBERT (Hugging Face BERT directory), RNAErnie (PaddlePaddle .pdparams).

Each case is converted with the converter CLI (in-process `main`), loaded back as users load it, fed upstream's
input ids through their token strings, and every output the fixture holds is compared within its tolerance.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import convert_golden, golden_case, run_convert
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining, AutoTokenizer

import multimolecule
from multimolecule import converters
from multimolecule.convert.checkpoint import load_checkpoint
from multimolecule.convert.vocabulary import VocabularyRemap

CASES = {
    "rnabert": ("rnabert", "rnabert"),
    "splicebert": ("splicebert", "splicebert"),
    "rnaernie": ("rnaernie", "rnaernie"),
}
ARCHITECTURES = {
    "rnabert": "RnaBertForPreTraining",
    "splicebert": "SpliceBertForMaskedLM",
    "rnaernie": "RnaErnieForMaskedLM",
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return convert_golden(tmp_path_factory.mktemp("converted"), list(CASES.values()))  # names are the cases'


def remap(case, tokenizer) -> VocabularyRemap:
    converter = converters.get_converter(case.variant)
    return VocabularyRemap(case.meta["vocab"], list(tokenizer.get_vocab()), converter.spellings, converter.token_rows)


def run(model, case, tokenizer, mask=None):
    ids = remap(case, tokenizer).ids(case.expected["input_ids"])
    mask = case.expected["attention_mask"] if mask is None else mask
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=mask, output_hidden_states=True)


def assert_close(actual, expected, case, what):
    tolerance = case.meta["tolerance"]
    difference = (actual - expected).abs().max().item()
    assert torch.allclose(actual, expected, atol=tolerance["atol"], rtol=tolerance["rtol"]), (
        f"{case.meta['case']} {what}: max |difference| {difference}"
    )


def logit_columns(case, tokenizer):
    return remap(case, tokenizer).shared_columns()


@pytest.mark.parametrize("name", CASES)
def test_output_directory_and_card(converted, name):
    output = converted[name]
    assert {"model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt", "README.md"} <= {
        path.name for path in output.iterdir()
    }
    config = json.loads((output / "config.json").read_text())
    assert config["architectures"] == [ARCHITECTURES[name]] and config["model_type"] == name
    card = (output / "README.md").read_text()
    assert "max abs diff" in card and "library_name: multimolecule" in card
    assert "Read as ours:" in card  # upstream spellings ([CLS], PAD, T ...) are stated


@pytest.mark.parametrize("name", CASES)
def test_tokenizer_reproduces_upstream_tokenisation(converted, name):
    """Our tokens take exactly the upstream rows upstream's own tokeniser picks (N and gaps: upstream's [UNK])."""
    case = golden_case(*CASES[name])
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    rows = remap(case, tokenizer).source_rows()
    for sequence, upstream in zip(case.meta["sequences"], case.meta["tokens"], strict=True):
        upstream_ids = [case.meta["vocab"].index(token) if isinstance(token, str) else token for token in upstream]
        assert [rows[i] for i in tokenizer(sequence)["input_ids"]] == upstream_ids


@pytest.mark.parametrize("name", CASES)
def test_hidden_states_through_automodel(converted, name):
    case = golden_case(*CASES[name])
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    model = AutoModel.from_pretrained(converted[name])
    assert type(model).__name__ == ARCHITECTURES[name].replace("ForPreTraining", "ForMaskedLM").replace(
        "ForMaskedLM", "Model"
    )
    output = run(model, case, tokenizer)
    real = case.expected["attention_mask"].bool()
    assert_close(output.last_hidden_state[real], case.expected["last_hidden_state"][real], case, "last_hidden_state")
    if "hidden_states" in case.expected:
        assert_close(
            torch.stack(output.hidden_states)[:, real], case.expected["hidden_states"][:, real], case, "layers"
        )
    if "pooler_output" in case.expected:
        assert_close(output.pooler_output, case.expected["pooler_output"], case, "pooler_output")


@pytest.mark.parametrize("name", CASES)
def test_masked_lm_logits_on_shared_tokens(converted, name):
    case = golden_case(*CASES[name])
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    output = run(AutoModelForMaskedLM.from_pretrained(converted[name]), case, tokenizer)
    ours, theirs = logit_columns(case, tokenizer)
    real = case.expected["attention_mask"].bool()
    assert_close(output.logits[real][:, ours], case.expected["logits"][real][:, theirs], case, "logits")


def test_rnabert_every_head_through_auto_pretraining(converted):
    case = golden_case("rnabert", "rnabert")
    tokenizer = AutoTokenizer.from_pretrained(converted["rnabert"])
    model = AutoModelForPreTraining.from_pretrained(converted["rnabert"])
    assert isinstance(model, multimolecule.RnaBertForPreTraining)
    output = run(model, case, tokenizer)
    real = case.expected["attention_mask"].bool()
    assert_close(output.ss_logits[real], case.expected["ss_logits"][real], case, "ss_logits")
    assert_close(output.pooler_output, case.expected["pooler_output"], case, "pooler_output")
    assert_close(output.seq_relationship_logits, case.expected["seq_relationship_logits"], case, "seq_relationship")


def test_rnabert_reproduces_the_unmasked_upstream_call(converted):
    """Upstream pads to max_position_embeddings and attends to the padding: an all-ones mask reproduces it."""
    case = golden_case("rnabert", "rnabert")
    tokenizer = AutoTokenizer.from_pretrained(converted["rnabert"])
    model = multimolecule.RnaBertForPreTraining.from_pretrained(converted["rnabert"])
    ones = torch.ones_like(case.expected["attention_mask"])
    output = run(model, case, tokenizer, mask=ones)
    real = case.expected["attention_mask"].bool()
    for ours, theirs in (("ss_logits", "nomask_ss_logits"), ("logits", "nomask_logits")):
        columns = logit_columns(case, tokenizer) if ours == "logits" else (slice(None), slice(None))
        assert_close(output[ours][real][:, columns[0]], case.expected[theirs][real][:, columns[1]], case, theirs)
    hidden = output.hidden_states[-1]
    assert_close(hidden[real], case.expected["nomask_last_hidden_state"][real], case, "nomask hidden")
    # and the default (padding masked) differs from it: the two are not the same computation
    assert not torch.allclose(hidden[real], case.expected["last_hidden_state"][real], atol=1e-3)


def test_rnabert_tokenizer_adds_no_special_tokens(converted):
    tokenizer = AutoTokenizer.from_pretrained(converted["rnabert"])
    assert tokenizer.convert_ids_to_tokens(tokenizer("ACGT")["input_ids"]) == ["A", "C", "G", "U"]
    assert json.loads((converted["rnabert"] / "tokenizer_config.json").read_text())["add_cls"] is False


def test_rnaernie_transposes_every_paddle_linear(converted):
    """Paddle's Linear weights are [in, out]: every one is transposed, square ones included (no shape check could
    catch a square one left as it was)."""
    case = golden_case("rnaernie", "rnaernie")
    upstream = load_checkpoint(case.checkpoint)
    model = multimolecule.RnaErnieForMaskedLM.from_pretrained(converted["rnaernie"])
    ours = model.state_dict()
    pairs = {
        "ernie.encoder.layers.0.self_attn.q_proj.weight": "model.encoder.layers.0.attention.q_proj.weight",
        "ernie.encoder.layers.2.self_attn.out_proj.weight": "model.encoder.layers.2.attention.out_proj.weight",
        "ernie.encoder.layers.1.linear1.weight": "model.encoder.layers.1.ffn.fc1.weight",
        "ernie.pooler.dense.weight": "model.pooler.dense.weight",
        "cls.predictions.transform.weight": "lm_head.dense.weight",
    }
    square = 0
    for theirs, mine in pairs.items():
        array = torch.from_numpy(np.asarray(upstream[theirs]))
        square += array.shape[0] == array.shape[1]
        assert torch.equal(ours[mine], array.t()), theirs
    assert square == 4
    # and the tied decoder is not transposed: [vocab, hidden] in both
    assert model.lm_head.decoder.weight.data_ptr() == model.model.embeddings.word_embeddings.weight.data_ptr()


def test_splicebert_weights_file_alone_uses_defaults_and_overrides(tmp_path):
    """The catalogue downloads SpliceBERT's pytorch_model.bin alone: sizes from the tensors, heads from --model."""
    case = golden_case("splicebert", "splicebert")
    weights = tmp_path / "pytorch_model.bin"
    shutil.copy(case.checkpoint / "pytorch_model.bin", weights)
    assert run_convert("splicebert.510", "--checkpoint", weights, "--output", tmp_path / "a", "--no-verify") == 1
    status = run_convert(
        "splicebert.510", "--checkpoint", weights, "--output", tmp_path / "out", "--no-verify",
        "--model.num_attention_heads", "4",
    )  # fmt: skip
    assert status == 0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["max_position_embeddings"] == 1026 and config["num_attention_heads"] == 4
    assert not (tmp_path / "a").exists()


def test_sidecar_config_contradicting_the_tensors_is_refused(tmp_path, capsys):
    case = golden_case("splicebert", "splicebert")
    release = tmp_path / "release"
    shutil.copytree(case.checkpoint, release)
    config = json.loads((release / "config.json").read_text())
    (release / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    assert run_convert("splicebert", "--checkpoint", release, "--output", tmp_path / "out", "--no-verify") == 1
    assert "config.json says hidden_size=64 but the weights say hidden_size=32" in capsys.readouterr().err


def test_directory_without_the_weights_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert run_convert("splicebert", "--checkpoint", tmp_path, "--output", tmp_path / "out", "--no-verify") == 1
    err = capsys.readouterr().err
    assert "has no pytorch_model.bin" in err and "config.json" in err and "Traceback" not in err


@pytest.mark.parametrize("name", CASES)
def test_token_type_ids_are_accepted_and_checked(converted, name):
    model = AutoModel.from_pretrained(converted[name]).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted[name])
    batch = tokenizer(["ACGUACGU"], return_tensors="pt")
    with torch.no_grad():
        default = model(**batch).last_hidden_state
        zeros = model(**batch, token_type_ids=torch.zeros_like(batch["input_ids"])).last_hidden_state
        ones = model(**batch, token_type_ids=torch.ones_like(batch["input_ids"])).last_hidden_state
    assert torch.equal(default, zeros) and not torch.allclose(default, ones)
    with pytest.raises(ValueError, match=r"token_type_ids must lie in \[0, 2\)"):
        model(**batch, token_type_ids=torch.full_like(batch["input_ids"], 2))


def test_convert_list_shows_the_bert_variants_convertible(capsys):
    assert run_convert("list") == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    for variant in ("rnabert", "splicebert", "splicebert.510", "splicebert-human.510", "rnaernie"):
        assert rows[variant] == "yes", variant


def test_splicebert_live_parity_with_transformers_bert_on_another_file(tmp_path, capsys):
    """SpliceBERT's original code is transformers' BertForMaskedLM: a file that is not the fixture is checked
    against it, run live, as well as by the self-test on the fixture."""
    case = golden_case("splicebert", "splicebert")
    state = torch.load(case.checkpoint / "pytorch_model.bin", weights_only=True)
    generator = torch.Generator().manual_seed(1)
    state = {
        k: v + 0.05 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
        for k, v in state.items()
    }
    state["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    release = tmp_path / "release"
    shutil.copytree(case.checkpoint, release)
    torch.save(state, release / "pytorch_model.bin")
    assert run_convert("splicebert", "--checkpoint", release, "--output", tmp_path / "out", "--no-verify") == 0
    out = capsys.readouterr().out
    assert "ok  parity with converter self-test on the golden fixture splicebert/splicebert" in out
    assert "ok  parity with transformers" in out and "BertForMaskedLM (run live)" in out
