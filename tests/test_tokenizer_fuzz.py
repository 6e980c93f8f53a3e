"""RnaTokenizer on hostile and arbitrary text: tokens in the vocabulary, or a ValueError that says where.

Every tokenizer configuration is compared with a small reference model of the documented behaviour
(special tokens written in the text are kept whole; whitespace is dropped; ASCII letters are upper-cased
and T read as U; unknown characters become `<unk>`, or with `strict=True` raise a ValueError naming the
character as written and its position in the input; k-mer and codon tokenizers need enough nucleotides).
Valid sequences round-trip through encode and decode, and batches pad and truncate to the asked length.
"""

from __future__ import annotations

import random
import re

import pytest
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

from multimolecule import RnaTokenizer
from multimolecule.tokenisers.nucleotide import FASTA_HEADER

SPECIALS = ("<pad>", "<cls>", "<eos>", "<unk>", "<mask>", "<null>")
SYMBOLS = "ACGUNRYSWKMBDHV.X*-I"  # the single-nucleotide vocabulary
KMER_SYMBOLS = "ACGUN"  # what k-mer and codon vocabularies are built from
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x85\xa0\u1680\u2003\u2028\u3000"

CONFIGS: dict[str, dict] = {
    "default": {},
    "strict": {"strict": True},
    "nmers3": {"nmers": 3},
    "nmers3-strict": {"nmers": 3, "strict": True},
    "codon": {"codon": True},
    "codon-strict": {"codon": True, "strict": True},
    "strict-case-sensitive": {"strict": True, "do_upper_case": False},
    "strict-keep-T": {"strict": True, "replace_T_with_U": False},
}
TOKENIZERS = {name: RnaTokenizer(**options) for name, options in CONFIGS.items()}
FAST = settings(max_examples=80, deadline=None)
LONG = settings(max_examples=4, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def quiet_transformers():
    """Long inputs make transformers warn that they exceed model_max_length; that is expected here."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    yield
    transformers.logging.set_verbosity(verbosity)


# ------------------------------------------------------------------------------------ reference model


class Invalid(Exception):
    def __init__(self, position: int, char: str) -> None:
        self.position, self.char = position, char


class Length(Exception):
    def __init__(self, kind: str, offset: int) -> None:
        self.kind, self.offset = kind, offset


def split_specials(text: str) -> list[tuple[int, str, bool]]:
    """(offset, piece, is a special token): the literal special tokens cut out, scanning left to right."""
    pieces, start, index = [], 0, 0
    while index < len(text):
        special = next((token for token in SPECIALS if text.startswith(token, index)), None)
        if special is None:
            index += 1
            continue
        if index > start:
            pieces.append((start, text[start:index], False))
        pieces.append((index, special, True))
        index = start = index + len(special)
    if start < len(text):
        pieces.append((start, text[start:], False))
    return pieces


def normalise(char: str, options: dict) -> str:
    if options.get("do_upper_case", True) and "a" <= char <= "z":
        char = char.upper()
    if options.get("replace_T_with_U", True) and char == "T":
        char = "U"
    return char


def reference(text: str, options: dict) -> list[str]:
    """The tokens the documentation promises, or the exception (Invalid / Length) it promises."""
    nmers = 3 if options.get("codon") else options.get("nmers", 1)
    strict, step = options.get("strict", False), 3 if options.get("codon") else 1
    tokens: list[str] = []
    for offset, piece, special in split_specials(text):
        if special:
            tokens.append(piece)
            continue
        kept = [
            (offset + index, char, normalise(char, options)) for index, char in enumerate(piece) if not char.isspace()
        ]
        if nmers == 1:
            for position, char, symbol in kept:
                if symbol in SYMBOLS:
                    tokens.append(symbol)
                elif strict:
                    raise Invalid(position, char)
                else:
                    tokens.append("<unk>")
            continue
        if options.get("codon") and len(kept) % 3:
            raise Length("codon", offset)
        if 0 < len(kept) < nmers:
            raise Length("nmers", offset)
        for start in range(0, len(kept) - nmers + 1, step):
            window = kept[start : start + nmers]
            bad = [(position, char) for position, char, symbol in window if symbol not in KMER_SYMBOLS]
            if not bad:
                tokens.append("".join(symbol for _, _, symbol in window))
            elif strict:
                raise Invalid(*bad[0])
            else:
                tokens.append("<unk>")
    return tokens


def canonical(text: str) -> str:
    """What a valid sequence decodes to: whitespace removed, upper case, T read as U."""
    return "".join(normalise(char, {}) for char in text if not char.isspace())


def check(name: str, text: str) -> list[str] | None:
    """Tokenize `text` with a configuration and compare with the reference; the tokens, or None on error."""
    tokenizer, options = TOKENIZERS[name], CONFIGS[name]
    if FASTA_HEADER.match(text):  # a FASTA record with its header: refused whatever the options
        with pytest.raises(ValueError, match="FASTA header"):
            tokenizer.tokenize(text)
        return None
    try:
        expected = reference(text, options)
    except Invalid as invalid:
        assert text[invalid.position] == invalid.char
        with pytest.raises(ValueError) as raised:
            tokenizer.tokenize(text)
        message = str(raised.value)
        named = f"character {invalid.char!r} (U+{ord(invalid.char):04X}) at position {invalid.position} "
        assert message.startswith(named), (message, named)
        match = re.match(r"character .* \(U\+([0-9A-F]+)\) at position (\d+) is not in the RNA alphabet", message)
        assert match and text[int(match.group(2))] == chr(int(match.group(1), 16))  # the named index holds it
        with pytest.raises(ValueError):
            tokenizer(text)
        return None
    except Length as length:
        with pytest.raises(ValueError) as raised:
            tokenizer.tokenize(text)
        says = "multiple of 3" if length.kind == "codon" else "fewer than nmers=3"
        assert says in str(raised.value) and f"at position {length.offset} " in str(raised.value)
        return None
    tokens = tokenizer.tokenize(text)
    assert tokens == expected
    vocabulary = tokenizer.get_vocab()
    assert all(token in vocabulary for token in tokens)
    ids = tokenizer(text)["input_ids"]
    assert ids == [tokenizer.cls_token_id, *(vocabulary[token] for token in tokens), tokenizer.eos_token_id]
    return tokens


# ------------------------------------------------------------------------------------------ strategies

any_char = st.one_of(
    st.sampled_from("ACGUTNRYSWKMBDHVXI.*-acgutnryswkmbdhvxi"),
    st.sampled_from(WHITESPACE),
    st.characters(),  # any code point but surrogates
    st.characters(categories=["Cs"]),  # lone surrogates
    st.characters(max_codepoint=0x7F),
)
fragments = st.one_of(
    any_char, st.sampled_from([*SPECIALS, "<", ">", "<mask", "mask>", "<MASK>", "<null_1>", "<<pad>>"])
)
hostile_text = st.lists(fragments, max_size=60).map("".join)

spaces = st.sampled_from(WHITESPACE)
nucleotides = st.sampled_from(SYMBOLS + "T" + "acgunryswkmbdhvxit")
kmer_nucleotides = st.sampled_from(KMER_SYMBOLS + "T" + "acgunt")


def sequence(alphabet, min_size: int = 0, max_size: int = 80, multiple: int = 1):
    """Valid nucleotides (a length that is a multiple of `multiple`), with whitespace sprinkled in."""
    return st.lists(alphabet, min_size=min_size, max_size=max_size).flatmap(
        lambda chars: st.lists(st.tuples(st.integers(0, len(chars)), spaces), max_size=4).map(
            lambda inserts: _insert(chars[: len(chars) - len(chars) % multiple], inserts)
        )
    )


def _insert(chars: list[str], inserts: list[tuple[int, str]]) -> str:
    chars = list(chars)
    for index, space in sorted(inserts, reverse=True):
        chars.insert(min(index, len(chars)), space)
    return "".join(chars)


# ------------------------------------------------------------------------------------- arbitrary text


@pytest.mark.parametrize("name", CONFIGS)
@FAST
@given(text=hostile_text)
def test_hostile_text_matches_the_reference(name: str, text: str):
    check(name, text)


@pytest.mark.parametrize("name", CONFIGS)
@FAST
@given(text=st.text())
def test_arbitrary_unicode(name: str, text: str):
    check(name, text)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("text", ["", " ", "\t\n", WHITESPACE, "\u3000 \u2028"], ids=repr)
def test_empty_and_whitespace_give_no_tokens(name: str, text: str):
    tokenizer = TOKENIZERS[name]
    assert tokenizer.tokenize(text) == []
    assert tokenizer(text)["input_ids"] == [tokenizer.cls_token_id, tokenizer.eos_token_id]


def test_strict_error_names_the_character_as_written():
    """Upper-casing is applied before lookup, but the error reports what the user typed, where they typed it."""
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at position 3 is not in the RNA alphabet"):
        TOKENIZERS["strict"]("acgzu")
    with pytest.raises(ValueError, match=r"character 'é' \(U\+00E9\) at position 10 "):
        TOKENIZERS["strict"]("AC<mask> Gé")
    with pytest.raises(
        ValueError, match=r"character 'r' \(U\+0072\) at position 4 is not in the RNA alphabet \(ACGUN\)"
    ):
        TOKENIZERS["nmers3-strict"]("acgur")


def test_non_strict_reads_unknown_characters_as_unk():
    assert TOKENIZERS["default"].tokenize("AZ\u00e9\U0001f9ec-") == ["A", "<unk>", "<unk>", "<unk>", "-"]


# -------------------------------------------------------------------------------------- round trips


@FAST
@given(text=sequence(nucleotides))
def test_single_nucleotides_round_trip(text: str):
    tokenizer = TOKENIZERS["strict"]
    assert check("strict", text) == list(canonical(text))
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == canonical(text)
    default = TOKENIZERS["default"]
    assert default.decode(default(text)["input_ids"], skip_special_tokens=True) == canonical(text)


@FAST
@given(text=sequence(kmer_nucleotides, multiple=3))
def test_codons_round_trip(text: str):
    tokenizer = TOKENIZERS["codon-strict"]
    tokens = check("codon-strict", text)
    assert len(tokens) == len(canonical(text)) // 3
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == canonical(text)


@FAST
@given(text=st.one_of(st.just(""), sequence(kmer_nucleotides, min_size=3)))
def test_kmers_round_trip(text: str):
    tokenizer = TOKENIZERS["nmers3-strict"]
    tokens = check("nmers3-strict", text)
    assert len(tokens) == max(len(canonical(text)) - 2, 0)
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == canonical(text)


@FAST
@given(text=sequence(kmer_nucleotides, min_size=1).filter(lambda text: len(canonical(text)) % 3))
def test_codon_length_not_a_multiple_of_3(text: str):
    for name in ("codon", "codon-strict"):
        with pytest.raises(ValueError, match=r"multiple of 3.* has \d+ nucleotides \([12] left over\)"):
            TOKENIZERS[name](text)


# ----------------------------------------------------------------------------------- special tokens


@pytest.mark.parametrize(
    ("name", "text", "tokens"),
    [
        ("default", "AC<mask>GU", ["A", "C", "<mask>", "G", "U"]),
        ("strict", "ac<mask>gt", ["A", "C", "<mask>", "G", "U"]),
        ("strict", "<cls>A<pad><eos><unk><null>", ["<cls>", "A", "<pad>", "<eos>", "<unk>", "<null>"]),
        ("nmers3-strict", "ACGU<mask>GGA", ["ACG", "CGU", "<mask>", "GGA"]),
        ("codon-strict", "AUG<mask>UAA", ["AUG", "<mask>", "UAA"]),
    ],
)
def test_special_tokens_in_text_are_kept_whole(name: str, text: str, tokens: list[str]):
    assert check(name, text) == tokens
    tokenizer = TOKENIZERS[name]
    decoded = tokenizer.decode(tokenizer(text)["input_ids"])
    assert (
        decoded
        == "<cls>"
        + "".join(piece if special else canonical(piece) for _, piece, special in split_specials(text))
        + "<eos>"
    )


@FAST
@given(
    parts=st.lists(st.one_of(sequence(nucleotides, max_size=10), st.sampled_from(SPECIALS)), max_size=8),
)
def test_special_tokens_between_sequences(parts: list[str]):
    text = "".join(parts)
    tokens = check("strict", text)
    assert [token for token in tokens if token in SPECIALS] == [part for part in parts if part in SPECIALS]


@FAST
@given(
    parts=st.lists(
        st.one_of(sequence(kmer_nucleotides, min_size=3, max_size=12, multiple=3), st.just("<mask>")), max_size=6
    )
)
def test_special_tokens_between_codons(parts: list[str]):
    tokens = check("codon-strict", "".join(parts))
    assert tokens is not None and tokens.count("<mask>") == parts.count("<mask>")


def test_added_tokens_are_kept_whole():
    tokenizer = RnaTokenizer(strict=True)
    tokenizer.add_tokens(["<sep2>"])
    tokenizer.add_special_tokens({"additional_special_tokens": ["<bos2>"]})
    assert tokenizer.tokenize("AC<sep2>G<bos2>U") == ["A", "C", "<sep2>", "G", "<bos2>", "U"]
    ids = tokenizer("AC<sep2>GU")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<cls>", "A", "C", "<sep2>", "G", "U", "<eos>"]


# -------------------------------------------------------------------------------------------- batches


@pytest.mark.parametrize(
    ("name", "alphabet", "multiple"),
    [("strict", nucleotides, 1), ("nmers3", kmer_nucleotides, 1), ("codon", kmer_nucleotides, 3)],
)
@FAST
@given(data=st.data(), max_length=st.integers(3, 40))
def test_batch_padding_and_truncation(name, alphabet, multiple, data, max_length: int):
    tokenizer = TOKENIZERS[name]
    sequences = data.draw(
        st.lists(
            sequence(alphabet, min_size=3, max_size=60, multiple=multiple).filter(lambda s: len(canonical(s)) >= 3),
            min_size=1,
            max_size=6,
        )
    )
    lengths = [len(check(name, text)) + 2 for text in sequences]

    padded = tokenizer(sequences, padding=True)
    assert all(len(ids) == max(lengths) for ids in padded["input_ids"])
    assert [sum(mask) for mask in padded["attention_mask"]] == lengths
    for ids, mask in zip(padded["input_ids"], padded["attention_mask"], strict=True):
        assert all(token == tokenizer.pad_token_id for token, keep in zip(ids, mask, strict=True) if not keep)

    truncated = tokenizer(sequences, truncation=True, max_length=max_length)
    for ids, length in zip(truncated["input_ids"], lengths, strict=True):
        assert len(ids) == min(length, max_length)
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.eos_token_id

    fixed = tokenizer(sequences, truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
    assert tuple(fixed["input_ids"].shape) == (len(sequences), max_length)
    assert fixed["attention_mask"].sum(-1).tolist() == [min(length, max_length) for length in lengths]


# ------------------------------------------------------------------------------------------ long inputs


@LONG
@given(size=st.integers(20_000, 60_000), seed=st.integers(0, 2**32 - 1))
def test_long_sequences(size: int, seed: int):
    rng = random.Random(seed)
    text = "".join(rng.choices("ACGUTNacgunt", k=size))
    expected = canonical(text)
    for name, count in [("strict", len(expected)), ("nmers3-strict", len(expected) - 2)]:
        tokenizer = TOKENIZERS[name]
        ids = tokenizer(text)["input_ids"]
        assert len(ids) == count + 2
        assert tokenizer.decode(ids, skip_special_tokens=True) == expected
    codons = text[: size - size % 3]
    ids = TOKENIZERS["codon-strict"](codons)["input_ids"]
    assert len(ids) == len(codons) // 3 + 2
    assert TOKENIZERS["codon-strict"].decode(ids, skip_special_tokens=True) == canonical(codons)


@LONG
@given(size=st.integers(20_000, 60_000), seed=st.integers(0, 2**32 - 1))
def test_long_sequence_with_one_bad_character(size: int, seed: int):
    rng = random.Random(seed)
    chars = rng.choices("ACGUacgu", k=size)
    position = rng.randrange(size)
    chars[position] = rng.choice(["Z", "\u00e9", "\U0001f9ec", "\x00", "\ud800", "<", "0"])
    text = "".join(chars)
    for name in ("strict", "nmers3-strict"):
        with pytest.raises(ValueError, match=rf"at position {position} is not in the RNA alphabet") as raised:
            TOKENIZERS[name](text)
        assert repr(text[position]) in str(raised.value)
    assert TOKENIZERS["default"](text)["input_ids"].count(TOKENIZERS["default"].unk_token_id) == 1


@LONG
@given(size=st.integers(20_000, 40_000), seed=st.integers(0, 2**32 - 1))
def test_long_arbitrary_unicode(size: int, seed: int):
    rng = random.Random(seed)
    pool = [*"ACGUacgu \n", *SPECIALS]
    text = "".join(rng.choice(pool) if rng.random() < 0.7 else chr(rng.randrange(0x110000)) for _ in range(size))
    for name in ("default", "strict", "nmers3", "codon-strict"):
        check(name, text)
