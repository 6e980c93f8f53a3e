"""One tokenizer family for nucleotide sequences: single bases, overlapping k-mers or codons."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from typing import ClassVar

from transformers import BatchEncoding, PreTrainedTokenizer
from transformers.tokenization_utils_base import TruncationStrategy

from .alphabet import RNA, SPECIAL_TOKENS, Alphabet

_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# a FASTA record handed over whole: its '>name' line would otherwise become IUPAC letters and <unk>
FASTA_HEADER = re.compile(r"\s*>[^\n]*\n")


class NucleotideTokenizer(PreTrainedTokenizer):
    """Character-level tokenizer over an [`Alphabet`][multimolecule.tokenisers.alphabet.Alphabet].

    Sequences are upper-cased (ASCII letters only, so positions never shift), whitespace is ignored, and
    the alphabet's substitutions (T -> U for RNA) are applied. A character outside the vocabulary becomes
    `<unk>`, or, with `strict=True`, raises a `ValueError` naming the character and its position in the
    input. `nmers=k` gives overlapping k-mers, `codon=True` non-overlapping 3-mers (the sequence length
    must then be a multiple of 3). Special tokens written in the text (`"ACG<mask>U"`) are kept whole.
    `add_cls` / `add_eos` say whether a sequence is wrapped in `<cls>` ... `<eos>` (the layout of most
    releases; RNABERT adds neither); they are saved with the tokenizer, so `AutoTokenizer` reproduces the layout.
    `max_alignment_rows` bounds the rows of an alignment (`encode_alignments`), as an alignment model's row
    embedding does; also saved.
    """

    alphabet: ClassVar[Alphabet]
    substitution_flag: ClassVar[str]
    vocab_files_names: ClassVar[dict[str, str]] = {"vocab_file": "vocab.txt"}
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str | None = None,
        *,
        nmers: int = 1,
        codon: bool = False,
        do_upper_case: bool = True,
        strict: bool = False,
        add_cls: bool = True,
        add_eos: bool = True,
        max_alignment_rows: int | None = None,
        cls_token: str = "<cls>",
        eos_token: str = "<eos>",
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
        mask_token: str = "<mask>",
        null_token: str = "<null>",
        **kwargs,
    ) -> None:
        if codon:
            if nmers not in (1, 3):
                raise ValueError(f"codon=True tokenizes into 3-mers; it cannot be combined with nmers={nmers}")
            nmers = 3
        if nmers < 1:
            raise ValueError(f"nmers must be a positive integer, got {nmers}")
        self.nmers = nmers
        self.codon = codon
        self.do_upper_case = do_upper_case
        self.strict = strict
        self.add_cls, self.add_eos = add_cls, add_eos
        self.max_alignment_rows = max_alignment_rows
        self.substitute = kwargs.get(self.substitution_flag, True)
        tokens = _read_vocab(vocab_file) if vocab_file is not None else self.alphabet.vocabulary(nmers)
        self._token_to_id = {token: index for index, token in enumerate(tokens)}
        self._id_to_token = dict(enumerate(tokens))
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        kwargs.setdefault("model_max_length", 1024)
        kwargs.setdefault("bos_token", cls_token)
        kwargs.setdefault("sep_token", eos_token)
        kwargs.setdefault("extra_special_tokens", [null_token])
        super().__init__(
            nmers=nmers,
            codon=codon,
            do_upper_case=do_upper_case,
            strict=strict,
            add_cls=add_cls,
            add_eos=add_eos,
            max_alignment_rows=max_alignment_rows,
            cls_token=cls_token,
            eos_token=eos_token,
            pad_token=pad_token,
            unk_token=unk_token,
            mask_token=mask_token,
            **kwargs,
        )
        self._specials = {token for token in tokens if token.startswith("<") and token.endswith(">")}
        self._specials.update(self.all_special_tokens)
        self._update_trie(sorted(self._specials))

    # vocabulary
    @property
    def vocab_size(self) -> int:
        return len(self._token_to_id)

    def get_vocab(self) -> dict[str, int]:
        return {**self._token_to_id, **self._added_tokens_encoder}

    def _convert_token_to_id(self, token: str) -> int:
        return self._token_to_id.get(token, self._token_to_id[self.unk_token])

    def _convert_id_to_token(self, index: int) -> str:
        return self._id_to_token.get(index, self.unk_token)

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "vocab.txt")
        with open(path, "w", encoding="utf-8") as file:
            file.write("\n".join(self._token_to_id) + "\n")
        return (path,)

    # tokenization
    def tokenize(self, text: str, **kwargs) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"expected a sequence as str, got {type(text).__name__}")
        header = FASTA_HEADER.match(text)
        if header:
            raise ValueError(
                f"the input starts with a FASTA header ({header.group().strip()[:40]!r}); pass the sequence without "
                "its '>' line (a FASTA reader gives the sequences of a file)"
            )
        pieces = [text] if kwargs.get("split_special_tokens") else self.tokens_trie.split(text)
        tokens: list[str] = []
        offset = 0
        for piece in pieces:
            whole = piece in self._specials or piece in self._added_tokens_encoder
            tokens.extend([piece] if whole else self._tokenize(piece, offset))
            offset += len(piece)
        unknown = tokens.count(self.unk_token)
        if unknown * 2 > len(tokens):
            warnings.warn(
                f"{unknown} of {len(tokens)} tokens are {self.unk_token}: most of the input is outside the "
                f"{self.alphabet.name} alphabet; is it a sequence? (strict=True makes this an error)",
                stacklevel=2,
            )
        return tokens

    # truncation: read only the prefix that survives it
    def _encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """When one sequence is cut to `max_length` from the right, tokenize only the prefix that is kept: a
        10-million-character input truncated to 1024 tokens costs what 1024 tokens cost. The ids are the same as
        tokenizing everything and cutting; the text after the kept part is not read, so it is not validated
        either (`strict`, the codon length), as it would not be used."""
        strategy = kwargs.get("truncation_strategy")
        max_length = kwargs.get("max_length")
        if (
            isinstance(text, str)
            and text_pair is None
            and strategy in (TruncationStrategy.LONGEST_FIRST, TruncationStrategy.ONLY_FIRST)
            and max_length is not None
            and self.truncation_side == "right"
            and not kwargs.get("return_overflowing_tokens")
            and not kwargs.get("is_split_into_words")
        ):
            specials = self.num_special_tokens_to_add(pair=False) if kwargs.get("add_special_tokens", True) else 0
            if max_length - specials > 0:
                text = self._kept_prefix(text, max_length - specials, bool(kwargs.get("split_special_tokens")))
        return super()._encode_plus(text, text_pair, **kwargs)

    def _kept_prefix(self, text: str, budget: int, split_special_tokens: bool = False) -> str:
        """The shortest prefix of `text` whose tokens are the first `budget` tokens of `text` (all of `text` when
        it has fewer). Windows of growing size are split like `tokenize` splits; a window's last
        `2 * longest special token` characters are not trusted (a special token may be cut there)."""
        longest = 1 if split_special_tokens else max(map(len, (*self._specials, *self._added_tokens_encoder)))
        step = 3 if self.codon else 1
        window = 2 * (budget * step + self.nmers) + 4 * longest
        while window < len(text):
            safe = window - 2 * longest
            pieces = [text[:window]] if split_special_tokens else self.tokens_trie.split(text[:window])
            count = start = 0
            for piece in pieces:
                if start >= safe:
                    break
                if piece in self._specials or piece in self._added_tokens_encoder:
                    count, start = count + 1, start + len(piece)
                    if count >= budget:
                        return text[:start]
                    continue
                part = piece[: safe - start]
                symbols = len("".join(part.split()))
                made = symbols // 3 if self.codon else symbols if self.nmers == 1 else max(symbols - self.nmers + 1, 0)
                if count + made >= budget:
                    needed = budget - count
                    needed = 3 * needed if self.codon else needed + self.nmers - 1
                    return text[: start + _after_symbols(part, needed)]
                count, start = count + made, start + len(piece)
            window *= 2
        return text

    def _tokenize(self, text: str, offset: int = 0) -> list[str]:
        symbols, positions = self._normalise(text)
        if self.nmers == 1:
            return [
                self._known(symbol, [position], text, offset)
                for symbol, position in zip(symbols, positions, strict=True)
            ]
        length = len(symbols)
        if self.codon and length % 3:
            raise ValueError(
                f"codon tokenization needs a length that is a multiple of 3; the sequence at position {offset} "
                f"has {length} nucleotides ({length % 3} left over)"
            )
        if 0 < length < self.nmers:
            raise ValueError(
                f"the sequence at position {offset} has {length} nucleotides, fewer than nmers={self.nmers}"
            )
        step = 3 if self.codon else 1
        return [
            self._known(
                "".join(symbols[start : start + self.nmers]), positions[start : start + self.nmers], text, offset
            )
            for start in range(0, length - self.nmers + 1, step)
        ]

    def _normalise(self, text: str) -> tuple[list[str], list[int]]:
        """(symbols after upper-casing and substitution, their indices in `text`); whitespace is dropped."""
        symbols, positions = [], []
        for index, char in enumerate(text):
            if char.isspace():
                continue
            if self.do_upper_case:
                char = char.translate(_ASCII_UPPER)
            if self.substitute:
                char = self.alphabet.substitutions.get(char, char)
            symbols.append(char)
            positions.append(index)
        return symbols, positions

    def _known(self, token: str, positions: list[int], text: str, offset: int) -> str:
        if token in self._token_to_id and token not in self._specials:
            return token
        if self.strict:
            allowed = self.alphabet.symbols if self.nmers == 1 else self.alphabet.kmer_symbols
            index = next((p for c, p in zip(token, positions, strict=True) if c not in allowed), positions[0])
            char = text[index]  # as written: the error names what the user typed, where they typed it
            raise ValueError(
                f"character {char!r} (U+{ord(char):04X}) at position {offset + index} is not in the "
                f"{self.alphabet.name} alphabet ({allowed})"
            )
        return self.unk_token

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        if self.nmers == 1 or self.codon:
            return "".join(tokens)
        # overlapping k-mers: each token after the first adds one nucleotide
        text, previous_was_kmer = [], False
        for token in tokens:
            is_kmer = token not in self._specials
            text.append(token[-1] if is_kmer and previous_was_kmer else token)
            previous_was_kmer = is_kmer
        return "".join(text)

    # special tokens: <cls> sequence <eos> [sequence <eos>], each as `add_cls` / `add_eos` say
    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        cls = [self.cls_token_id] if self.add_cls else []
        eos = [self.eos_token_id] if self.add_eos else []
        output = [*cls, *token_ids_0, *eos]
        if token_ids_1 is not None:
            output += [*token_ids_1, *eos]
        return output

    def get_special_tokens_mask(
        self, token_ids_0: list[int], token_ids_1: list[int] | None = None, already_has_special_tokens: bool = False
    ) -> list[int]:
        if already_has_special_tokens:
            special_ids = {self._token_to_id[token] for token in self._specials if token in self._token_to_id}
            return [int(token_id in special_ids) for token_id in token_ids_0]
        cls, eos = [1] * self.add_cls, [1] * self.add_eos
        mask = [*cls, *([0] * len(token_ids_0)), *eos]
        if token_ids_1 is not None:
            mask += [*([0] * len(token_ids_1)), *eos]
        return mask

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def encode_alignment(self, alignment: Sequence[str], **kwargs) -> BatchEncoding:
        """Tokenize a multiple sequence alignment: one row per aligned sequence, all of one length.

        Gaps (`-` or `.`) are tokens like any other. Rows that differ in length are not an alignment: that is a
        `ValueError` naming them, never silent padding. `kwargs` go to the tokenizer call (`return_tensors`, ...).
        """
        if isinstance(alignment, str) or len(alignment) == 0:
            raise ValueError("an alignment is a non-empty list of aligned sequences (rows)")
        lengths = [len(self.tokenize(row)) for row in alignment]
        if len(set(lengths)) > 1:
            odd = [index for index, length in enumerate(lengths) if length != lengths[0]]
            raise ValueError(
                f"the rows of an alignment must have one length; row 0 has {lengths[0]} tokens but "
                + ", ".join(f"row {index} has {lengths[index]}" for index in odd[:5])
                + (f" (and {len(odd) - 5} more rows differ)" if len(odd) > 5 else "")
            )
        return self(list(alignment), **kwargs)

    def encode_alignments(
        self, alignments: Sequence[Sequence[str]], *, truncation: bool = False, return_tensors: str | None = None
    ) -> BatchEncoding:
        """Tokenize a batch of alignments: `input_ids` and `attention_mask` of shape (batch, rows, columns).

        Each row is tokenized as a sequence (`<cls>` / `<eos>` as `add_cls` / `add_eos` say, so an MSA model's
        tokenizer puts `<cls>` on every row); the batch is padded with `<pad>` in rows and columns. Ragged rows
        are a `ValueError` naming the alignment and rows; so is an alignment of more than `max_alignment_rows`
        rows, unless `truncation=True`, which keeps its first rows (the query is row 0).
        """
        if isinstance(alignments, str) or not alignments or any(isinstance(a, str) for a in alignments):
            raise ValueError(
                "expected a batch of alignments (a list of lists of aligned rows); wrap a single alignment in a list"
            )
        encoded = []
        for index, alignment in enumerate(alignments):
            rows = list(alignment)
            limit = self.max_alignment_rows
            if limit is not None and len(rows) > limit and not truncation:
                columns = len(self.tokenize(rows[0])) + self.add_cls + self.add_eos
                raise ValueError(
                    f"alignment {index} has {len(rows)} rows × {columns} columns but this tokenizer takes at most "
                    f"{limit} rows (max_alignment_rows); truncation=True keeps the first {limit} (the query first)"
                )
            try:
                encoded.append(self.encode_alignment(rows[:limit] if limit is not None else rows)["input_ids"])
            except ValueError as error:
                raise ValueError(f"alignment {index}: {error}") from None
        rows = max(len(ids) for ids in encoded)
        columns = max(len(ids[0]) for ids in encoded)
        input_ids, attention_mask = [], []
        for ids in encoded:
            missing = rows - len(ids)
            input_ids.append([row + [self.pad_token_id] * (columns - len(row)) for row in ids])
            input_ids[-1] += [[self.pad_token_id] * columns for _ in range(missing)]
            attention_mask.append([[1] * len(row) + [0] * (columns - len(row)) for row in ids])
            attention_mask[-1] += [[0] * columns for _ in range(missing)]
        return BatchEncoding({"input_ids": input_ids, "attention_mask": attention_mask}, tensor_type=return_tensors)


class RnaTokenizer(NucleotideTokenizer):
    """Tokenizer for RNA, shared by every RNA model family.

    Vocabulary: `<pad> <cls> <eos> <unk> <mask> <null>` then `A C G U N R Y S W K M B D H V . X * - I`;
    with `nmers=k` or `codon=True` the special tokens then every k-mer over `A C G U N`.
    `replace_T_with_U` (default on) reads DNA input as RNA.

    Example:
        >>> from multimolecule import RnaTokenizer
        >>> tokenizer = RnaTokenizer()
        >>> tokenizer("ACGT")["input_ids"]
        [1, 6, 7, 8, 9, 2]
    """

    alphabet = RNA
    substitution_flag = "replace_T_with_U"

    def __init__(self, vocab_file: str | None = None, *, replace_T_with_U: bool = True, **kwargs) -> None:
        super().__init__(vocab_file, replace_T_with_U=replace_T_with_U, **kwargs)


def _after_symbols(text: str, count: int) -> int:
    """The index just after the `count`-th character of `text` that is not whitespace."""
    seen = 0
    for index, char in enumerate(text):
        if not char.isspace():
            seen += 1
            if seen == count:
                return index + 1
    return len(text)


def _read_vocab(path: str) -> list[str]:
    with open(path, encoding="utf-8") as file:
        tokens = [line.rstrip("\n") for line in file if line.rstrip("\n")]
    missing = [token for token in SPECIAL_TOKENS[:5] if token not in tokens]
    if missing:
        raise ValueError(f"vocabulary file {path} lacks the special tokens {missing}")
    return tokens
