"""Reading and writing the files RNA work runs on: FASTA and alignments (FASTA / A2M / A3M), dot-bracket, BPSEQ and
CT; base-pair scores."""

from .alignment import read_alignment
from .dotbracket import BRACKETS, from_dot_bracket, to_dot_bracket
from .errors import InputError
from .fasta import Record, read_fasta
from .metrics import PairScore, pair_f1
from .pairfiles import read_bpseq, read_ct, write_bpseq, write_ct

__all__ = [
    "BRACKETS",
    "InputError",
    "PairScore",
    "Record",
    "from_dot_bracket",
    "pair_f1",
    "read_alignment",
    "read_bpseq",
    "read_ct",
    "read_fasta",
    "to_dot_bracket",
    "write_bpseq",
    "write_ct",
]
