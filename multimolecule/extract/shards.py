"""The output directory: safetensors shards a user reads without this library, written atomically, and the
manifest that lets a rerun resume.

    OUTPUT/manifest.json            settings and input fingerprint; a rerun with other settings is refused
    OUTPUT/shard-00000.safetensors  records [0, S) of the kept records, in input order; S = --shard-size
    OUTPUT/index.tsv                id, shard, row, tokens, line: where each record is (written last)
    OUTPUT/skipped.tsv              id, line, reason: records not extracted

In a shard, `mean.layer{L}` / `cls.layer{L}` are (rows, hidden); `per_token.layer{L}` is every row's tokens
concatenated, row r being `[token_offsets[r]:token_offsets[r + 1]]`; `contacts` / `structure` are every row's
(n, n) map flattened and concatenated, row r being `[pair_offsets[r]:pair_offsets[r + 1]].reshape(n, n)` with
n = `tokens[r]`. The shard's metadata holds `ids`, a JSON list of its record ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..io.errors import InputError

FORMAT = "multimolecule-extract/1"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def write_atomic(path: Path, write) -> None:
    """`write(temporary_path)`, then rename into place: a reader never sees a half-written file."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        os.chmod(temporary, 0o644)  # safetensors creates files readable by the owner only
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_shard(path: Path, ids: list[str], lengths: list[int], rows: list[dict[str, torch.Tensor]]) -> None:
    """Stack fixed-size outputs, concatenate ragged ones (per-token states, flattened pair maps) with offsets."""
    tensors = {"tokens": torch.tensor(lengths, dtype=torch.long)}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key.startswith(("mean.", "cls.")):
            tensors[key] = torch.stack(values)
            continue
        pairwise = key in ("contacts", "structure")
        tensors[key] = torch.cat([value.reshape(-1) if pairwise else value for value in values])
        sizes = [value.numel() if pairwise else value.shape[0] for value in values]
        tensors["pair_offsets" if pairwise else "token_offsets"] = torch.tensor([0, *sizes]).cumsum(0)
    metadata = {"format": FORMAT, "ids": json.dumps(ids)}
    write_atomic(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


def shard_ids(path: Path) -> list[str] | None:
    """The record ids a complete shard holds, or None if there is no readable shard at `path`."""
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
        return json.loads(metadata["ids"]) if metadata.get("format") == FORMAT else None
    except (OSError, KeyError, ValueError, RuntimeError):  # absent, or not a shard
        return None


def check_manifest(output: Path, manifest: dict) -> bool:
    """True when OUTPUT already holds this extraction (resume); False when empty. Another extraction, or a
    directory that is not one, raises `InputError`."""
    path = output / "manifest.json"
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = [key for key in manifest if previous.get(key) != manifest[key]]
        if changed:
            raise InputError(
                f"{output} holds an extraction with other settings ({', '.join(changed)} differ); "
                "choose another OUTPUT or remove it"
            )
        return True
    if output.exists() and any(output.iterdir()):
        raise InputError(f"{output} is not empty and holds no extraction (no manifest.json); choose another OUTPUT")
    return False


def write_manifest(output: Path, manifest: dict) -> None:
    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / "manifest.json", lambda t: t.write_text(json.dumps(manifest, indent=2) + "\n"))


def remove_stale(output: Path, shards: list[int]) -> None:
    """Temporary files a killed run left behind for these shards."""
    for index in shards:
        for stale in output.glob(f".{shard_name(index)}.tmp-*"):
            stale.unlink(missing_ok=True)


def write_tables(output: Path, records, shard_size: int, lengths: list[int], skipped) -> None:
    """index.tsv and skipped.tsv, from the kept and skipped records."""
    index = ["id\tshard\trow\ttokens\tline"]
    for position, record in enumerate(records):
        index.append(
            f"{record.id}\t{shard_name(position // shard_size)}\t{position % shard_size}\t"
            f"{lengths[position]}\t{record.line}"
        )
    rejected = ["id\tline\treason"] + [f"{s.id}\t{s.line}\t{s.reason}" for s in skipped]
    write_atomic(output / "skipped.tsv", lambda t: t.write_text("\n".join(rejected) + "\n", encoding="utf-8"))
    write_atomic(output / "index.tsv", lambda t: t.write_text("\n".join(index) + "\n", encoding="utf-8"))


def read_record(output: str | Path, record_id: str) -> dict[str, torch.Tensor]:
    """One record's outputs, by id, from an extraction directory (the inverse of the layout above)."""
    output = Path(output)
    rows = (output / "index.tsv").read_text(encoding="utf-8").splitlines()[1:]
    entry = next((line.split("\t") for line in rows if line.split("\t")[0] == record_id), None)
    if entry is None:
        raise KeyError(f"{record_id!r} is not in {output / 'index.tsv'}")
    shard, row = load_file(output / entry[1]), int(entry[2])
    result = {}
    n = int(shard["tokens"][row])
    for key, value in shard.items():
        if key.startswith(("mean.", "cls.")):
            result[key] = value[row]
        elif key.startswith("per_token."):
            offsets = shard["token_offsets"]
            result[key] = value[offsets[row] : offsets[row + 1]]
        elif key in ("contacts", "structure"):
            offsets = shard["pair_offsets"]
            result[key] = value[offsets[row] : offsets[row + 1]].reshape(n, n)
    return result
