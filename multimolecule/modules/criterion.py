"""Losses for the prediction heads: one function, four problem types, padding and -100 ignored."""

from __future__ import annotations

import torch
from torch.nn import functional as F

IGNORE_INDEX = -100
PROBLEM_TYPES = ("regression", "binary", "multiclass", "multilabel")
# transformers' names for two of them: the config stores these, as its pipelines read them (a multi-label
# classifier gets sigmoid scores only when it says `multi_label_classification`); ours stay accepted as aliases.
TRANSFORMERS_PROBLEM_TYPES = {"multiclass": "single_label_classification", "multilabel": "multi_label_classification"}
PROBLEM_TYPE_ALIASES = {theirs: ours for ours, theirs in TRANSFORMERS_PROBLEM_TYPES.items()}


def resolve_problem_type(config, labels: torch.Tensor) -> str:
    """The configured problem type, or transformers' inference from `num_labels` and the labels' dtype.

    An inferred type is written back to `config.problem_type` (as transformers does), so that later
    batches and a saved config agree.
    """
    problem_type = PROBLEM_TYPE_ALIASES.get(config.problem_type, config.problem_type)
    if problem_type is None:
        if config.num_labels == 1:
            problem_type = "regression"
        elif not labels.is_floating_point():
            problem_type = "multiclass"
        else:
            problem_type = "multilabel"
        config.problem_type = TRANSFORMERS_PROBLEM_TYPES.get(problem_type, problem_type)
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}; got {problem_type!r}")
    return problem_type


def prediction_loss(config, logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None):
    """Loss of `logits` (..., num_labels) against `labels`.

    `labels` has the shape of `logits` without the last dimension (regression with one label, binary,
    multiclass) or with it (regression with several labels, multilabel). Entries equal to -100, and
    positions where `valid` is False (padding, special tokens), do not count.
    """
    problem_type = resolve_problem_type(config, labels)
    num_labels = logits.shape[-1]
    per_label = problem_type == "multilabel" or (problem_type == "regression" and num_labels > 1)
    expected = tuple(logits.shape) if per_label else tuple(logits.shape[:-1])
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"labels have shape {tuple(labels.shape)} but {problem_type} with num_labels={num_labels} needs "
            f"{expected} (pad with -100 where there is no label)"
        )
    labels = labels.to(logits.device)
    keep = labels != IGNORE_INDEX
    if valid is not None:
        valid = valid.to(logits.device)
        keep = keep & (valid.unsqueeze(-1) if per_label else valid)
    if not keep.any():
        return logits.sum() * 0.0

    if problem_type == "regression":
        if not per_label:
            logits = logits.squeeze(-1)
        return F.mse_loss(logits[keep].float(), labels[keep].float())
    if problem_type == "multiclass":
        if labels.is_floating_point():
            raise ValueError("multiclass labels must be integer class indices, got floating-point labels")
        targets = labels[keep]
        if num_labels < 2:
            raise ValueError("multiclass needs num_labels >= 2; use problem_type='binary' with num_labels=1")
        _check_range(targets, 0, num_labels - 1, f"multiclass labels with num_labels={num_labels}")
        return F.cross_entropy(logits[keep].float(), targets.long())
    if problem_type == "binary":
        if num_labels != 1:
            raise ValueError(f"binary needs num_labels=1 (one logit), got num_labels={num_labels}")
        targets = labels[keep]
        _check_range(targets, 0, 1, "binary labels")
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1)[keep].float(), targets.float())
    targets = labels[keep]
    _check_range(targets, 0, 1, "multilabel labels")
    return F.binary_cross_entropy_with_logits(logits[keep].float(), targets.float())


def _check_range(values: torch.Tensor, low: float, high: float, what: str) -> None:
    if values.numel() and (values.min() < low or values.max() > high):
        raise ValueError(
            f"{what} must lie in [{low}, {high}] (or be -100 to ignore); got values from "
            f"{values.min().item()} to {values.max().item()}"
        )
