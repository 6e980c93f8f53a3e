"""`python -m multimolecule.extract MODEL INPUT OUTPUT`: embeddings, contacts and structures from FASTA, on disk."""

from .batching import token_batches
from .records import Piece, Skipped, check_records, split_windows
from .shards import read_record

__all__ = ["Piece", "Skipped", "check_records", "read_record", "split_windows", "token_batches"]
