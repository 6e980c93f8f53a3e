"""The checkpoint catalogue (checkpoints/*.toml) against the list of published upstream checkpoints.

tests/data/upstream-checkpoints.tsv is a verbatim copy of the shared list of published checkpoints (family, variant,
source, sha256, upstream repository and commit); the catalogue must hold exactly those, with the same facts.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from multimolecule.convert.catalogue import Entry, _parse, catalogue

TSV = Path(__file__).parent / "data" / "upstream-checkpoints.tsv"
HUB_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")  # the Hub's licence ids are lower case: mit, apache-2.0, other
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _rows() -> dict[str, dict[str, str]]:
    with TSV.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    variants = [row["variant"] for row in rows]
    assert len(variants) == len(set(variants)), "a variant is listed twice in the TSV"
    return {row["variant"]: row for row in rows}


ROWS = _rows()


@pytest.fixture(scope="module")
def entries() -> dict[str, Entry]:
    return catalogue()


def _parse_bibtex(text: str) -> tuple[str, str, dict[str, str]]:
    """Parse one BibTeX entry (`@type{key, field = {value} | "value" | number, ...}`); raise ValueError if it is
    not exactly one well-formed entry."""
    text = text.strip()
    head = re.match(r"@([A-Za-z]+)\s*\{\s*([^,\s{}]+)\s*,", text)
    if head is None:
        raise ValueError("does not start with '@type{key,'")
    kind, key = head.group(1).lower(), head.group(2)
    fields: dict[str, str] = {}
    i, n = head.end(), len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i < n and text[i] == "}":
            break
        name = re.compile(r"([A-Za-z][\w-]*)\s*=\s*").match(text, i)
        if name is None:
            raise ValueError(f"expected 'field = value' at {text[i : i + 30]!r}")
        field_name, i = name.group(1).lower(), name.end()
        if i >= n:
            raise ValueError(f"field {field_name} has no value")
        if text[i] == "{":
            depth, start = 0, i
            while i < n:
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            if depth:
                raise ValueError(f"unbalanced braces in field {field_name}")
            value = text[start + 1 : i - 1]
        elif text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ValueError(f"unterminated quote in field {field_name}")
            value, i = text[i + 1 : end], end + 1
        else:
            bare = re.compile(r"[\w.-]+").match(text, i)
            if bare is None:
                raise ValueError(f"bad value for field {field_name}")
            value, i = bare.group(0), bare.end()
        if field_name in fields:
            raise ValueError(f"field {field_name} given twice")
        fields[field_name] = value.strip()
    if text[i + 1 :].strip():
        raise ValueError("text after the end of the entry")
    return kind, key, fields


def test_tsv_copy_is_the_expected_list():
    assert len(ROWS) == 18  # 19 lines: a header and 18 checkpoints
    assert len({row["family"] for row in ROWS.values()}) == 9


def test_catalogue_holds_exactly_the_published_checkpoints(entries):
    assert sorted(entries) == sorted(ROWS)


@pytest.mark.parametrize("variant", sorted(ROWS))
def test_entry_matches_tsv(entries, variant):
    row, entry = ROWS[variant], entries[variant]
    assert entry.variant == variant
    assert entry.family == row["family"]
    assert entry.source == row["source"]
    assert entry.sha256 == row["sha256"]
    assert entry.repository == row["upstream_repository"]
    assert entry.commit == row["upstream_commit"]


@pytest.mark.parametrize("variant", sorted(ROWS))
def test_entry_metadata(entries, variant):
    entry = entries[variant]
    assert entry.license, "empty licence"
    assert HUB_LICENSE.match(entry.license), f"licence {entry.license!r} is not a lower-case Hub licence id"
    assert entry.family_name
    assert entry.description
    assert HEX64.match(entry.sha256)
    assert re.fullmatch(r"[0-9a-f]{40}", entry.commit), "commit is not a full git sha"
    assert entry.repository.startswith("https://github.com/")
    assert entry.repo_id == f"multimolecule/{variant}"
    assert entry.paper.title
    assert re.match(r"https://\S+$", entry.paper.url), f"paper url {entry.paper.url!r}"
    assert entry.paper.authors
    assert isinstance(entry.paper.year, int) and 1990 < entry.paper.year < 2100
    for dataset in entry.datasets:
        assert re.fullmatch(r"multimolecule/[a-z0-9][a-z0-9._-]*", dataset), dataset
    if entry.pipeline_tag is not None:
        assert entry.pipeline_tag == "fill-mask"


@pytest.mark.parametrize("variant", sorted(ROWS))
def test_citation_is_one_bibtex_entry(entries, variant):
    citation = entries[variant].citation
    kind, key, fields = _parse_bibtex(citation)
    assert kind in {"article", "inproceedings", "misc", "software"}
    assert key
    assert {"title", "author", "year"} <= set(fields), f"missing fields in {sorted(fields)}"
    assert re.fullmatch(r"\d{4}", fields["year"])
    assert int(fields["year"]) == entries[variant].paper.year


def test_base_models_are_catalogued_variants(entries):
    repo_ids = {entry.repo_id: name for name, entry in entries.items()}
    fine_tuned = {name: entry for name, entry in entries.items() if entry.base_model is not None}
    assert fine_tuned, "no fine-tuned variant is catalogued"
    for name, entry in fine_tuned.items():
        assert entry.base_model in repo_ids, f"{name}: base_model {entry.base_model} is not a catalogued repo_id"
        base = entries[repo_ids[entry.base_model]]
        assert base.variant != name, f"{name} names itself as its base model"
        assert base.family == entry.family
        assert base.base_model is None, f"{name}: base model {base.variant} is itself fine-tuned"
        assert entry.pipeline_tag != "fill-mask", f"{name} is fine-tuned but tagged fill-mask"


def test_fine_tuned_structure_heads_have_base_models(entries):
    for name in ("rnafm-ss", "rinalmo-giga-ss", "ernierna-ss"):
        assert entries[name].base_model is not None, name


def test_weights_licence_overrides_code_licence(entries):
    for name in ("rinalmo-micro", "rinalmo-mega", "rinalmo-giga", "rinalmo-giga-ss"):
        assert entries[name].license == "cc-by-4.0"


def test_google_drive_sources_are_files_or_paths_in_folders(entries):
    """`google_drive://ID[/name]` is a file; `google_drive://FOLDER/sub/.../file` (two names or more) a file in a
    shared folder, found by name (checkpoints/README.md)."""
    forms = {}
    for name, entry in entries.items():
        if entry.source.startswith("google_drive://"):
            identifier, *path = entry.source.removeprefix("google_drive://").split("/")
            assert re.fullmatch(r"[A-Za-z0-9_-]{20,}", identifier), entry.source
            assert all(path), f"{name}: an empty name in {entry.source}"
            forms[name] = "folder" if len(path) > 1 else "file"
    assert forms["rnaernie"] == "folder" and entries["rnaernie"].filename == "model_state.pdparams"
    assert forms["rnabert"] == forms["ernierna"] == "file"


def test_splicebert_variants_share_one_archive(entries):
    """The downloader extracts every catalogued member of an archive in one pass: one download for three."""
    locations = {
        entries[name].source.partition("#")[0] for name in ("splicebert", "splicebert.510", "splicebert-human.510")
    }
    assert locations == {"zenodo://10.5281/zenodo.7995778/models.tar.gz"}
    for name in ("splicebert", "splicebert.510", "splicebert-human.510"):
        assert entries[name].filename == "pytorch_model.bin"


def test_bibtex_parser_rejects_malformed_text():
    for bad in ("", "Akiyama M. et al. (2022)", "@article{key, title = {unbalanced}", "@article{key, title}"):
        with pytest.raises(ValueError):
            _parse_bibtex(bad)


GOOD_FAMILY = """
family = "demo"
name = "Demo"
repository = "https://github.com/example/demo"
commit = "0123456789abcdef0123456789abcdef01234567"
license = "mit"
description = "A demo family."
citation = "@article{demo2024, title = {Demo}, author = {Doe, Jane}, year = {2024}}"

