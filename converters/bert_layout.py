"""What the BERT-style releases share: Hugging Face BERT key names (SpliceBERT, RNABERT) and the config that
tensor shapes determine (every BERT-style family). Not a family: a module the family converters build on."""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from multimolecule.convert.engine import tensor_size
from multimolecule.convert.errors import ConversionError

# A BERT-style release's config names (BertConfig, PaddleNLP's ErnieModel) -> ours
CONFIG_NAMES = {
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "hidden_act": "hidden_act",
    "layer_norm_eps": "layer_norm_eps",
    "hidden_dropout_prob": "hidden_dropout",
    "attention_probs_dropout_prob": "attention_dropout",
}


def norm_rules(upstream: str, ours: str) -> list[tuple[str, str]]:
    """A layer norm under either spelling of its parameters (`weight`/`bias`, or BertLayerNorm's `gamma`/`beta`)."""
    return [(upstream + r"\.(?:weight|gamma)", ours + ".weight"), (upstream + r"\.(?:bias|beta)", ours + ".bias")]


def bert_rules(prefix: str = r"bert\.") -> list[tuple[str, str]]:
    """Hugging Face BERT's encoder, pooler and masked-LM head names (`selfattn` is RNABERT's spelling of `self`)."""
    layer, ours = prefix + r"encoder\.layer\.(\d+)\.", r"model.encoder.layers.\1."
    return [
        (
            prefix + r"embeddings\.(word|position|token_type)_embeddings\.weight",
            r"model.embeddings.\1_embeddings.weight",
        ),
        *norm_rules(prefix + r"embeddings\.LayerNorm", "model.embeddings.layer_norm"),
        (layer + r"attention\.self(?:attn)?\.([qkv])(?:uery|ey|alue)\.(weight|bias)", ours + r"attention.\2_proj.\3"),
        (layer + r"attention\.output\.dense\.(weight|bias)", ours + r"attention.out_proj.\2"),
        *norm_rules(layer + r"attention\.output\.LayerNorm", ours + "attention_norm"),
        (layer + r"intermediate\.dense\.(weight|bias)", ours + r"ffn.fc1.\2"),
        (layer + r"output\.dense\.(weight|bias)", ours + r"ffn.fc2.\2"),
        *norm_rules(layer + r"output\.LayerNorm", ours + "ffn_norm"),
        (prefix + r"pooler\.dense\.(weight|bias)", r"model.pooler.dense.\1"),
        *head_rules(r"cls\.predictions", "lm_head"),
    ]


def head_rules(upstream: str, ours: str) -> list[tuple[str, str]]:
    """BERT's masked-LM head: transform (dense, norm), decoder, and the bias it keeps as its own parameter."""
    return [
        (upstream + r"\.transform\.dense\.(weight|bias)", ours + r".dense.\1"),
        *norm_rules(upstream + r"\.transform\.LayerNorm", ours + ".layer_norm"),
        (upstream + r"\.decoder\.weight", ours + ".decoder.weight"),
        (upstream + r"\.bias", ours + ".decoder.bias"),
    ]


def layer_count(state: dict[str, torch.Tensor], pattern: str) -> int:
    """How many layers the keys matching `pattern` (with one group, the layer index) number; 0..n-1 expected."""
    indices = {int(match.group(1)) for key in state if (match := re.match(pattern, key))}
    if indices != set(range(len(indices))):
        raise ConversionError(f"the checkpoint's layers are numbered {sorted(indices)}; expected 0..{len(indices) - 1}")
    return len(indices)


def shapes(state: dict[str, torch.Tensor], keys: dict[str, str], layers: str, in_out: bool = False) -> dict[str, int]:
    """Config fields read from tensor shapes; `keys` names the upstream word / position / token-type embeddings and
    the first feed-forward weight (`intermediate`: `[out, in]`, or `[in, out]` where `in_out`)."""
    return {
        "hidden_size": tensor_size(state, keys["word"], 1),
        "num_hidden_layers": layer_count(state, layers),
        "intermediate_size": tensor_size(state, keys["intermediate"], 1 if in_out else 0),
        "max_position_embeddings": tensor_size(state, keys["position"], 0),
        "type_vocab_size": tensor_size(state, keys["token_type"], 0),
    }


def check_against(
    derived: dict, stored: dict, names: dict[str, str], where: str, read: Callable = lambda value: value
) -> dict:
    """Fields of a release's own config (`names`: its name -> ours), checked against what the tensors say."""
    fields = {}
    for theirs, ours in names.items():
        if theirs not in stored:
            continue
        value = read(stored[theirs])
        if ours in derived and derived[ours] != value:
            raise ConversionError(f"{where} says {theirs}={value} but the weights say {ours}={derived[ours]}")
        fields[ours] = value
    return fields
