"""The shared encoder's switches, each checked against an independent implementation.

Rotary + pre-norm against transformers' ESM-2 (`EsmModel`), post-norm + embedding norm against transformers'
BERT, the sinusoidal table against fairseq's (as shipped in rna-fm), SDPA against eager attention.
"""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel, EsmConfig, EsmModel

from multimolecule import RnaFmConfig, RnaFmForMaskedLM, RnaFmModel, RnaTokenizer
from multimolecule.convert.keymap import KeyMap
from multimolecule.modules.positions import sinusoidal_table

SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
SEQUENCES = ["ACGUAGCUAGCUAGGCAUCG", "GGCUA", "UUAGCNNAC"]

_LAYER = r"encoder\.layer\.(\d+)\."
_OURS = r"encoder.layers.\1."
SHARED_RULES = [
    (r"embeddings\.word_embeddings\.weight", "embeddings.word_embeddings.weight"),
    (_LAYER + r"attention\.self\.query\.(weight|bias)", _OURS + r"attention.q_proj.\2"),
    (_LAYER + r"attention\.self\.key\.(weight|bias)", _OURS + r"attention.k_proj.\2"),
    (_LAYER + r"attention\.self\.value\.(weight|bias)", _OURS + r"attention.v_proj.\2"),
    (_LAYER + r"attention\.output\.dense\.(weight|bias)", _OURS + r"attention.out_proj.\2"),
    (_LAYER + r"intermediate\.dense\.(weight|bias)", _OURS + r"ffn.fc1.\2"),
    (_LAYER + r"output\.dense\.(weight|bias)", _OURS + r"ffn.fc2.\2"),
]
ESM_KEYS = KeyMap(
    [
        *SHARED_RULES,
        (_LAYER + r"attention\.LayerNorm\.(weight|bias)", _OURS + r"attention_norm.\2"),
        (_LAYER + r"LayerNorm\.(weight|bias)", _OURS + r"ffn_norm.\2"),
        (r"encoder\.emb_layer_norm_after\.(weight|bias)", r"encoder.final_norm.\1"),
    ],
    dropped={r"rotary_embeddings\.inv_freq": "computed on the fly", r"contact_head\..*": "not part of the encoder"},
)
BERT_KEYS = KeyMap(
    [
        *SHARED_RULES,
        (r"embeddings\.position_embeddings\.weight", "embeddings.position_embeddings.weight"),
        (r"embeddings\.LayerNorm\.(weight|bias)", r"embeddings.layer_norm.\1"),
        (_LAYER + r"attention\.output\.LayerNorm\.(weight|bias)", _OURS + r"attention_norm.\2"),
        (_LAYER + r"output\.LayerNorm\.(weight|bias)", _OURS + r"ffn_norm.\2"),
    ],
    dropped={r"embeddings\.token_type_embeddings\.weight": "folded into the positions"},
)


