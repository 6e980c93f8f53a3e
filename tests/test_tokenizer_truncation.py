"""Truncation costs what the kept part costs: a single sequence cut to `max_length` is tokenized only as far as
needed, with the same ids as tokenizing all of it and cutting."""

from __future__ import annotations

import random

import pytest

from multimolecule import RnaTokenizer

CONFIGURATIONS = {"single": {}, "3-mers": {"nmers": 3}, "2-mers": {"nmers": 2}, "codons": {"codon": True}}
SPECIALS = ["<mask>", "<null>", "<cls>", "<eos>", "<pad>"]


class CountingTokenizer(RnaTokenizer):
    """Counts the characters `tokenize` is given, and refuses more than `limit` (a failure, at once)."""

    limit = 10**9

    def tokenize(self, text: str, **kwargs) -> list[str]:
        self.characters = getattr(self, "characters", 0) + len(text)
        assert self.characters <= self.limit, f"tokenize read {self.characters} characters"
        return super().tokenize(text, **kwargs)


def sequence(rng: random.Random, runs: int, codon: bool) -> str:
    """Runs of nucleotides (any case, T included; whole codons, or at least 3), separated by special tokens, with
    whitespace anywhere: text every configuration tokenizes without an error."""
    text = []
    for index in range(runs):
        if index:
            text.append(rng.choice(SPECIALS))
        for _ in range(rng.randint(1, 12) * 3 if codon else rng.randint(3, 30)):
            if rng.random() < 0.1:
                text.append(rng.choice(" \n\t"))
            text.append(rng.choice("ACGUTNacgut"))
    return "".join(text)


def cut(tokenizer: RnaTokenizer, text: str, max_length: int, add_special_tokens: bool) -> list[int]:
    """Tokenize everything, then cut to `max_length`: what truncation must equal."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not add_special_tokens:
        return ids[:max_length]
    return tokenizer.build_inputs_with_special_tokens(ids[: max_length - 2])


@pytest.mark.parametrize("name", CONFIGURATIONS)
@pytest.mark.parametrize("add_special_tokens", [True, False], ids=["specials", "bare"])
def test_truncated_equals_cut(name: str, add_special_tokens: bool):
    tokenizer = RnaTokenizer(**CONFIGURATIONS[name])
    rng = random.Random(name)
    for _ in range(150):
        text = sequence(rng, rng.randint(0, 5), codon=name == "codons")
        for max_length in (3, 4, 5, 8, 13, 40, 200):
            for truncation in (True, "longest_first", "only_first"):
                encoded = tokenizer(
                    text, truncation=truncation, max_length=max_length, add_special_tokens=add_special_tokens
                )
                assert encoded["input_ids"] == cut(tokenizer, text, max_length, add_special_tokens), (text, max_length)
                assert encoded["attention_mask"] == [1] * len(encoded["input_ids"])


def test_truncated_batch_equals_cut():
    tokenizer = RnaTokenizer(nmers=3)
    texts = ["ACGU<mask>ACGUACGU", "AC GU AC<null>GUAC", "A" * 50, "ACG"]
    encoded = tokenizer(texts, truncation=True, max_length=7, padding=True)
    expected = [cut(tokenizer, text, 7, True) for text in texts]
    assert encoded["input_ids"] == [ids + [tokenizer.pad_token_id] * (7 - len(ids)) for ids in expected]


def test_added_tokens_are_kept_whole():
    tokenizer = RnaTokenizer()
    tokenizer.add_tokens(["<motif>", "<motif_long_name>"])
    text = "ACGU<motif_long_name>" * 40 + "<motif>ACGU" * 40
    for max_length in range(3, 200, 7):
        assert tokenizer(text, truncation=True, max_length=max_length)["input_ids"] == cut(
            tokenizer, text, max_length, True
        )


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_ten_million_characters_truncated_read_only_the_prefix(name: str):
    tokenizer = CountingTokenizer(**CONFIGURATIONS[name])
    tokenizer.limit = 8 * 1024  # the kept part, with room to spare; the input is 10,000 times longer
    text = "ACGUAC<mask>GUA " * 625_000  # 10 million characters
    encoded = tokenizer(text, truncation=True, max_length=1024)
    assert len(encoded["input_ids"]) == 1024
    short = text[:6000]  # comfortably more than 1024 tokens' worth: the same ids, computed the slow way
    assert encoded["input_ids"] == cut(RnaTokenizer(**CONFIGURATIONS[name]), short, 1024, True)


def test_what_truncation_cannot_shorten_is_read_whole():
    tokenizer = CountingTokenizer()
    text = "ACGU" * 1000
    assert len(tokenizer(text)["input_ids"]) == 4002  # no truncation: all of it
    tokenizer.characters = 0
    pair = tokenizer(text, "ACGU", truncation="only_first", max_length=10)["input_ids"]
    assert tokenizer.characters == 4004 and len(pair) == 10  # a pair: transformers' own truncation, unchanged
    tokenizer.characters = 0
    overflow = tokenizer(text, truncation=True, max_length=10, return_overflowing_tokens=True)
    assert tokenizer.characters == 4000 and len(overflow["overflowing_tokens"]) == 3992
