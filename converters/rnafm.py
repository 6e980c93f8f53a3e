"""RNA-FM (ml4bio/RNA-FM): `rnafm`, `mrnafm` and `rnafm-ss`.

Containers:
    rnafm, mrnafm  fairseq checkpoint {'args': Namespace, 'model': {'encoder.encoder.<key>': tensor}}; the
                   remaining fairseq entries (optimizer state, ...) are training state and are ignored.
    rnafm-ss       plain state dict of fm.downstream.Baseline: 'backbone.<key>' and the ResNet head under
                   'downstream_modules.pc-resnet_1_sym_first:r-ss.'; no args, so the number of attention
                   heads (which no tensor shape reveals) is the published 20 unless --model.num_attention_heads.
Vocabulary:
    fairseq alphabets: <cls> <pad> <eos> <unk>, the nucleotides (or the 64 codons in fm's frequency order),
    <null_k> fillers, <mask>. Rows are re-ordered to the shared RNA vocabulary by token string; the fillers
    are dropped.
Quirk reproduced:
    fm's loader zeroes the <mask> row of embed_tokens. It only takes effect when the file stores
    embed_tokens and lm_head.weight in one storage (as `torch.save(model.state_dict())` of fm's model does),
    because load_state_dict then copies the zeroed row into both; in that case we zero it too.
"""

from __future__ import annotations

import re
from argparse import Namespace
from pathlib import Path
from typing import Any

import torch

from multimolecule.convert.checkpoint import load_checkpoint
from multimolecule.convert.engine import MASKED_LM_PARITY, Converter, tensor_size
from multimolecule.convert.errors import CheckpointError, ConversionError
from multimolecule.convert.keymap import KeyMap
from multimolecule.convert.validate import Reference
from multimolecule.convert.vocabulary import fairseq_vocabulary
from multimolecule.models.rnafm import RnaFmConfig, RnaFmForMaskedLM, RnaFmForSecondaryStructurePrediction

from ._esm import ESM_RULES, esm_sizes

_SS = r"downstream_modules\.pc-resnet_1_sym_first:r-ss\."

KEY_MAP = KeyMap(
    [
        *ESM_RULES,
        (r"embed_positions\.weight", "model.embeddings.position_embeddings.weight"),
        (r"emb_layer_norm_before\.(weight|bias)", r"model.embeddings.layer_norm.\1"),
        (_SS + r"pre_reduction\.(weight|bias)", r"ss_head.pre_reduction.\1"),
        (_SS + r"proj\.first\.0\.(weight|bias)", r"ss_head.first.\1"),
        (_SS + r"proj\.resnet\.(\d+)\.(bn1\.\w+|conv1\.weight|conv2\.weight)", r"ss_head.blocks.\1.\2"),
        (_SS + r"proj\.final\.(weight|bias)", r"ss_head.final.\1"),
    ]
)

RNA_VOCABULARY = fairseq_vocabulary("ACGURYKMSWBDHVN-")
# fm's `rnaseq_3mer_toks`: codons by frequency, the order of mRNA-FM's embedding rows
CODON_VOCABULARY = fairseq_vocabulary(
    """
    GAG AAG GAA CUG CAG GAU AAA GUG GAC AUG GCC AAC GCU AAU AUC UUC
    GGA AUU GGC UUU CCA AGC GCA UCU CUC ACC CAA CCU UCC ACA UUG GUU
    CUU UAC ACU CCC UCA GUC GGU CAC AGU UAU AGA CAU GGG UGG UGC AGG
    UGU AUA CGC UUA GCG CGG CCG GUA CUA ACG UCG CGA CGU UGA UAA UAG
    """.split()
)

_FAIRSEQ_PREFIX = re.compile(r"^encoder\.(?:sentence_)?encoder\.")
# fairseq argument -> our config field, checked against the tensor shapes
_ARGS = {
    "encoder_layers": "num_hidden_layers",
    "encoder_embed_dim": "hidden_size",
    "encoder_ffn_embed_dim": "intermediate_size",
    "max_positions": "max_position_embeddings",
}


