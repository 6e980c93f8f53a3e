"""Reading a checkpoint file's bytes to prove them: its sha256, and a PyTorch archive's record checksums.

torch does not verify the CRC-32 each zip record carries, so `load_checkpoint` checks them (`check_crcs`);
the conversion engine runs that check in a thread beside loading (zlib releases the GIL on large buffers). At
release sizes a full read costs as much as the rest of the conversion, so the engine hashes a file only when
its hash is asked for, and skips the checksums of a file whose hash already matched the catalogue.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import EXPECTED_CHECKPOINT, CheckpointError

_LOCAL_HEADER = 30  # bytes of a zip local file header before the record's name and extra field
_CHUNK = 4 << 20


@dataclass
class Record:
    """A stored (uncompressed) zip record's content: where it lies in the file and the CRC-32 it declares."""

    name: str
    start: int
    end: int
    crc: int


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """The file's sha256, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def stored_records(path: Path, members: list[zipfile.ZipInfo] | None = None) -> list[Record]:
    """The stored records of a zip file that carry a CRC-32, in file order; none for any other file (or a zip
    too damaged to list, which `load_checkpoint` reports). `members`: the archive's listing, when the caller has
    read it already."""
    try:
        if members is None:
            with zipfile.ZipFile(path) as archive:
                members = archive.infolist()
        records = []
        with path.open("rb") as file:
            for member in members:
                if member.CRC == 0 or member.compress_type != zipfile.ZIP_STORED:
                    continue  # no checksum written, or compressed: left to torch, as `load_checkpoint` does
                file.seek(member.header_offset + 26)
                name_length, extra_length = struct.unpack("<HH", file.read(4))
                start = member.header_offset + _LOCAL_HEADER + name_length + extra_length
                records.append(Record(member.filename, start, start + member.compress_size, member.CRC))
    except (zipfile.BadZipFile, OSError, struct.error, ValueError):
        return []
    return sorted(records, key=lambda record: record.start)


def check_crcs(path: Path, records: list[Record] | None = None) -> None:
    """Each stored record (`stored_records` unless given) checked against its CRC-32 (a `CheckpointError`
    naming the first that does not match), in one read of the bytes they span."""
    records = stored_records(path) if records is None else records
    if not records:
        return
    crcs = [0] * len(records)
    first = 0  # records before this index end before the current chunk
    position = records[0].start
    with path.open("rb") as file:
        file.seek(position)
        while position < records[-1].end and (chunk := file.read(_CHUNK)):
            view = memoryview(chunk)
            end = position + len(chunk)
            index = first
            while index < len(records) and records[index].start < end:
                record = records[index]
                low, high = max(record.start, position), min(record.end, end)
                if low < high:
                    crcs[index] = zlib.crc32(view[low - position : high - position], crcs[index])
                if record.end <= end and index == first:
                    first += 1
                index += 1
            position = end
    for record, crc in zip(records, crcs, strict=True):
        if crc != record.crc:
            raise CheckpointError(
                f"{path} is corrupt: record {record.name} does not match its CRC-32 checksum (expected "
                f"{record.crc:08x}, read {crc:08x}), so bytes changed after it was written; expected "
                f"{EXPECTED_CHECKPOINT}. Download it again."
            )
