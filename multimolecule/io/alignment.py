"""Reading multiple sequence alignments (FASTA, A2M, A3M) the way RNA-MSM's own reader does.

A2M and A3M write insertions (residues in no column of the alignment) in lower case, and A2M pads insertion
columns with `.`; those are dropped, so every row keeps the query's columns. `*` is dropped too, `T` is read as
`U`, and the IUPAC ambiguity codes (`N R Y K M S W B D H V`) as `X`, as the original reader does. Gaps (`-`)
stay: they are columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# IUPAC ambiguity codes, which RNA-MSM's reader (and its vocabulary) knows only as X
AMBIGUITY_CODES = "NRYKMSWBDHV"
_INSERTIONS = re.compile(r"[a-z.*]")
_READ_AS = str.maketrans({"T": "U", **dict.fromkeys(AMBIGUITY_CODES, "X")})


@dataclass(frozen=True)
class Alignment:
    """Aligned rows (the query first, as the file has it) and their FASTA header lines."""

    names: tuple[str, ...]
    rows: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return len(self.rows), len(self.rows[0])


def parse_alignment(text: str, source: str = "the alignment") -> Alignment:
    """An alignment from FASTA / A2M / A3M text; ragged rows, a row with no columns or text that is not FASTA
    are a `ValueError` naming the record (`source` names the file in the message)."""
    names: list[str] = []
    pieces: list[list[str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):  # blank lines and FASTA comments
            continue
        if line.startswith(">"):
            names.append(line[1:].strip())
            pieces.append([])
        elif not pieces:
            raise ValueError(f"{source} is not FASTA: line {number} holds sequence before any '>' header")
        else:
            pieces[-1].append(line)
    if not names:
        raise ValueError(f"{source} holds no FASTA records (no line starts with '>')")
    rows = [_INSERTIONS.sub("", "".join(piece)).translate(_READ_AS) for piece in pieces]
    for name, row in zip(names, rows, strict=True):
        if not row:
            raise ValueError(f"{source}: record {name!r} has no aligned columns")
        if len(row) != len(rows[0]):
            raise ValueError(
                f"{source}: record {name!r} has {len(row)} aligned columns but the first ({names[0]!r}) has "
                f"{len(rows[0])}; not an alignment (insertions must be lower case, as A2M / A3M write them)"
            )
    return Alignment(tuple(names), tuple(rows))


def read_alignment(path: str | Path) -> Alignment:
    """The alignment in a FASTA / A2M / A3M file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"could not read the alignment {path}: {error}") from None
    return parse_alignment(text, str(path))