[paper]
title = "Demo"
url = "https://example.org/demo"
"""


def test_parse_accepts_a_well_formed_file():
    text = GOOD_FAMILY + '\n[variants.demo]\nsource = "https://example.org/demo.pt"\nsha256 = "' + "AB" * 32 + '"\n'
    entries = _parse(text, "demo.toml")
    assert list(entries) == ["demo"]
    assert entries["demo"].sha256 == "ab" * 32
    assert entries["demo"].repo_id == "multimolecule/demo"


@pytest.mark.parametrize("sha256", ["ab" * 31, "xy" * 32, "ab" * 33])
def test_parse_rejects_a_bad_sha256(sha256):
    text = GOOD_FAMILY + f'\n[variants.demo]\nsource = "https://example.org/demo.pt"\nsha256 = "{sha256}"\n'
    with pytest.raises(ValueError) as error:
        _parse(text, "bad-sha.toml")
    message = str(error.value)
    assert "bad-sha.toml" in message
    assert "demo" in message
    assert "sha256" in message
    assert sha256 in message


def test_parse_rejects_an_unknown_variant_field():
    text = (
        GOOD_FAMILY
        + '\n[variants.demo]\nsource = "https://example.org/demo.pt"\nsha256 = "'
        + "ab" * 32
        + '"\nchecksum = "deadbeef"\n'
    )
    with pytest.raises(ValueError) as error:
        _parse(text, "bad-field.toml")
    message = str(error.value)
    assert "bad-field.toml" in message
    assert "demo" in message
    assert "checksum" in message
    assert "unknown" in message


def test_parse_rejects_an_unknown_family_field():
    text = 'homepage = "https://example.org"\n' + GOOD_FAMILY
    with pytest.raises(ValueError) as error:
        _parse(text, "bad-family.toml")
    message = str(error.value)
    assert "bad-family.toml" in message
    assert "homepage" in message
    assert "unknown" in message