class RnaFmConverter(Converter):
    family = "rnafm"
    config_class = RnaFmConfig
    key_map = KEY_MAP

    def unpack(self, content: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if "model" in content and "args" in content:
            args = _fairseq_args(content["args"], path)
            model = _tensors(content["model"], path, "'model'")
            state = {_FAIRSEQ_PREFIX.sub("", key): value for key, value in model.items()}
            return state, {"args": args, "container": "fairseq"}
        if content and all(isinstance(value, torch.Tensor) for value in content.values()):
            # fm's Baseline state dict (rnafm-ss); any other state dict fails the key map, which lists its keys
            state = {str(key).removeprefix("backbone."): value for key, value in content.items()}
            return state, {"container": "state_dict"}
        raise CheckpointError(
            f"{path} is neither a fairseq checkpoint (a dict with 'args' and 'model') nor a state dict of tensors; "
            f"its top-level keys are {sorted(map(str, content))[:10]}"
        )

    def adapt(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        embedding, decoder = state.get("embed_tokens.weight"), state.get("lm_head.weight")
        if metadata["container"] != "fairseq" or embedding is None or decoder is None:
            return
        shared = (
            embedding.untyped_storage().data_ptr() == decoder.untyped_storage().data_ptr()
            and embedding.storage_offset() == decoder.storage_offset()
        )
        if shared and embedding.shape[0] == len(self.upstream_vocabulary):
            zeroed = embedding.clone()
            zeroed[self.upstream_vocabulary.index("<mask>")] = 0
            state["embed_tokens.weight"] = state["lm_head.weight"] = zeroed

    def read_config(self, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> dict[str, Any]:
        config = {
            **esm_sizes(state),
            "max_position_embeddings": tensor_size(state, "embed_positions.weight", 0) - RnaFmConfig.position_offset,
            "embedding_norm": "emb_layer_norm_before.weight" in state,
        }
        args = metadata.get("args")
        if args:
            for name, field in _ARGS.items():
                if name in args and _arg(args, name) != config[field]:
                    raise ConversionError(
                        f"the checkpoint's args say {name}={args[name]} but its tensors say {field}={config[field]}"
                    )
            if "encoder_attention_heads" not in args:
                raise ConversionError(
                    "the checkpoint's args have no encoder_attention_heads, and no tensor shape reveals the number "
                    "of attention heads"
                )
            config["num_attention_heads"] = _arg(args, "encoder_attention_heads")
            if args.get("token_dropout") is not None and _arg(args, "token_dropout", bool):
                raise ConversionError("this RNA-FM checkpoint was trained with token_dropout, which RnaFm does not do")
        ss = "downstream_modules.pc-resnet_1_sym_first:r-ss."
        if ss + "pre_reduction.weight" in state:
            blocks = {
                int(m.group(1)) for key in state if (m := re.match(re.escape(ss) + r"proj\.resnet\.(\d+)\.", key))
            }
            config["ss_reduction_size"] = tensor_size(state, ss + "pre_reduction.weight", 0)
            config["ss_hidden_size"] = tensor_size(state, ss + "proj.first.0.weight", 0)
            config["ss_num_layers"] = len(blocks)
        return config

    def fixture_overrides(self, meta: dict[str, Any]) -> dict[str, Any]:
        return {"num_attention_heads": meta["hyperparameters"]["attention_heads"]}

    def reference(self, path: Path, sequences: list[str], config: RnaFmConfig) -> Reference | None:
        """Run `rna-fm` (the authors' package) on the file, as its own loaders do."""
        try:
            import fm
        except ImportError:
            return None
        # a load of its own: fm edits what it is given, and its own torch.load would unpickle everything
        content = load_checkpoint(path, self.extra_globals)
        codon = self.tokenizer_kwargs.get("codon", False)
        if self.architecture is RnaFmForSecondaryStructurePrediction:
            model, alphabet, head = _fm_secondary_structure(fm, content, config)
            if model is None:
                return None
        else:
            theme = "rna-3mer" if codon else "rna"
            model, alphabet = fm.pretrained.load_model_and_alphabet_core("rna-fm", content, None, theme)
            head = None
        model.eval()
        _, _, tokens = alphabet.get_batch_converter()([(str(i), sequence) for i, sequence in enumerate(sequences)])
        layers = model.args.layers
        with torch.no_grad():
            output = model(tokens, repr_layers=[layers], return_contacts=head is None)
            tensors = {
                "input_ids": tokens,
                "attention_mask": tokens.ne(alphabet.padding_idx).long(),
                "last_hidden_state": output["representations"][layers],
                "logits": output["logits"],
            }
            if head is None:
                tensors["contacts"] = output["contacts"]
            else:
                tensors["ss_logits_unbatched"] = _fm_unbatched_ss(model, head, tokens, alphabet, layers)
        return Reference(f"rna-fm {fm.__version__} (original implementation, run live)", tensors, alphabet.all_toks)


def _fairseq_args(args: Any, path: Path) -> dict[str, Any]:
    """fairseq's training arguments (an argparse.Namespace, or a dict in newer checkpoints), by name."""
    if isinstance(args, Namespace):
        args = vars(args)
    if not isinstance(args, dict) or not all(isinstance(key, str) for key in args):
        raise CheckpointError(
            f"{path}: the fairseq checkpoint's 'args' is a {type(args).__name__}"
            + (" with keys that are not names" if isinstance(args, dict) else "")
            + "; expected an argparse.Namespace or a dict of argument names"
        )
    return args


def _tensors(model: Any, path: Path, container: str) -> dict[str, torch.Tensor]:
    """A state dict: names to tensors, or an error naming the container and what is wrong in it."""
    if not isinstance(model, dict):
        raise CheckpointError(f"{path}: {container} is a {type(model).__name__}; expected a dict of tensors")
    for key, value in model.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: {container} has a key {key!r:.60}, not a name; expected tensor names")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: {container} holds a {type(value).__name__} under {key!r:.80}; expected a dict of tensors"
            )
    return model


def _arg(args: dict[str, Any], name: str, kind: type = int) -> Any:
    """A fairseq argument the config is read from, of the type fairseq writes (never a tensor or an array)."""
    value = args[name]
    if type(value) is not kind and not (kind is bool and type(value) is int):
        expected = "an integer" if kind is int else "true or false"
        raise ConversionError(
            f"the checkpoint's args give {name} as a {type(value).__name__} ({value!r:.40}); expected {expected}"
        )
    return value


def _fm_secondary_structure(fm, content: dict, config: RnaFmConfig):
    """fm's Baseline downloads a backbone first; build its two parts directly instead."""
    from fm.downstream.pairwise_predictor import PairwiseConcatWithResNet

    state = {key.removeprefix("backbone."): value for key, value in content.items() if key.startswith("backbone.")}
    args = Namespace(
        arch="roberta_large",
        layers=config.num_hidden_layers,
        embed_dim=config.hidden_size,
        ffn_embed_dim=config.intermediate_size,
        attention_heads=config.num_attention_heads,
        max_positions=config.max_position_embeddings,
        emb_layer_norm_before=config.embedding_norm,
    )
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    model = fm.BioBertModel(args, alphabet)
    model.load_state_dict(state)
    head = PairwiseConcatWithResNet(args, alphabet, num_classes=1, symmetric=True, depth_reduction="first")
    prefix = "downstream_modules.pc-resnet_1_sym_first:r-ss."
    head_state = {key.removeprefix(prefix): value for key, value in content.items() if key.startswith(prefix)}
    shapes_fit = all(
        name in head.state_dict() and head.state_dict()[name].shape == value.shape for name, value in head_state.items()
    )
    if not shapes_fit:  # fm hard-codes the published head size (128 / 64 / 32 blocks)
        return None, None, None
    head.load_state_dict(head_state)
    return model, alphabet, head.eval()


def _fm_unbatched_ss(model, head, tokens: torch.Tensor, alphabet, layers: int) -> torch.Tensor:
    """Each sequence alone: upstream's batched map depends on the padding, the unbatched one does not."""
    lengths = tokens.ne(alphabet.padding_idx).sum(-1) - 2
    result = torch.zeros(tokens.shape[0], tokens.shape[1] - 2, tokens.shape[1] - 2)
    for index, length in enumerate(lengths.tolist()):
        single = tokens[index : index + 1, : length + 2]
        embedding = model(single, repr_layers=[layers])["representations"][layers]
        result[index, :length, :length] = head(single, {"embedding": embedding})[0]
    return result


CODON_SEQUENCES = ("AUGGCUAGCAAAGGAGAAGAACUUUUCACUGGAGUUGUCCCAAUUCUUGUUGAAUUAUAA", "AUGCCCUGA", "AUGNNNUAA")
SS_PARITY = {**MASKED_LM_PARITY, "logits": ("lm_logits", "vocabulary"), "ss_logits_unbatched": ("logits", "pairs")}

VARIANTS = {
    "rnafm": RnaFmConverter("rnafm", RnaFmForMaskedLM, RNA_VOCABULARY),
    "mrnafm": RnaFmConverter(
        "mrnafm", RnaFmForMaskedLM, CODON_VOCABULARY, {"codon": True}, sample_sequences=CODON_SEQUENCES
    ),
    "rnafm-ss": RnaFmConverter("rnafm-ss", RnaFmForSecondaryStructurePrediction, RNA_VOCABULARY, parity=SS_PARITY),
}
