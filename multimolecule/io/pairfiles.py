"""BPSEQ and CT files: one line per base with its 1-based partner (0 for unpaired).

Readers return `(sequence, pairs)` with 0-based pairs; writers take the same. A partner that does not point
back, a position out of range or a malformed line is an `InputError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .dotbracket import normalise_pairs
from .errors import InputError

Rows = list[tuple[int, list[str]]]  # (line number, fields)


def _structure(path: Path, rows: Rows, partner_column: int) -> tuple[str, list[tuple[int, int]]]:
    if not rows:
        raise InputError(f"{path}: no bases")
    sequence, partners = [], []
    for number, fields in rows:
        if len(fields) <= partner_column:
            raise InputError(f"{path}, line {number}: expected {partner_column + 1} columns, got {len(fields)}")
        try:
            index, partner = int(fields[0]), int(fields[partner_column])
        except ValueError:
            raise InputError(f"{path}, line {number}: position and partner must be integers") from None
        if index != len(partners) + 1:
            raise InputError(f"{path}, line {number}: base {index} where base {len(partners) + 1} was expected")
        sequence.append(fields[1])
        partners.append(partner)
    length, pairs = len(partners), []
    for index, partner in enumerate(partners):
        number = rows[index][0]
        if partner and (not 1 <= partner <= length or partner == index + 1):
            raise InputError(f"{path}, line {number}: partner {partner} is not another base in 1..{length}")
        if partner and partners[partner - 1] != index + 1:
            raise InputError(
                f"{path}, line {number}: base {index + 1} pairs with {partner}, "
                f"but base {partner} pairs with {partners[partner - 1]}"
            )
        if partner > index + 1:
            pairs.append((index, partner - 1))
    return "".join(sequence), pairs


def _rows(path: Path) -> Rows:
    """Non-empty lines that are not `#` comments, as fields."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip() and not line.startswith("#")]


def read_bpseq(path: str | Path) -> tuple[str, list[tuple[int, int]]]:
    """`index base partner` per line; `#` comments and a preamble before the first numbered line
    (`Filename: ...`) are skipped."""
    rows = _rows(Path(path))
    start = next((k for k, (_, fields) in enumerate(rows) if fields[0].isdigit()), len(rows))
    return _structure(Path(path), rows[start:], partner_column=2)


def read_ct(path: str | Path) -> tuple[str, list[tuple[int, int]]]:
    """The first structure of a CT file: a header (length, title), then that many lines of
    `index base previous next partner natural-index`."""
    rows = _rows(Path(path))
    if not rows or not rows[0][1][0].isdigit():
        raise InputError(f"{path}, line {rows[0][0] if rows else 1}: a CT file starts with its length")
    length = int(rows[0][1][0])
    if len(rows) - 1 < length:
        raise InputError(f"{path}: the header says {length} bases but {len(rows) - 1} lines follow")
    return _structure(Path(path), rows[1 : 1 + length], partner_column=4)


def _partners(pairs: Iterable[tuple[int, int]], length: int) -> list[int]:
    partners = [0] * length
    for i, j in normalise_pairs(pairs, length):
        partners[i], partners[j] = j + 1, i + 1
    return partners


def write_bpseq(path: str | Path, sequence: str, pairs: Iterable[tuple[int, int]]) -> None:
    partners = _partners(pairs, len(sequence))
    numbered = enumerate(zip(sequence, partners, strict=True))
    rows = [f"{index + 1} {base} {partner}" for index, (base, partner) in numbered]
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_ct(path: str | Path, sequence: str, pairs: Iterable[tuple[int, int]], title: str = "") -> None:
    partners = _partners(pairs, len(sequence))
    length = len(sequence)
    rows = [f"{length}\t{title}".rstrip()]
    for index, (base, partner) in enumerate(zip(sequence, partners, strict=True)):
        following = index + 2 if index + 1 < length else 0
        rows.append(f"{index + 1}\t{base}\t{index}\t{following}\t{partner}\t{index + 1}")
    Path(path).write_text("\n".join(rows) + "\n", encoding="utf-8")
