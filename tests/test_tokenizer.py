"""RnaTokenizer: the one RNA vocabulary, its options, and saving / loading through AutoTokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from multimolecule import RnaFmConfig, RnaTokenizer


def test_vocabulary_order_is_the_shared_one():
    tokenizer = RnaTokenizer()
    vocabulary = list(tokenizer.get_vocab())
    assert vocabulary[:6] == ["<pad>", "<cls>", "<eos>", "<unk>", "<mask>", "<null>"]
    assert "".join(vocabulary[6:]) == "ACGUNRYSWKMBDHV.X*-I"
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert (tokenizer.unk_token_id, tokenizer.mask_token_id) == (3, 4)


def test_kmer_and_codon_vocabularies():
    assert len(RnaTokenizer(nmers=2)) == 6 + 5**2
    codon = RnaTokenizer(codon=True)
    assert len(codon) == 6 + 5**3
    assert codon.tokenize("AUGgcuUAA") == ["AUG", "GCU", "UAA"]
    assert RnaTokenizer(nmers=3).tokenize("ACGUA") == ["ACG", "CGU", "GUA"]
    with pytest.raises(ValueError, match="cannot be combined with nmers=2"):
        RnaTokenizer(codon=True, nmers=2)


def test_normalisation_T_to_U_and_case():
    tokenizer = RnaTokenizer()
    assert tokenizer.tokenize("acgt") == ["A", "C", "G", "U"]
    assert RnaTokenizer(replace_T_with_U=False).tokenize("ACGT") == ["A", "C", "G", "<unk>"]
    assert RnaTokenizer(do_upper_case=False).tokenize("acgU") == ["<unk>", "<unk>", "<unk>", "U"]


def test_unknown_characters_become_unk_or_a_named_error():
    assert RnaTokenizer().tokenize("AC?U") == ["A", "C", "<unk>", "U"]
    with pytest.raises(ValueError, match=r"character '\?' \(U\+003F\) at position 2 is not in the RNA alphabet"):
        RnaTokenizer(strict=True).tokenize("AC?U")
    with pytest.raises(ValueError, match="position 4"):
        RnaTokenizer(strict=True, codon=True).tokenize("AUGGZC")


def test_codon_length_must_be_a_multiple_of_three():
    with pytest.raises(ValueError, match=r"multiple of 3.*has 4 nucleotides"):
        RnaTokenizer(codon=True)("AUGG")


def test_special_tokens_in_text_and_pairs():
    tokenizer = RnaTokenizer()
    assert tokenizer.tokenize("AC<mask>GU") == ["A", "C", "<mask>", "G", "U"]
    ids = tokenizer("ACG", "UU")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<cls>", "A", "C", "G", "<eos>", "U", "U", "<eos>"]


def test_decode_round_trips():
    for tokenizer, sequence in [
        (RnaTokenizer(), "ACGUNRYSWKMBDHV.X*-I"),
        (RnaTokenizer(codon=True), "AUGGCCUAA"),
        (RnaTokenizer(nmers=3), "ACGUAGC"),
    ]:
        assert tokenizer.decode(tokenizer(sequence)["input_ids"], skip_special_tokens=True) == sequence


def test_padding_and_truncation():
    tokenizer = RnaTokenizer(model_max_length=8)
    batch = tokenizer(["ACGUACGUACGU", "AC"], padding=True, truncation=True)
    assert [len(ids) for ids in batch["input_ids"]] == [8, 8]
    assert batch["attention_mask"][1] == [1, 1, 1, 1, 0, 0, 0, 0]


def test_save_and_load_through_auto_tokenizer(tmp_path):
    RnaFmConfig().save_pretrained(tmp_path)
    RnaTokenizer(codon=True, strict=True, model_max_length=1024).save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(loaded) is RnaTokenizer
    assert (loaded.codon, loaded.strict, loaded.model_max_length) == (True, True, 1024)
    assert loaded.tokenize("AUGGCC") == ["AUG", "GCC"]


def test_alignment_rows_must_have_one_length():
    tokenizer = RnaTokenizer()
    encoded = tokenizer.encode_alignment(["ACG-U", "AC.GU", "acgtu"], return_tensors="pt")
    assert tuple(encoded["input_ids"].shape) == (3, 7)
    assert tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())[1:-1] == ["A", "C", "G", "-", "U"]
    with pytest.raises(ValueError, match="row 0 has 5 tokens but row 2 has 4"):
        tokenizer.encode_alignment(["ACG-U", "AC.GU", "ACGU"])
    with pytest.raises(ValueError, match="non-empty list"):
        tokenizer.encode_alignment([])
    with pytest.raises(ValueError, match="non-empty list"):
        tokenizer.encode_alignment("ACGU")
