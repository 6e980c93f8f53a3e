from .alphabet import RNA, SPECIAL_TOKENS, Alphabet
from .nucleotide import NucleotideTokenizer, RnaTokenizer

__all__ = ["RNA", "SPECIAL_TOKENS", "Alphabet", "NucleotideTokenizer", "RnaTokenizer"]
