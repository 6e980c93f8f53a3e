"""The model card of a converted checkpoint, from the catalogue entry, the conversion and its validation."""

from __future__ import annotations

from huggingface_hub import ModelCard, ModelCardData

from .. import __version__
from ..models.modeling_utils import ForSecondaryStructurePrediction
from .catalogue import Entry
from .engine import Conversion
from .validate import ValidationReport
from .vocabulary import ABSENT_TOKEN_LOGIT

_EXAMPLES = {False: "UAGCUUAUCAGACUGAUGUUGA", True: "AUGGCUAGCAAAGGAGAAGAACUUUUCACUGGAGUUGUCCCAAUUCUUGUUGAAUUAUAA"}


def model_card(entry: Entry, conversion: Conversion, report: ValidationReport) -> ModelCard:
    data = ModelCardData(
        license=entry.license,
        library_name="multimolecule",
        tags=list(entry.tags),
        datasets=list(entry.datasets) or None,
        pipeline_tag=entry.pipeline_tag,
        base_model=entry.base_model,
        widget=[{"text": _masked_example(conversion)}] if entry.pipeline_tag == "fill-mask" else None,
    )
    sections = [
        f"# {entry.family_name}: {entry.variant}",
        _disclaimer(entry),
        "## Model details\n\n" + entry.description,
        f"Paper: [{entry.paper.title}]({entry.paper.url})"
        + (f" ({entry.paper.authors}, {entry.paper.year})" if entry.paper.authors else ""),
        "### Specification\n\n" + _specification(conversion),
        "## Usage\n\n" + _usage(entry, conversion),
        "## Vocabulary\n\n" + _vocabulary(conversion),
        *(["## Notes\n\n" + "\n\n".join(entry.card["notes"])] if entry.card.get("notes") else []),
        "## Provenance\n\n" + _provenance(entry, conversion, report),
        f"## Citation\n\n```bibtex\n{entry.citation}\n```",
        f"## Licence\n\nThe weights are those of the original release, under its licence: `{entry.license}` "
        f"(see the [upstream repository]({entry.repository})).",
    ]
    return ModelCard("---\n" + data.to_yaml() + "\n---\n\n" + "\n\n".join(sections) + "\n")


def _disclaimer(entry: Entry) -> str:
    return (
        f"> [!NOTE]\n> This is a conversion of the original {entry.family_name} release "
        f"([{entry.repository}]({entry.repository})) to [MultiMolecule](https://huggingface.co/multimolecule) "
        "for Hugging Face transformers. The MultiMolecule team did not train this model; the weights are the "
        "authors', checked against the original implementation (see Provenance). Please cite the original paper."
    )


