"""Dot-bracket notation with pseudoknots: `()` first, then `[]`, `{}`, `<>` for pairs that cross, and beyond
those the letter pairs `Aa`, `Bb`, ... (upper case opens) of extended dot-bracket notation.

Pairs are 0-based `(i, j)` tuples with i < j, sorted.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InputError

BRACKETS: tuple[str, ...] = ("()", "[]", "{}", "<>", *(chr(c) + chr(c + 32) for c in range(ord("A"), ord("Z") + 1)))
UNPAIRED = ".,:-_~"


def normalise_pairs(pairs: Iterable[tuple[int, int]], length: int | None = None) -> list[tuple[int, int]]:
    """Sorted (i, j) with i < j; refuses self-pairs, a base in two pairs and positions outside `length`."""
    seen: dict[int, tuple[int, int]] = {}
    result = []
    for a, b in pairs:
        i, j = (int(a), int(b)) if a < b else (int(b), int(a))
        if i == j or i < 0 or (length is not None and j >= length):
            raise ValueError(f"pair ({a}, {b}) is not a pair of distinct positions in 0..{length}")
        for position in (i, j):
            if position in seen:
                raise ValueError(f"position {position} is in two pairs: {seen[position]} and {(i, j)}")
            seen[position] = (i, j)
        result.append((i, j))
    return sorted(result)


def _crosses(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[0] < a[1] < b[1] or b[0] < a[0] < b[1] < a[1]


def to_dot_bracket(pairs: Iterable[tuple[int, int]], length: int) -> str:
    """Dot-bracket string of `length` characters.

    Pairs are taken by their 5' position; each goes to the first bracket type none of whose pairs it crosses,
    so nested structure is all `()` and each pseudoknotted layer gets the next type. More than 30 mutually
    crossing layers raise `ValueError`.
    """
    layers: list[list[tuple[int, int]]] = [[] for _ in BRACKETS]
    text = ["."] * length
    for pair in normalise_pairs(pairs, length):
        for layer, (opening, closing) in zip(layers, BRACKETS, strict=True):
            if not any(_crosses(pair, other) for other in layer):
                layer.append(pair)
                text[pair[0]], text[pair[1]] = opening, closing
                break
        else:
            raise ValueError(f"pair {pair} crosses pairs of all {len(BRACKETS)} bracket types")
    return "".join(text)


def from_dot_bracket(structure: str) -> list[tuple[int, int]]:
    """Base pairs of a dot-bracket string; an unmatched bracket or unknown character raises `InputError`."""
    closing_of = {pair[1]: pair[0] for pair in BRACKETS}
    stacks: dict[str, list[int]] = {pair[0]: [] for pair in BRACKETS}
    pairs = []
    for position, char in enumerate(structure):
        if char in stacks:
            stacks[char].append(position)
        elif char in closing_of:
            stack = stacks[closing_of[char]]
            if not stack:
                raise InputError(f"dot-bracket: {char!r} at position {position} closes nothing")
            pairs.append((stack.pop(), position))
        elif char not in UNPAIRED:
            raise InputError(f"dot-bracket: unknown character {char!r} at position {position}")
    for opening, stack in stacks.items():
        if stack:
            raise InputError(f"dot-bracket: {opening!r} at position {stack[-1]} is never closed")
    return sorted(pairs)
