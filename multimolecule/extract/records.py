"""Which FASTA records are extracted, which are skipped and why, and how long ones are cut into windows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..io.errors import InputError
from ..io.fasta import Record


@dataclass(frozen=True)
class Skipped:
    id: str
    line: int
    reason: str


@dataclass(frozen=True)
class Piece:
    """A stretch of one record the model sees at once: the whole record, or one window of it."""

    record: int  # index among the kept records
    start: int  # first token of the record this piece covers
    tokens: list[int]  # token ids, special tokens included


def check_records(
    records: Iterable[Record], tokenize, fail: bool
) -> tuple[list[Record], list[list[int]], list[Skipped]]:
    """Kept records with their token ids (no special tokens), and the skipped ones.

    Skipped: an empty sequence, an id seen before (the first keeps it), and a sequence the tokenizer refuses
    (with a strict tokenizer, a character outside the alphabet). With `fail`, the first raises `InputError`.
    """
    kept, tokens, skipped, seen = [], [], [], {}
    for record in records:
        reason = None
        if not record.sequence:
            reason = "empty sequence"
        elif record.id in seen:
            reason = f"duplicate id (first at line {seen[record.id]})"
        else:
            try:
                ids = tokenize(record.sequence)
            except ValueError as error:  # strict alphabet, codon length, ...
                reason = str(error)
        if reason is None:
            seen[record.id] = record.line
            kept.append(record)
            tokens.append(ids)
        elif fail:
            raise InputError(f"record {record.id!r} (line {record.line}): {reason}")
        else:
            skipped.append(Skipped(record.id, record.line, reason))
    return kept, tokens, skipped


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of windows of `window` tokens every `stride` tokens; the last one ends at the sequence's end."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def split_windows(
    records: list[Record], tokens: list[list[int]], wrap, limit: int | None, window: int | None, stride: int | None
) -> list[Piece]:
    """One piece per record, or with `window` one per window of records longer than `limit` tokens.

    Without `window`, a record longer than `limit` is an `InputError` naming it (and how many more there are).
    """
    pieces, too_long = [], []
    for index, ids in enumerate(tokens):
        if limit is None or len(ids) <= limit:
            pieces.append(Piece(index, 0, wrap(ids)))
        elif window is None:
            too_long.append(index)
        else:
            pieces.extend(
                Piece(index, start, wrap(ids[start : start + window]))
                for start in window_starts(len(ids), window, stride)
            )
    if too_long:
        first = records[too_long[0]]
        raise InputError(
            f"record {first.id!r} (line {first.line}) has {len(tokens[too_long[0]])} tokens but the model accepts "
            f"{limit}"
            + (f" ({len(too_long) - 1} more records are too long)" if len(too_long) > 1 else "")
            + "; use --window W --stride S to cut long sequences into windows"
        )
    return pieces
