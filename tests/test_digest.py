"""A checkpoint's zip records are checked against their CRC-32s in one read (`multimolecule.convert.digest`):
every byte of every record's content is covered, wherever the read's chunks end; the conversion reports
damage that torch would load silently, and the file's sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from conftest import zip_record_ranges
from hypothesis import given, settings
from hypothesis import strategies as st
from multimolecule.converters import get_converter

from multimolecule.convert import digest
from multimolecule.convert.digest import check_crcs, file_sha256, stored_records
from multimolecule.convert.errors import CheckpointError

GOLDEN = Path(__file__).parent / "golden"
RNAFM = GOLDEN / "rnafm" / "rnafm" / "RNA-FM_pretrained.pth"


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 22])
def test_intact_records_pass_for_any_chunk_size(chunk: int, monkeypatch, tmp_path: Path):
    monkeypatch.setattr(digest, "_CHUNK", chunk)
    check_crcs(RNAFM)
    legacy = tmp_path / "legacy.pt"
    torch.save({"weight": torch.arange(100.0)}, legacy, _use_new_zipfile_serialization=False)
    assert stored_records(legacy) == []  # not an archive: nothing to check


def test_every_record_with_a_checksum_is_covered():
    assert [(record.start, record.end) for record in stored_records(RNAFM)] == zip_record_ranges(RNAFM)


@settings(max_examples=60, deadline=None)
@given(where=st.floats(0, 1, exclude_max=True), xor=st.integers(1, 255), chunk=st.sampled_from([13, 4096, 1 << 22]))
def test_any_damage_to_record_content_is_detected(tmp_path_factory, where, xor, chunk):
    data = bytearray(RNAFM.read_bytes())
    ranges = zip_record_ranges(RNAFM)
    offset = int(where * sum(end - start for start, end in ranges))
    for start, end in ranges:
        if offset < end - start:
            data[start + offset] ^= xor
            break
        offset -= end - start
    path = tmp_path_factory.mktemp("damaged") / "model.pt"
    path.write_bytes(bytes(data))
    original, digest._CHUNK = digest._CHUNK, chunk
    try:
        with pytest.raises(CheckpointError, match="does not match its CRC-32 checksum"):
            check_crcs(path)
    finally:
        digest._CHUNK = original


def test_conversion_reports_damage_that_loads_without_error(tmp_path: Path):
    """Bytes flipped inside tensor data load without complaint; the read beside the loading still stops the
    conversion, and the message names the damaged record."""
    data = bytearray(RNAFM.read_bytes())
    start, end = max(zip_record_ranges(RNAFM), key=lambda span: span[1] - span[0])  # the largest tensor's bytes
    data[(start + end) // 2] ^= 0x01
    path = tmp_path / "model.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"record RNA-FM_pretrained/data/\d+ does not match its CRC-32"):
        get_converter("rnafm").convert(path)


def test_conversion_reports_the_files_sha256():
    expected = hashlib.sha256(RNAFM.read_bytes()).hexdigest()
    assert file_sha256(RNAFM) == expected
    assert get_converter("rnafm").convert(RNAFM).sha256 == expected  # hashed when asked for
    assert get_converter("rnafm").convert(RNAFM, sha256="0" * 64).sha256 == "0" * 64  # the catalogue's, as given
