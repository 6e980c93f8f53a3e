"""Running the model on a batch of pieces and turning its outputs into per-record tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from ..modules.heads import nucleotide_mask
from ..pipelines.release import has_contact_head, pairing_logits
from .records import Piece

INCLUDES = ("mean", "cls", "per-token", "contacts", "structure")
PAIRWISE = ("contacts", "structure")


@dataclass(frozen=True)
class Request:
    """What to extract: `include` from INCLUDES; `layers` index `hidden_states` (0: embeddings, L: last)."""

    include: tuple[str, ...]
    layers: tuple[int, ...]


def check_request(model: PreTrainedModel, request: Request, has_cls: bool) -> None:
    """Refuse, before any work, what this model cannot give."""
    unknown = [name for name in request.include if name not in INCLUDES]
    if unknown or not request.include:
        raise ValueError(f"--include takes some of {', '.join(INCLUDES)}; got {list(request.include)}")
    if "cls" in request.include and not has_cls:
        raise ValueError("--include cls: this model's tokenizer adds no <cls> token")
    if "contacts" in request.include and not has_contact_head(model):
        raise ValueError(f"--include contacts: {type(model).__name__} has no attention contact head")


@torch.inference_mode()
def run_pieces(
    model: PreTrainedModel, pieces: list[Piece], request: Request, pad_id: int, device: torch.device
) -> list[dict[str, torch.Tensor]]:
    """Outputs of each piece, float32 on the CPU: `layer{L}` (n, hidden) per-token states over the
    nucleotide tokens, `cls{L}` (hidden,), `contacts` / `structure` (n, n) probabilities."""
    width = max(len(piece.tokens) for piece in pieces)
    input_ids = torch.full((len(pieces), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, piece in enumerate(pieces):  # right padding, as the tokenizers do
        input_ids[row, : len(piece.tokens)] = torch.tensor(piece.tokens)
        attention_mask[row, : len(piece.tokens)] = 1
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    pairwise = [name for name in PAIRWISE if name in request.include]
    runner = model if pairwise else getattr(model, "model", model)  # embeddings only: skip the heads
    kwargs = {"return_contacts": True} if "contacts" in pairwise else {}
    output = runner(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kwargs)
    keep = nucleotide_mask(model.config, input_ids, attention_mask)
    maps = {}
    if "contacts" in pairwise:
        maps["contacts"] = output.contacts
    if "structure" in pairwise:
        logits = pairing_logits(output)
        if logits is None:
            raise ValueError(f"--include structure: {type(model).__name__} returns no pairing logits")
        maps["structure"] = torch.sigmoid(logits.float())
    results = []
    counts = keep.sum(-1).tolist()
    for row, n in enumerate(counts):
        result = {}
        for layer in request.layers:
            states = output.hidden_states[layer][row]
            result[f"layer{layer}"] = states[keep[row]].float().cpu()
            result[f"cls{layer}"] = states[0].float().cpu()
        for name, values in maps.items():
            result[name] = values[row, :n, :n].float().cpu()
        results.append(result)
    return results


def combine_windows(parts: list[tuple[int, dict[str, torch.Tensor]]], length: int) -> dict[str, torch.Tensor]:
    """One record's outputs from its windows, given as (start, outputs) pairs.

    Per-token states: each position takes the mean over the windows that cover it. `<cls>` vectors: the mean
    over the windows. (Pairwise maps are not combined: windows are refused for them.)
    """
    if len(parts) == 1:
        return parts[0][1]
    combined: dict[str, torch.Tensor] = {}
    for key in parts[0][1]:
        if not key.startswith("layer"):
            combined[key] = torch.stack([outputs[key] for _, outputs in parts]).mean(0)
            continue
        total = torch.zeros(length, parts[0][1][key].shape[-1])
        count = torch.zeros(length, 1)
        for start, outputs in parts:
            total[start : start + outputs[key].shape[0]] += outputs[key]
            count[start : start + outputs[key].shape[0]] += 1
        combined[key] = total / count
    return combined


def summarise(outputs: dict[str, torch.Tensor], request: Request) -> dict[str, torch.Tensor]:
    """What is written for one record: `mean.layer{L}`, `cls.layer{L}`, `per_token.layer{L}`, pair maps."""
    result = {}
    for layer in request.layers:
        states = outputs[f"layer{layer}"]
        if "mean" in request.include:
            result[f"mean.layer{layer}"] = states.mean(0)
        if "cls" in request.include:
            result[f"cls.layer{layer}"] = outputs[f"cls{layer}"]
        if "per-token" in request.include:
            result[f"per_token.layer{layer}"] = states
    for name in PAIRWISE:
        if name in request.include:
            result[name] = outputs[name]
    return result
