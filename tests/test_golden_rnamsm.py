"""RNA-MSM's golden fixture (written and run by the original RNA-MSM code) reproduced through the CLI.

The fixture batches three alignments of 3, 4 and 2 rows, padded to 4 rows and 35 columns. Upstream's batched
call scales row attention by the padded row count, so only the alignment that needs no row padding gets its
unbatched output there; ours gives every alignment its unbatched output (`single_*`), and matches upstream's
batched outputs wherever those equal the unbatched ones.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import golden_case, run_convert
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, pipeline

from multimolecule import (
    AutoModelForContactPrediction,
    AutoModelForSequencePrediction,
    AutoModelForTokenPrediction,
    RnaMsmConfig,
    RnaMsmForMaskedLM,
    RnaMsmModel,
    RnaTokenizer,
    converters,
)
from multimolecule.convert.vocabulary import VocabularyRemap
from multimolecule.models.rnamsm.modeling_rnamsm import AlignmentMask

CASE = golden_case("rnamsm", "rnamsm")


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    output = tmp_path_factory.mktemp("converted") / "rnamsm"
    status = run_convert("rnamsm", "--checkpoint", CASE.checkpoint, "--output", output, "--no-verify")
    assert status == 0, "conversion of rnamsm failed"
    return output


@pytest.fixture(scope="module")
def fixture(directory):
    """Upstream's input as our ids, the expected tensors, and which alignments upstream padded."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    converter = converters.get_converter("rnamsm")
    remap = VocabularyRemap(CASE.meta["vocab"], list(tokenizer.get_vocab()), converter.spellings, converter.token_rows)
    expected = CASE.expected
    mask = expected["attention_mask"]
    rows = mask.any(-1).sum(-1)
    columns = mask[:, 0].sum(-1)
    return {
        "input_ids": remap.ids(expected["input_ids"]),
        "attention_mask": mask,
        "expected": expected,
        "columns": remap.shared_columns(),
        "unpadded": (rows == mask.shape[1]).tolist(),  # upstream's batched output is its unbatched one
        "full_width": ((rows == mask.shape[1]) & (columns == mask.shape[2])).tolist(),
        "lengths": (columns - 1).tolist(),  # nucleotides (and gaps) of the query row
    }


@pytest.fixture(scope="module")
def outputs(directory, fixture):
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    with torch.no_grad():
        return model(
            input_ids=fixture["input_ids"],
            attention_mask=fixture["attention_mask"],
            return_contacts=True,
            output_hidden_states=True,
            output_attentions=True,
        )


def assert_close(actual, expected, what):
    tolerance = CASE.meta["tolerance"]
    assert actual.shape == expected.shape, f"{what}: {tuple(actual.shape)} vs {tuple(expected.shape)}"
    difference = (actual - expected).abs().max().item()
    assert torch.allclose(actual, expected, atol=tolerance["atol"], rtol=tolerance["rtol"]), (
        f"{what}: max |difference| {difference}"
    )


def pairs(tensor, fixture, select):
    return torch.cat([tensor[i, :n, :n].flatten() for i, n in enumerate(fixture["lengths"]) if select[i]])


def test_convert_list_shows_rnamsm_as_convertible(capsys):
    assert run_convert("list") == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["rnamsm"] == "yes"


