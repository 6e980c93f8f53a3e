"""Parity against the original implementation run live: the `rna-fm` package (import name `fm`).

An upstream model is built by fm at a size unlike the golden fixtures, given random weights, saved the way
the release is saved, converted through the CLI, and compared with fm's own outputs.
"""

from __future__ import annotations

from argparse import Namespace

import pytest
import torch
from conftest import run_convert

import multimolecule

fm = pytest.importorskip("fm", reason="the rna-fm package (pip install rna-fm ptflops) is the original implementation")
from fm.downstream.pairwise_predictor import PairwiseConcatWithResNet  # noqa: E402

SEQUENCES = ["GGGUGCGAUCAUACCAGCACUAAUGCCCUCCUGGG", "UAGCUUAUCAGACUGAUGUUGA", "ACGUNRYACGU"]
CODONS = ["AUGGCUAGCAAAGGAGAAGAACUUUUCACUGGAGUUGUCUAA", "AUGCCCUGA", "AUGNNNGCCUAG"]


def fairseq_args(layers: int, dim: int, heads: int, ffn: int, positions: int) -> Namespace:
    return Namespace(
        _name="ESM-1b",
        arch="roberta_large",
        encoder_layers=layers,
        encoder_embed_dim=dim,
        encoder_ffn_embed_dim=ffn,
        encoder_attention_heads=heads,
        max_positions=positions,
    )


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.2) -> None:
    """Move every tensor off its initialisation, so a mis-mapped bias or norm shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale + parameter)
        for buffer_name, buffer in module.named_buffers():
            if buffer_name.endswith("running_var"):
                buffer.copy_(torch.rand(buffer.shape, generator=generator) + 0.5)
            elif buffer_name.endswith("running_mean"):
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.1)


def build_fm(theme: str, embedding_norm: bool, seed: int):
    args = fairseq_args(layers=2, dim=48, heads=6, ffn=96, positions=100)
    alphabet = fm.Alphabet.from_architecture("roberta_large", theme)
    model_args = Namespace(
        **{key.removeprefix("encoder_"): value for key, value in vars(args).items()},
        emb_layer_norm_before=embedding_norm,
    )
    model = fm.BioBertModel(model_args, alphabet)
    randomise(model, seed)
    return model.eval(), alphabet, args


def save_as_release(model, args, path) -> None:
    """fairseq's layout: {'args': Namespace, 'model': {'encoder.encoder.<key>': tensor}}. `state_dict()` keeps
    embed_tokens and lm_head.weight in one storage, so fm's <mask>-row zeroing takes effect (see converter)."""
    state = {f"encoder.encoder.{key}": value for key, value in model.state_dict().items()}
    torch.save({"args": args, "model": state}, path)


def fm_reload(path, theme: str):
    """What a user of the original package gets from the saved file."""
    with torch.serialization.safe_globals([Namespace]):
        model, alphabet = fm.pretrained.load_model_and_alphabet_local(str(path), theme=theme)
    return model.eval(), alphabet


def ours(output_dir, tokens, alphabet, architecture=None):
    tokenizer = multimolecule.RnaTokenizer.from_pretrained(output_dir)
    vocabulary = tokenizer.get_vocab()
    ids = torch.tensor([[vocabulary[alphabet.all_toks[i]] for i in row] for row in tokens.tolist()])
    model_class = architecture or multimolecule.RnaFmForMaskedLM
    return model_class.from_pretrained(output_dir).eval(), ids, vocabulary


@pytest.mark.parametrize(
    ("variant", "theme", "embedding_norm", "sequences"),
    [("rnafm", "rna", True, SEQUENCES), ("mrnafm", "rna-3mer", False, CODONS)],
)
def test_masked_lm_matches_rna_fm(tmp_path, variant, theme, embedding_norm, sequences):
    upstream, alphabet, args = build_fm(theme, embedding_norm, seed=7)
    path = tmp_path / "RNA-FM_live.pth"
    save_as_release(upstream, args, path)
    assert run_convert(variant, "--checkpoint", path, "--output", tmp_path / "out", "--no-verify") == 0

    reference, alphabet = fm_reload(path, theme)
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(sequences)])
    with torch.no_grad():
        expected = reference(tokens, repr_layers=[2], return_contacts=True)
    model, ids, vocabulary = ours(tmp_path / "out", tokens, alphabet)
    mask = tokens.ne(alphabet.padding_idx)
    with torch.no_grad():
        output = model(input_ids=ids, attention_mask=mask.long(), return_contacts=True, output_hidden_states=True)

    assert torch.allclose(output.hidden_states[-1][mask], expected["representations"][2][mask], atol=1e-5)
    # special tokens are never predicted (their logits are the minimum): the alphabet is compared
    shared = [token for token in alphabet.all_toks if token in vocabulary and not token.startswith("<")]
    logits = output.logits[mask][:, [vocabulary[token] for token in shared]]
    upstream_logits = expected["logits"][mask][:, [alphabet.all_toks.index(token) for token in shared]]
    assert torch.allclose(logits, upstream_logits, atol=1e-4)
    for i, n in enumerate((mask.sum(-1) - 2).tolist()):
        assert torch.allclose(output.contacts[i, :n, :n], expected["contacts"][i, :n, :n], atol=1e-5)
    # the reproduced quirk: fm zeroed the <mask> embedding because the file shares the two tensors' storage
    assert torch.count_nonzero(model.model.embeddings.word_embeddings.weight[vocabulary["<mask>"]]) == 0


def test_secondary_structure_matches_rna_fm(tmp_path):
    backbone, alphabet, args = build_fm("rna", True, seed=11)
    model_args = backbone.args
    head = PairwiseConcatWithResNet(model_args, alphabet, num_classes=1, symmetric=True, depth_reduction="first")
    randomise(head, seed=12, scale=0.01)  # 32 residual blocks: keep the map's scale sane
    head.eval()
    prefix = "downstream_modules.pc-resnet_1_sym_first:r-ss."
    state = {f"backbone.{key}": value for key, value in backbone.state_dict().items()}
    state.update({prefix + key: value for key, value in head.state_dict().items()})
    path = tmp_path / "RNA-FM-ResNet_live.pth"
    torch.save(state, path)  # the ss release is a plain state dict of fm's Baseline
    status = run_convert(
        "rnafm-ss", "--checkpoint", path, "--output", tmp_path / "out", "--no-verify",
        "--model.num_attention_heads", str(args.encoder_attention_heads),
    )  # fmt: skip
    assert status == 0

    model, _, _ = ours(tmp_path / "out", torch.zeros(1, 1, dtype=torch.long), alphabet,
                       multimolecule.RnaFmForSecondaryStructurePrediction)  # fmt: skip
    tokenizer = multimolecule.RnaTokenizer.from_pretrained(tmp_path / "out")
    batch = tokenizer(SEQUENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
        for i, sequence in enumerate(SEQUENCES):
            _, _, tokens = alphabet.get_batch_converter()([("x", sequence)])
            embedding = backbone(tokens, repr_layers=[2])["representations"][2]
            expected = head(tokens, {"embedding": embedding})[0]
            n = len(sequence)
            assert torch.allclose(logits[i, :n, :n], expected, atol=1e-4), (logits[i, :n, :n] - expected).abs().max()
