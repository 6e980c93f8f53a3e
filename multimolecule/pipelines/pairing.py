"""From a base-pairing probability map to base pairs: the release's threshold, one partner per base."""

from __future__ import annotations

import torch
from transformers import PreTrainedConfig

from ..convert.catalogue import catalogue


def pairs_from_probabilities(probabilities: torch.Tensor, threshold: float, min_loop: int = 0) -> list[tuple[int, int]]:
    """Base pairs (i, j), 0-based, i < j, sorted.

    A pair is a candidate when its probability is above `threshold` (strictly) and it encloses at least
    `min_loop` unpaired bases (j - i - 1 >= min_loop; 0, the default, applies no hairpin constraint, as the
    releases do not). Conflicts are resolved greedily by probability: candidates are taken from the most
    probable down (ties by position), and one is kept only if neither base is already paired. The map is
    symmetrised by the mean of (i, j) and (j, i) first.
    """
    if probabilities.dim() != 2 or probabilities.shape[0] != probabilities.shape[1]:
        raise ValueError(f"expected a square (n, n) map, got {tuple(probabilities.shape)}")
    symmetric = (probabilities.float() + probabilities.float().T) / 2
    rows, columns = torch.triu_indices(*symmetric.shape, offset=min_loop + 1)
    values = symmetric[rows, columns]
    keep = values > threshold
    rows, columns, values = rows[keep].tolist(), columns[keep].tolist(), values[keep].tolist()
    order = sorted(range(len(values)), key=lambda k: (-values[k], rows[k], columns[k]))
    paired: set[int] = set()
    pairs = []
    for k in order:
        i, j = rows[k], columns[k]
        if i not in paired and j not in paired:
            paired.update((i, j))
            pairs.append((i, j))
    return sorted(pairs)


def release_threshold(config: PreTrainedConfig) -> float:
    """The threshold the release tuned: `config.pair_threshold` (written by the converter from the catalogue),
    else the catalogue entry whose Hub repository the model was loaded from. Raises if neither knows one."""
    value = getattr(config, "pair_threshold", None)
    if value is not None:
        return float(value)
    source = str(getattr(config, "_name_or_path", "") or "")
    for entry in catalogue().values():
        if entry.repo_id == source and "threshold" in entry.card:
            return float(entry.card["threshold"])
    raise ValueError(
        f"no release threshold is known for {source or 'this model'} (no config.pair_threshold, no catalogue "
        "entry); pass threshold=..."
    )