def test_output_directory_and_card(directory):
    files = {path.name for path in directory.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer_config.json", "vocab.txt", "README.md"} <= files
    card = (directory / "README.md").read_text()
    assert "max abs diff" in card and "single_contacts" in card
    assert "padded row count" in card  # the note on batch invariance
    assert "`N`, `R`, `Y`" in card and "original `X` embedding" in card


def test_every_alignment_gets_its_unbatched_output(fixture, outputs):
    real = fixture["attention_mask"].bool()
    expected = fixture["expected"]
    ours_columns, upstream_columns = fixture["columns"]
    last = outputs.hidden_states[-1]
    assert_close(last[real], expected["single_last_hidden_state"][real], "single_last_hidden_state")
    assert_close(
        outputs.logits[real][:, ours_columns], expected["single_logits"][real][:, upstream_columns], "single_logits"
    )
    everyone = [True] * len(fixture["lengths"])
    assert_close(pairs(outputs.contacts, fixture, everyone), pairs(expected["single_contacts"], fixture, everyone), "c")


def test_batched_outputs_where_upstream_batched_equals_unbatched(fixture, outputs):
    """Hidden states of every layer, logits and row attentions of the alignment upstream did not pad in rows; its
    contacts where it was not padded in columns either."""
    unpadded, expected = fixture["unpadded"], fixture["expected"]
    assert any(unpadded) and not all(unpadded)  # the fixture has both kinds
    real = fixture["attention_mask"].bool() & torch.tensor(unpadded)[:, None, None]
    layers = torch.stack(outputs.hidden_states)
    assert_close(layers[:, real], expected["hidden_states"][:, real], "hidden_states")
    assert_close(outputs.hidden_states[-1][real], expected["last_hidden_state"][real], "last_hidden_state")
    ours_columns, upstream_columns = fixture["columns"]
    assert_close(outputs.logits[real][:, ours_columns], expected["logits"][real][:, upstream_columns], "logits")
    attentions = torch.stack(outputs.attentions, 1)  # (batch, layers, heads, columns, columns)
    for index in (i for i, flag in enumerate(unpadded) if flag):
        n = fixture["attention_mask"][index, 0].sum()
        assert_close(attentions[index, ..., :n, :n], expected["row_attentions"][index, ..., :n, :n], "row attentions")
    full = fixture["full_width"]
    assert any(full)
    assert_close(pairs(outputs.contacts, fixture, full), pairs(expected["contacts"], fixture, full), "contacts")


def test_pair_representation_is_upstreams_row_attentions_without_cls(directory, fixture):
    model = AutoModel.from_pretrained(directory).eval()
    assert isinstance(model, RnaMsmModel)
    with torch.no_grad():
        output = model(input_ids=fixture["input_ids"], output_pair_representation=True)
    assert output.attentions is None  # not asked for
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    longest = max(fixture["lengths"])
    assert output.pair_representation.shape == (3, layers * heads, longest, longest)
    for index in (i for i, flag in enumerate(fixture["unpadded"]) if flag):
        n = fixture["lengths"][index]
        expected = fixture["expected"]["row_attentions"][index, :, :, 1 : n + 1, 1 : n + 1].reshape(-1, n, n)
        assert_close(output.pair_representation[index, :, :n, :n], expected, "pair_representation")
    for index, n in enumerate(fixture["lengths"]):  # zero outside each alignment's own square
        square = output.pair_representation[index]
        assert not square[:, n:].any() and not square[:, :, n:].any()
    assert torch.equal(output.query_hidden_state, output.last_hidden_state[:, 0])


def test_an_alignment_alone_equals_its_place_in_the_batch(directory, fixture):
    model = RnaMsmModel.from_pretrained(directory).eval()
    ids, mask = fixture["input_ids"], fixture["attention_mask"]
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask).last_hidden_state
        for index in range(ids.shape[0]):
            rows, columns = int(mask[index].any(-1).sum()), int(mask[index, 0].sum())
            alone = model(input_ids=ids[index : index + 1, :rows, :columns]).last_hidden_state
            assert torch.allclose(batched[index, :rows, :columns], alone[0], atol=1e-5)


def test_a_sequence_is_a_one_row_alignment(directory):
    model = RnaMsmForMaskedLM.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    batch = tokenizer(["GGCUAGCUAGGC", "ACGU"], padding=True, return_tensors="pt")
    assert batch["input_ids"][0, 0] == tokenizer.cls_token_id and tokenizer.eos_token_id not in batch["input_ids"]
    with torch.no_grad():
        flat = model(**batch, return_contacts=True, output_hidden_states=True)
        rows = model(
            input_ids=batch["input_ids"][:, None],
            attention_mask=batch["attention_mask"][:, None],
            return_contacts=True,
            output_hidden_states=True,
        )
    assert flat.logits.shape == (2, 13, len(tokenizer)) and rows.logits.shape == (2, 1, 13, len(tokenizer))
    assert torch.allclose(flat.logits, rows.logits[:, 0], atol=1e-6)
    assert torch.allclose(flat.contacts, rows.contacts, atol=1e-6)
    assert all(state.dim() == 3 for state in flat.hidden_states)


def test_too_many_rows_is_one_clear_error(directory):
    model = RnaMsmModel.from_pretrained(directory).eval()
    with pytest.raises(ValueError, match=r"1025 rows × 3 columns .* at most 1024 rows"):
        model(input_ids=torch.full((1, 1025, 3), 6))
    with pytest.raises(ValueError, match=r"expected alignments \(batch, rows, columns\) or sequences"):
        model(input_ids=torch.full((1, 1, 2, 3), 6))


def test_chunked_column_attention_and_feed_forward_are_exact(directory, fixture):
    """Above max_tokens_per_alignment, columns go through in chunks: the same numbers, bounded memory."""
    whole = RnaMsmModel.from_pretrained(directory).eval()
    chunked = RnaMsmModel.from_pretrained(directory, max_tokens_per_alignment=7).eval()
    with torch.no_grad():
        expected = whole(input_ids=fixture["input_ids"], attention_mask=fixture["attention_mask"]).last_hidden_state
        actual = chunked(input_ids=fixture["input_ids"], attention_mask=fixture["attention_mask"]).last_hidden_state
    real = fixture["attention_mask"].bool()
    assert torch.allclose(actual[real], expected[real], atol=1e-6)


