"""Vocabularies as data: one per molecule alphabet, shared by every model family."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<cls>", "<eos>", "<unk>", "<mask>", "<null>")


@dataclass(frozen=True)
class Alphabet:
    """The symbols of a molecule type.

    `symbols` is the single-character vocabulary (after the special tokens); `kmer_symbols` is the
    smaller alphabet k-mer and codon vocabularies are built from (their size grows as |alphabet|^k).
    `substitutions` are applied before lookup when the tokenizer is asked to (e.g. T -> U for RNA).
    """

    name: str
    symbols: str
    kmer_symbols: str
    substitutions: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)

    def vocabulary(self, nmers: int = 1) -> list[str]:
        if nmers == 1:
            return [*SPECIAL_TOKENS, *self.symbols]
        return [*SPECIAL_TOKENS, *("".join(kmer) for kmer in product(self.kmer_symbols, repeat=nmers))]


RNA = Alphabet(
    name="RNA",
    # IUPAC codes, then `.` (gap), `X` (any base), `*` (reserved), `-` (gap, as many upstream releases write it)
    # and `I` (inosine). The order is fixed: it is the id order of every published checkpoint.
    symbols="ACGUNRYSWKMBDHV.X*-I",
    kmer_symbols="ACGUN",
    substitutions={"T": "U"},
    descriptions={
        "A": "adenine",
        "C": "cytosine",
        "G": "guanine",
        "U": "uracil",
        "N": "unknown base",
        "R": "A or G",
        "Y": "C or U",
        "S": "C or G",
        "W": "A or U",
        "K": "G or U",
        "M": "A or C",
        "B": "C, G or U",
        "D": "A, G or U",
        "H": "A, C or U",
        "V": "A, C or G",
        ".": "gap",
        "X": "any base",
        "*": "reserved",
        "-": "gap",
        "I": "inosine",
    },
)
