"""Key maps: ordered regex rules from an upstream state dict's names to ours, each with an optional transform.

A rule is `(pattern, target)` or `(pattern, target, transform)`. The first rule whose pattern matches the whole
upstream key wins. `target` is a replacement (backreferences allowed) or a tuple of them, when one upstream tensor
becomes several of ours (a fused q|k|v projection); `transform` then returns one tensor per target. Transforms sit
next to the rule they belong to, so a layout quirk (Paddle's `[in, out]` Linear weights, a fused projection, an
interleaved rotary layout) is declared once, where the key is renamed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

from .errors import ConversionError

Transform = Callable[[torch.Tensor], "torch.Tensor | tuple[torch.Tensor, ...]"]


def transpose(tensor: torch.Tensor) -> torch.Tensor:
    """`[in, out]` -> `[out, in]`: frameworks such as PaddlePaddle store Linear weights transposed."""
    if tensor.dim() != 2:
        raise ValueError(f"expected a 2-D weight to transpose, got shape {tuple(tensor.shape)}")
    return tensor.t().contiguous()


def split(parts: int, dim: int = 0) -> Transform:
    """Cut a fused tensor into `parts` equal pieces along `dim` (e.g. q|k|v stacked along the output rows)."""

    def cut(tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if tensor.shape[dim] % parts:
            raise ValueError(f"dimension {dim} of shape {tuple(tensor.shape)} does not split into {parts} equal parts")
        return tuple(piece.contiguous() for piece in tensor.chunk(parts, dim=dim))

    return cut


def chain(*transforms: Transform) -> Transform:
    """Apply transforms in order (each but the last must return one tensor)."""

    def apply(tensor: torch.Tensor):
        for transform in transforms:
            tensor = transform(tensor)
        return tensor

    return apply


@dataclass(frozen=True)
class Renaming:
    """Where one upstream tensor goes: our key(s), and how it is transformed on the way."""

    targets: tuple[str, ...]
    transform: Transform | None = None

    def apply(self, key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.transform is None:
            return {self.targets[0]: tensor}
        try:
            result = self.transform(tensor)
        except (ValueError, RuntimeError) as error:
            raise ConversionError(f"{key}: {error}") from None
        pieces = result if isinstance(result, tuple) else (result,)
        if len(pieces) != len(self.targets):
            raise ConversionError(f"{key}: the transform gave {len(pieces)} tensors for {len(self.targets)} keys")
        return dict(zip(self.targets, pieces, strict=True))


class KeyMap:
    """Ordered rules from upstream key to ours; `dropped` maps patterns of keys deliberately left out to the
    reason, which goes into the model card."""

    def __init__(self, rules: Iterable[tuple], dropped: Mapping[str, str] | None = None) -> None:
        self.rules = []
        for rule in rules:
            pattern, target, *rest = rule
            targets = (target,) if isinstance(target, str) else tuple(target)
            self.rules.append((re.compile(pattern), targets, rest[0] if rest else None))
        self.dropped = [(re.compile(pattern), reason) for pattern, reason in (dropped or {}).items()]

    def apply(self, keys: Iterable[str]) -> tuple[dict[str, Renaming], dict[str, str], list[str]]:
        """(renamed: upstream -> Renaming, dropped: upstream -> reason, unmatched upstream keys)."""
        renamed, dropped, unmatched = {}, {}, []
        for key in keys:
            reason = next((why for pattern, why in self.dropped if pattern.fullmatch(key)), None)
            if reason is not None:
                dropped[key] = reason
                continue
            for pattern, targets, transform in self.rules:
                if match := pattern.fullmatch(key):
                    renamed[key] = Renaming(tuple(match.expand(target) for target in targets), transform)
                    break
            else:
                unmatched.append(key)
        return renamed, dropped, unmatched

    def rename(self, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str], list, dict]:
        """(our state dict, dropped, unmatched upstream keys, ours -> upstream key) in one pass."""
        renamed, dropped, unmatched = self.apply(state)
        converted, upstream_of = {}, {}
        for key, renaming in renamed.items():
            for target, tensor in renaming.apply(key, state[key]).items():
                if target in converted:
                    raise ConversionError(f"{key} and {upstream_of[target]} both map to {target}")
                converted[target] = tensor
                upstream_of[target] = key
        return converted, dropped, unmatched, upstream_of