def test_alignment_mask_counts_each_alignments_real_rows(fixture):
    mask = AlignmentMask.from_padding(fixture["attention_mask"], torch.float32)
    assert mask.rows.tolist() == [3.0, 4.0, 2.0]
    assert mask.keys.shape == (3, 1, 1, 35) and mask.columns.shape == (3 * 35, 1, 1, 4)
    blocked = mask.columns.lt(0).view(3, 35, 4)
    assert blocked[0, :21].tolist() == [[False, False, False, True]] * 21  # alignment 0: its 4th row is padding
    assert not blocked[:, :, 0].any() and not blocked[0, 21:].any()  # no column masks every row


def test_half_precision_stays_finite_with_padding(directory, fixture):
    model = RnaMsmModel.from_pretrained(directory, dtype=torch.float16).eval()
    real = fixture["attention_mask"].bool()
    with torch.no_grad():
        output = model(input_ids=fixture["input_ids"], attention_mask=fixture["attention_mask"])
    assert torch.isfinite(output.last_hidden_state).all()
    expected = fixture["expected"]["single_last_hidden_state"][real]
    assert (output.last_hidden_state[real].float() - expected).abs().max() < 0.05


def test_fill_mask_pipeline_on_rnamsm(directory):
    fill = pipeline("fill-mask", model=str(directory), tokenizer=str(directory))
    predictions = fill("GGCUAGC<mask>AGGCAUCG", top_k=3)
    assert len(predictions) == 3 and all(p["sequence"].startswith("GGCUAGC") for p in predictions)
    never = {"N", "R", "Y", "<null>", "I"}  # tokens the original cannot predict (N is read as X)
    assert not never & {p["token_str"] for p in fill("GGCUAGC<mask>AGGCAUCG", top_k=8)}


def test_the_shared_heads_work_on_the_query_row(directory, fixture):
    """Sequence / token / contact prediction on alignments: the query row's outputs, one per query-row token (as
    transformers' token-classification convention has it), the nucleotides marked by `mask`."""
    ids, mask = fixture["input_ids"], fixture["attention_mask"]
    lengths, columns = fixture["lengths"], fixture["input_ids"].shape[-1]
    for auto, labels in (
        (AutoModelForSequencePrediction, torch.tensor([0.5, -1.0, 2.0])),
        (AutoModelForTokenPrediction, torch.randn(3, columns)),
        (AutoModelForContactPrediction, torch.randint(0, 2, (3, columns, columns)).float()),
    ):
        torch.manual_seed(0)
        model = auto.from_pretrained(directory, num_labels=1, problem_type="regression").eval()
        with torch.no_grad():
            output = model(input_ids=ids, attention_mask=mask, labels=labels)
            query = model.model(input_ids=ids, attention_mask=mask).query_hidden_state
        assert torch.isfinite(output.loss)
        if auto is AutoModelForSequencePrediction:
            assert torch.allclose(output.logits, model.classifier(query[:, 0]), atol=1e-6)
            continue
        assert output.logits.shape[:2] == ((3, columns) if auto is AutoModelForTokenPrediction else (3, columns**2))
        assert output.mask.shape == (3, columns)
        assert output.mask.sum(-1).tolist() == lengths  # the query row's columns (gaps included), not <cls> / padding


def test_the_readme_example_runs_on_the_converted_fixture(directory):
    example = Path(__file__).parents[1] / "examples"
    spec = importlib.util.spec_from_file_location("alignment_embeddings", example / "alignment_embeddings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(str(directory), str(example / "alignment.fasta"))
    assert result["embeddings"].shape == (34, 32) and result["pairs"].shape == (8, 34, 34)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "python examples/alignment_embeddings.py converted/rnamsm examples/alignment.fasta" in readme


def test_training_from_scratch_on_a_batch_of_alignments():
    config = RnaMsmConfig(
        num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32, max_position_embeddings=16
    )
    model = RnaMsmForMaskedLM(config).train()
    assert 0 < model.model.embeddings.row_embeddings.std() < 0.05  # initialised, as upstream's 0.01 * randn
    batch = RnaTokenizer(add_eos=False).encode_alignments([["ACGU", "AC-U"], ["GG", "GA", "G-"]], return_tensors="pt")
    specials = batch["input_ids"].lt(6)  # <pad> <cls> <eos> <unk> <mask> <null>: never predicted, never labelled
    with pytest.raises(ValueError, match="labels hold special-token ids"):
        model(**batch, labels=batch["input_ids"])
    labels = batch["input_ids"].masked_fill(specials, -100)
    loss = model(**batch, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.model.embeddings.row_embeddings.grad[:3].abs().min() > 0
    assert model.model.embeddings.row_embeddings.grad[3:].eq(0).all()  # rows no alignment has
    assert model.model.encoder.layers[0].column_attention.q_proj.weight.grad.abs().sum() > 0