def perturb(model: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


def port(reference: torch.nn.Module, keys: KeyMap, config: RnaFmConfig) -> RnaFmModel:
    state = reference.state_dict()
    renamed, _, unmatched, _ = keys.rename(state)
    assert not unmatched
    ours = RnaFmModel(config).eval()
    ours.load_state_dict(renamed, strict=False)
    return ours


def batch():
    return RnaTokenizer()(SEQUENCES, padding=True, return_tensors="pt")


def test_rotary_pre_norm_matches_transformers_esm():
    esm_config = EsmConfig(
        vocab_size=26, pad_token_id=0, mask_token_id=4, position_embedding_type="rotary", emb_layer_norm_before=False,
        token_dropout=False, max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        **SIZE,
    )  # fmt: skip
    esm = EsmModel(esm_config, add_pooling_layer=False).eval()
    perturb(esm)
    config = RnaFmConfig(
        **SIZE, position_embedding_type="rotary", embedding_norm=False, layer_norm_eps=1e-12, max_position_embeddings=64
    )
    ours = port(esm, ESM_KEYS, config)
    inputs = batch()
    with torch.no_grad():
        expected = esm(**inputs).last_hidden_state
        actual = ours(**inputs).last_hidden_state
    real = inputs["attention_mask"].bool()
    assert torch.allclose(actual[real], expected[real], atol=1e-5)


def test_post_norm_with_embedding_norm_matches_transformers_bert():
    bert_config = BertConfig(
        vocab_size=26, pad_token_id=0, max_position_embeddings=64, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, **SIZE,
    )  # fmt: skip
    bert = BertModel(bert_config, add_pooling_layer=False).eval()
    perturb(bert)
    with torch.no_grad():  # token type 0 is added to every position: fold it into the position table
        bert.embeddings.position_embeddings.weight.add_(bert.embeddings.token_type_embeddings.weight[0])
        bert.embeddings.token_type_embeddings.weight.zero_()
    config = RnaFmConfig(
        **SIZE, layer_norm_position="post", embedding_norm=True, final_norm=False, position_offset=0,
        layer_norm_eps=1e-12, max_position_embeddings=64,
    )  # fmt: skip
    ours = port(bert, BERT_KEYS, config)
    inputs = batch()
    with torch.no_grad():
        expected = bert(**inputs).last_hidden_state
        actual = ours(**inputs).last_hidden_state
    real = inputs["attention_mask"].bool()
    assert torch.allclose(actual[real], expected[real], atol=1e-5)


@pytest.mark.parametrize("dim", [16, 15])
def test_sinusoidal_table_matches_fairseq(dim):
    fm_modules = pytest.importorskip("fm.modules")
    padding_idx = 1
    reference = fm_modules.SinusoidalPositionalEmbedding(dim, padding_idx).get_embedding(40)
    positions = torch.arange(padding_idx + 1, 40)
    assert torch.allclose(sinusoidal_table(positions, dim, torch.float32), reference[padding_idx + 1 :], atol=1e-6)


@pytest.mark.parametrize("positions", ["absolute", "sinusoidal", "rotary", "none"])
def test_every_position_type_runs_and_ignores_padding(positions):
    model = RnaFmModel(RnaFmConfig(**SIZE, position_embedding_type=positions)).eval()
    tokenizer = RnaTokenizer()
    with torch.no_grad():
        batched = model(**tokenizer(SEQUENCES, padding=True, return_tensors="pt")).last_hidden_state
        alone = model(**tokenizer(SEQUENCES[1], return_tensors="pt")).last_hidden_state
    assert torch.allclose(batched[1, : alone.shape[1]], alone[0], atol=1e-5)


def test_sdpa_and_eager_agree():
    torch.manual_seed(0)
    sdpa = RnaFmForMaskedLM(RnaFmConfig(**SIZE)).eval()
    assert sdpa.config._attn_implementation == "sdpa"
    eager = RnaFmForMaskedLM(RnaFmConfig(**SIZE, attn_implementation="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    inputs = batch()
    with torch.no_grad():
        a, b = sdpa(**inputs).logits, eager(**inputs).logits
    real = inputs["attention_mask"].bool()
    assert torch.allclose(a[real], b[real], atol=1e-5)


def test_attention_weights_are_returned_and_ignore_padding():
    model = RnaFmModel(RnaFmConfig(**SIZE)).eval()
    inputs = batch()
    with torch.no_grad():
        attentions = model(**inputs, output_attentions=True).attentions
    assert len(attentions) == SIZE["num_hidden_layers"]
    keys_are_padding = ~inputs["attention_mask"].bool()[:, None, None, :]
    assert torch.all(attentions[0].masked_select(keys_are_padding) == 0)
    assert torch.allclose(attentions[0].sum(-1), torch.ones(()), atol=1e-5)


def test_hidden_states_end_with_the_final_normed_output():
    model = RnaFmModel(RnaFmConfig(**SIZE)).eval()
    with torch.no_grad():
        output = model(**batch(), output_hidden_states=True)
    assert len(output.hidden_states) == SIZE["num_hidden_layers"] + 1
    assert torch.equal(output.hidden_states[-1], output.last_hidden_state)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = RnaFmForMaskedLM(RnaFmConfig(**SIZE, hidden_dropout=0.0, attention_dropout=0.0)).train()
    inputs = batch()
    labels = inputs["input_ids"].masked_fill(inputs["input_ids"].lt(6), -100)  # nucleotides only: specials never

    def gradients():
        model.zero_grad()
        model(**inputs, labels=labels).loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain = gradients()
    model.activation_checkpointing_enable()
    checkpointed = gradients()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed, strict=True))


def test_too_long_input_is_a_clear_error_and_truncation_works():
    model = RnaFmModel(RnaFmConfig(**SIZE, max_position_embeddings=16)).eval()
    tokenizer = RnaTokenizer(model_max_length=16)
    with pytest.raises(ValueError, match=r"has 22 tokens but RnaFmModel has positions for 16.*truncation=True"):
        model(**tokenizer("ACGU" * 5, return_tensors="pt"))
    truncated = tokenizer("ACGU" * 5, truncation=True, return_tensors="pt")
    assert truncated["input_ids"].shape[1] == 16
    model(**truncated)


def test_empty_batch_and_foreign_ids_are_clear_errors():
    model = RnaFmModel(RnaFmConfig(**SIZE)).eval()
    with pytest.raises(ValueError, match="batch is empty"):
        model(input_ids=torch.zeros(0, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 26\)"):
        model(input_ids=torch.tensor([[1, 6, 99, 2]]))
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        model(input_ids=torch.tensor([1, 6, 2]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\) but input_ids \(1, 4\)"):
        model(input_ids=torch.tensor([[1, 6, 7, 2]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    head = RnaFmForMaskedLM(RnaFmConfig(**SIZE, attention_contact_head=True)).eval()
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 3\) but input_ids \(1, 4\)"):
        head(torch.tensor([[1, 6, 7, 2]]), torch.ones(1, 3, dtype=torch.long), return_contacts=True)


def test_published_defaults_build_without_any_file():
    config = RnaFmConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (640, 12, 20)
    assert (config.intermediate_size, config.max_position_embeddings, config.vocab_size) == (5120, 1024, 26)
    model = RnaFmForMaskedLM(config).eval()
    assert model.lm_head.decoder.weight is model.model.embeddings.word_embeddings.weight  # tied
    with torch.no_grad():
        logits = model(**RnaTokenizer()("ACGUAGC", return_tensors="pt")).logits
    assert logits.shape == (1, 9, 26) and torch.isfinite(logits).all()
