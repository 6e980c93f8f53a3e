"""FASTA reading, plain or gzipped: records with the line they start on, so errors can point at them."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Record:
    """One FASTA record: `id` is the header up to the first whitespace, `line` the header's line number."""

    id: str
    sequence: str
    line: int
    description: str = ""


def _open_binary(path: Path) -> io.BufferedIOBase:
    """Plain or gzipped, decided by the file's first bytes rather than its name; lines are decoded one by one so
    an undecodable byte is reported on its own line."""
    with open(path, "rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def read_fasta(path: str | Path) -> Iterator[Record]:
    """Yield the records of a FASTA file in order.

    Sequence lines are joined with whitespace removed; `;` comment lines are skipped. Text before the first
    header, a header without an id, undecodable bytes or a truncated gzip stream raise `InputError` naming the
    file and line. Empty sequences are yielded (as "") so the caller decides what they mean.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    header: tuple[str, str, int] | None = None
    chunks: list[str] = []
    number = 0
    try:
        with _open_binary(path) as handle:
            for number, raw in enumerate(handle, start=1):
                text = raw.decode("utf-8").strip()
                if text.startswith(">"):
                    if header is not None:
                        yield Record(header[0], "".join(chunks), header[2], header[1])
                    name, _, description = text[1:].strip().partition(" ")
                    if not name:
                        raise InputError(f"{path}, line {number}: a header without a record id")
                    header, chunks = (name, description.strip(), number), []
                elif not text or text.startswith(";"):
                    continue
                elif header is None:
                    raise InputError(f"{path}, line {number}: sequence text before the first '>' header")
                else:
                    chunks.append("".join(text.split()))
    except UnicodeDecodeError as error:
        raise InputError(f"{path}, line {number}: not UTF-8 text ({error.reason})") from None
    except (EOFError, gzip.BadGzipFile, OSError) as error:
        raise InputError(f"{path}, after line {number}: unreadable compressed data ({error})") from None
    if header is not None:
        yield Record(header[0], "".join(chunks), header[2], header[1])
