"""The extraction itself: records -> pieces -> batches -> shards, split across processes by shard."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from ..io.errors import InputError
from ..io.fasta import read_fasta
from ..pipelines.release import ReleaseModel
from .batching import token_batches
from .compute import PAIRWISE, Request, check_request, combine_windows, run_pieces, summarise
from .records import check_records, split_windows
from .shards import (
    FORMAT,
    check_manifest,
    remove_stale,
    shard_ids,
    shard_name,
    write_manifest,
    write_shard,
    write_tables,
)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _process_group() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment (`accelerate launch`, `torchrun`); (0, 1) alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return int(os.environ.get("RANK", "0")), world


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()


def _device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _layers(requested: list, total: int) -> tuple[int, ...]:
    layers = []
    for value in (item for entry in requested for item in str(entry).split(",") if item):
        layer = int(value)
        layer = total + 1 + layer if layer < 0 else layer
        if not 0 <= layer <= total:
            raise InputError(f"--layers {value}: the model has layers 0 (embeddings) to {total}")
        layers.append(layer)
    return tuple(dict.fromkeys(layers))


def _check_window(config, limit: int | None, nmers: int, include) -> None:
    if (config.window is None) != (config.stride is None):
        raise InputError("--window and --stride go together")
    if config.window is None:
        return
    window, stride = int(config.window), int(config.stride)
    if nmers != 1:
        raise InputError("--window needs a tokenizer with one token per nucleotide")
    if any(name in include for name in PAIRWISE):
        raise InputError("--window: contacts and structure need each sequence whole; drop them or --window")
    if not 0 < stride <= window or (limit is not None and window > limit):
        raise InputError(f"--window {window} --stride {stride}: need 0 < stride <= window <= {limit}")


def extract(model_name: str, input_path: Path, output: Path, config) -> int:
    started = time.perf_counter()
    rank, world = _process_group()
    device = _device(config.device)
    if config.dtype not in DTYPES:
        raise InputError(f"--dtype {config.dtype}: choose one of {', '.join(DTYPES)}")
    tokenizer = AutoTokenizer.from_pretrained(model_name, strict=bool(config.strict))
    model = ReleaseModel.from_pretrained(model_name, dtype=DTYPES[config.dtype]).eval().to(device)
    include = tuple(dict.fromkeys(config.include))
    request = Request(include, _layers(config.layers, model.config.num_hidden_layers))
    wrap = tokenizer.build_inputs_with_special_tokens
    check_request(model, request, has_cls=bool(getattr(tokenizer, "add_cls", True)))
    limit = None
    if model.config.position_embedding_type == "absolute":
        limit = model.config.max_position_embeddings - len(wrap([]))
    _check_window(config, limit, getattr(tokenizer, "nmers", 1), include)

    def tokenize(sequence: str) -> list[int]:
        return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(sequence))

    records, tokens, skipped = check_records(read_fasta(input_path), tokenize, fail=bool(config.fail_on_bad))
    if not records:
        raise InputError(f"{input_path}: no record to extract ({len(skipped)} skipped)")
    pieces = split_windows(records, tokens, wrap, limit, config.window, config.stride)
    run_pieces(model, pieces[:1], request, tokenizer.pad_token_id, device)  # refuse what the model cannot give now
    lengths = [len(ids) for ids in tokens]
    fingerprint = hashlib.sha256("".join(f">{r.id}\n{r.sequence}\n" for r in records).encode()).hexdigest()
    manifest = {
        "format": FORMAT,
        "model": str(Path(model_name).resolve()) if Path(model_name).exists() else model_name,
        "input_sha256": fingerprint,
        "records": len(records),
        "shard_size": int(config.shard_size),
        "include": list(include),
        "layers": list(request.layers),
        "window": config.window,
        "stride": config.stride,
        "dtype": config.dtype,
        "strict": bool(config.strict),
    }
    if rank == 0 and not check_manifest(output, manifest):
        write_manifest(output, manifest)
    _barrier(world)
    check_manifest(output, manifest)

    size = int(config.shard_size)
    mine = [k for k in range((len(records) + size - 1) // size) if k % world == rank]
    remove_stale(output, mine)
    by_record: dict[int, list] = {}
    for piece in pieces:
        by_record.setdefault(piece.record, []).append(piece)
    done = tokens_done = resumed = 0
    total = sum(min(size, len(records) - k * size) for k in mine)
    bar = tqdm(
        total=total,
        unit="seq",
        desc=f"extract [{rank}/{world}]" if world > 1 else "extract",
        position=rank,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for shard in mine:
        span = range(shard * size, min((shard + 1) * size, len(records)))
        ids = [records[k].id for k in span]
        path = output / shard_name(shard)
        if shard_ids(path) == ids:
            resumed += 1
            bar.update(len(ids))
            continue
        work = [piece for k in span for piece in by_record[k]]
        outputs: dict[int, list] = {k: [] for k in span}
        for batch in token_batches([len(p.tokens) for p in work], int(config.max_tokens), config.batch_size):
            batch_pieces = [work[k] for k in batch]
            for piece, result in zip(
                batch_pieces, run_pieces(model, batch_pieces, request, tokenizer.pad_token_id, device), strict=True
            ):
                outputs[piece.record].append((piece.start, result))
            tokens_done += sum(len(p.tokens) for p in batch_pieces)
            bar.set_postfix(tokens=tokens_done)
        rows = [
            summarise(combine_windows(sorted(outputs[k], key=lambda part: part[0]), lengths[k]), request) for k in span
        ]
        write_shard(path, ids, [lengths[k] for k in span], rows)
        done += len(ids)
        bar.update(len(ids))
    bar.close()
    _barrier(world)
    if rank == 0:
        write_tables(output, records, size, lengths, skipped)
    seconds = time.perf_counter() - started
    reasons = Counter(s.reason.split(" (")[0] if s.reason.startswith("duplicate") else s.reason for s in skipped)
    why = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
    print(
        (f"[rank {rank}/{world}] " if world > 1 else "")
        + f"extracted {done} sequences ({tokens_done} tokens) in {seconds:.1f} s, "
        f"{tokens_done / seconds:,.0f} tokens/s; {resumed} shard(s) already done; "
        + (f"{len(skipped)} skipped ({why}), see {output / 'skipped.tsv'}" if skipped else "0 skipped")
        + f"; output {output}",
        file=sys.stderr,
    )
    if world > 1:
        torch.distributed.destroy_process_group()
    return 0
