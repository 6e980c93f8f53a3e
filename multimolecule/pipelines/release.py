"""Load a checkpoint as the class that holds every head its file has (`config.architectures`), so no head is
ever initialised at random; and the protocol that says which outputs are base-pairing maps."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, PreTrainedModel


class ReleaseModel:
    """`ReleaseModel.from_pretrained(path)`: the MultiMolecule class named in the checkpoint's
    `config.architectures` (e.g. `RnaFmForSecondaryStructurePrediction` for `rnafm-ss`)."""

    @staticmethod
    def from_pretrained(name_or_path: str, **kwargs: Any) -> PreTrainedModel:
        import multimolecule

        kwargs.pop("_from_pipeline", None)
        config = kwargs.pop("config", None) or AutoConfig.from_pretrained(name_or_path)
        names = list(config.architectures or [])
        for name in names:
            model_class = getattr(multimolecule, name, None)
            if isinstance(model_class, type) and issubclass(model_class, PreTrainedModel):
                return model_class.from_pretrained(name_or_path, config=config, **kwargs)
        raise ValueError(
            f"{name_or_path}: config.architectures {names} names no MultiMolecule model class; "
            "was it converted by `python -m multimolecule.convert`?"
        )


def pairing_logits(output: Any) -> torch.Tensor | None:
    """Base-pairing logits (batch, n, n) if `output` carries them, else None.

    The protocol a structure model follows: its output has `logits` of shape (batch, n, n) and a `mask` of the
    same shape saying which pairs are real (`RnaFmForSecondaryStructurePrediction` today; any family's
    structure head that returns the same fits without changes here).
    """
    logits, mask = getattr(output, "logits", None), getattr(output, "mask", None)
    tensors = isinstance(logits, torch.Tensor) and isinstance(mask, torch.Tensor)
    if tensors and logits.dim() == 3 and logits.shape == mask.shape and logits.shape[-1] == logits.shape[-2]:
        return logits
    return None


def has_contact_head(model: PreTrainedModel) -> bool:
    """Masked-LM models with `config.attention_contact_head` return contacts with `return_contacts=True`."""
    return bool(getattr(model.config, "attention_contact_head", False)) and getattr(model, "contact_head", None)


def pair_probabilities(
    model: PreTrainedModel, inputs: dict[str, torch.Tensor], contacts: bool = False
) -> tuple[list[torch.Tensor], Any]:
    """Per-sequence (n_i, n_i) probability maps: sigmoid of the structure head's logits, or with `contacts` the
    attention-map contacts of a masked-LM model. Returns the maps and the raw output."""
    if contacts:
        if not has_contact_head(model):
            raise ValueError(f"{type(model).__name__} has no attention contact head (config.attention_contact_head)")
        output = model(**inputs, return_contacts=True)
        maps = output.contacts
    else:
        output = model(**inputs)
        logits = pairing_logits(output)
        if logits is None:
            hint = "; pass contacts=True for its attention-map contacts" if has_contact_head(model) else ""
            raise ValueError(f"{type(model).__name__} has no secondary-structure head (no pairing logits){hint}")
        maps = torch.sigmoid(logits.float())
    special = torch.tensor(model.config.special_token_ids, device=inputs["input_ids"].device)
    counts = (inputs["attention_mask"].bool() & ~torch.isin(inputs["input_ids"], special)).sum(-1).tolist()
    return [maps[row, :n, :n].float() for row, n in enumerate(counts)], output