def _specification(conversion: Conversion) -> str:
    config, model = conversion.model.config, conversion.model
    rows = [
        ("Architecture", type(model).__name__),
        ("Layers", config.num_hidden_layers),
        ("Hidden size", config.hidden_size),
        ("Attention heads", config.num_attention_heads),
        ("Feed-forward size", config.intermediate_size),
        ("Parameters", f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M"),
        ("Vocabulary size", config.vocab_size),
        ("Max tokens (special tokens included)", config.max_position_embeddings),
        ("Positions", config.position_embedding_type),
        ("Tokenization", _tokenization(conversion)),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)


def _tokenization(conversion: Conversion) -> str:
    tokenizer = conversion.tokenizer
    if getattr(tokenizer, "codon", False):
        return "codons (non-overlapping 3-mers; the length must be a multiple of 3)"
    if getattr(tokenizer, "nmers", 1) > 1:
        return f"overlapping {tokenizer.nmers}-mers"
    return "single nucleotides"


def _masked_example(conversion: Conversion) -> str:
    tokenizer = conversion.tokenizer
    tokens = tokenizer.tokenize(_EXAMPLES[bool(getattr(tokenizer, "codon", False))])
    tokens[len(tokens) // 2] = tokenizer.mask_token
    return tokenizer.convert_tokens_to_string(tokens)


def install_line() -> str:
    """The install command of a card: at least the version that wrote it. An older `multimolecule` on the package
    index (0.2.2) is another project whose classes cannot read these directories."""
    return f'pip install "multimolecule>={__version__}"'


def _usage(entry: Entry, conversion: Conversion) -> str:
    repo, architecture = entry.repo_id, type(conversion.model).__name__
    sequence = _EXAMPLES[bool(getattr(conversion.tokenizer, "codon", False))]
    parts = [
        f"Install MultiMolecule: `{install_line()}` (versions before 0.3 on the package index are an earlier, "
        "unrelated project that cannot load this model). Importing it registers the model with transformers' "
        "Auto classes; without the import transformers does not know the model type.",
        _first_snippet(repo, sequence, conversion),
        "The class that holds every head of the original file, directly:\n\n"
        f'```python\nfrom multimolecule import {architecture}\n\nmodel = {architecture}.from_pretrained("{repo}")\n```',
        "Fine-tune for your task with a new head (regression or classification, set `num_labels` and "
        "`problem_type`):\n\n```python\nfrom multimolecule import AutoModelForSequencePrediction, "
        "AutoModelForTokenPrediction, AutoModelForContactPrediction\n\n"
        f'model = AutoModelForTokenPrediction.from_pretrained("{repo}", num_labels=1, problem_type="regression")\n```',
    ]
    if entry.pipeline_tag == "fill-mask":
        parts.append(
            "Fill in a masked position:\n\n```python\nimport multimolecule\nfrom transformers import pipeline\n\n"
            f'fill = pipeline("fill-mask", model="{repo}")\nfill("{_masked_example(conversion)}")\n```'
        )
    if "threshold" in entry.card:
        parts.append(
            "Base-pairing probabilities are `torch.sigmoid(output.logits)`; "
            f"{entry.card.get('threshold_note', 'threshold')}: {entry.card['threshold']}."
        )
    return "\n\n".join(parts)


def _first_snippet(repo: str, sequence: str, conversion: Conversion) -> str:
    """Load what the card describes: the structure model for a structure release, the encoder otherwise."""
    if isinstance(conversion.model, ForSecondaryStructurePrediction):
        return (
            "```python\nimport torch\nfrom multimolecule import AutoModelForSecondaryStructurePrediction\n"
            "from transformers import AutoTokenizer\n\n"
            f'tokenizer = AutoTokenizer.from_pretrained("{repo}")\n'
            f'model = AutoModelForSecondaryStructurePrediction.from_pretrained("{repo}")\n'
            f'output = model(**tokenizer("{sequence}", return_tensors="pt"))\n'
            "pairing = torch.sigmoid(output.logits)  # (1, n, n) base-pairing probabilities, one per nucleotide pair"
            "\n```"
        )
    return (
        "```python\nimport multimolecule  # registers the model with transformers\n"
        "from transformers import AutoModel, AutoTokenizer\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}")\n'
        f'model = AutoModel.from_pretrained("{repo}")\n'
        f'output = model(**tokenizer("{sequence}", return_tensors="pt"))\n'
        f"output.last_hidden_state  # one vector per token{_specials_note(conversion)}\n```"
    )


def _specials_note(conversion: Conversion) -> str:
    tokenizer = conversion.tokenizer
    added = [token for token, flag in (("<cls>", "add_cls"), ("<eos>", "add_eos")) if getattr(tokenizer, flag, True)]
    return f", {' and '.join(added)} included" if added else " (no special tokens are added)"


def _vocabulary(conversion: Conversion) -> str:
    remap = conversion.vocabulary
    lines = [
        "MultiMolecule uses one vocabulary for every RNA model, so token ids differ from the original release's. "
        "The conversion re-ordered the embedding rows, the decoder rows and the decoder bias by token: "
        "every token of the original vocabulary keeps its trained vector under the same token string."
    ]
    if remap.respelled:
        lines.append(
            "Read as ours: "
            + ", ".join(f"`{theirs}` as `{ours}`" for theirs, ours in remap.respelled.items())
            + " (the same token under MultiMolecule's spelling)."
        )
    redirected: dict[str, list[str]] = {}
    for ours, theirs in remap.token_rows.items():
        redirected.setdefault(theirs, []).append(ours)
    for theirs, tokens in redirected.items():
        lines.append(
            f"{_list(tokens, limit=len(tokens))} take{'s' if len(tokens) == 1 else ''} the original `{theirs}` "
            f"embedding, as the original tokenizer reads {'it' if len(tokens) == 1 else 'them'} as `{theirs}`."
        )
    others = [token for token in remap.absent if token not in remap.token_rows]
    if others:
        row = (
            "take the original `<unk>` embedding, which is what the original model would use for them (its tokenizer "
            "maps them to `<unk>`)"
            if remap.fallback
            else "take a zero embedding, as the original vocabulary has no `<unk>` (its tokenizer accepts none of them)"
        )
        lines.append(f"Tokens the original vocabulary lacks ({_list(others)}) {row}.")
    if remap.absent or remap.token_rows:
        lines.append(
            f"Every token the original vocabulary lacks, or that takes another token's embedding, has a decoder bias "
            f"of {ABSENT_TOKEN_LOGIT:g}, so it is never predicted and the probabilities of the original tokens are "
            "unchanged."
        )
    if remap.discarded:
        lines.append(f"Dropped, as MultiMolecule's vocabulary has no such token: {_list(remap.discarded)}.")
    lines.append("The tokenizer reads `T` as `U` and lower case as upper case.")
    return "\n\n".join(lines)


def _provenance(entry: Entry, conversion: Conversion, report: ValidationReport) -> str:
    converted = f"`{entry.source}`, sha256 `{conversion.sha256}`"
    if conversion.sha256 != entry.sha256:
        converted = (
            f"a local file, `{conversion.source.name}`, sha256 `{conversion.sha256}`: NOT the catalogued release "
            f"(`{entry.source}`, sha256 `{entry.sha256}`); converted with --no-verify"
        )
    rows = [
        ("Original release", f"[{entry.repository}]({entry.repository}) at commit `{entry.commit}`"),
        ("Converted file", converted),
        ("Converted by", f"MultiMolecule {__version__} (`python -m multimolecule.convert {entry.variant}`)"),
    ]
    if conversion.overrides:
        rows.append(
            ("Hyperparameters not stored in the file", ", ".join(f"`{k}={v}`" for k, v in conversion.overrides.items()))
        )
    text = "| | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
    if report.parity:
        text += "\n\nParity, maximum absolute difference from the original implementation's outputs:\n\n"
        text += "| reference | output | max abs diff |\n|---|---|---|\n"
        text += "\n".join(
            f"| {reference} | {output} | {difference:.2e} |"
            for reference, outputs in report.parity.items()
            for output, difference in outputs.items()
        )
    if conversion.dropped:
        reasons: dict[str, list[str]] = {}
        for key, reason in conversion.dropped.items():
            reasons.setdefault(reason, []).append(key)
        text += "\n\nOriginal tensors not carried over:\n\n" + "\n".join(
            f"- {_list(keys)}: {reason}" for reason, keys in reasons.items()
        )
    return text


def _list(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(f"`{item}`" for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
