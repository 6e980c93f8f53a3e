"""Extraction throughput: batches sorted by length vs the file's own order, at the same batch size.

    python benchmarks/bench_extract.py [--sequences 400] [--batch-size 16] [--layers 6 --hidden 320] [--markdown F]

A FASTA-like set of random sequences with a realistic length spread (20 to 1,000 nt, log-normal, most under
200) goes through the extraction code path (`token_batches` + `run_pieces`, mean and per-token states) of a
random-weight RNA-FM (the published 12 x 640 with `--layers 12 --hidden 640`). Reports tokens per second
(real tokens, special tokens included) and the share of computed positions that is padding.
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from pathlib import Path

import torch

from multimolecule import RnaFmConfig, RnaFmForMaskedLM
from multimolecule.extract.batching import padding_fraction, token_batches
from multimolecule.extract.compute import Request, run_pieces
from multimolecule.extract.records import Piece


def lengths(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [min(1000, max(20, int(rng.lognormvariate(4.7, 0.7)))) for _ in range(count)]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = RnaFmConfig(
        num_hidden_layers=args.layers,
        hidden_size=args.hidden,
        num_attention_heads=args.hidden // 32,
        intermediate_size=4 * args.hidden,
    )
    model = RnaFmForMaskedLM(config).eval()
    sizes = lengths(args.sequences, args.seed)
    rng = random.Random(args.seed)
    pieces = [Piece(k, 0, [1] + [rng.randint(6, 9) for _ in range(n)] + [2]) for k, n in enumerate(sizes)]
    request = Request(("mean", "per-token"), (args.layers,))
    run_pieces(model, pieces[:2], request, 0, torch.device("cpu"))  # warm-up
    rows = []
    for name, sort in (("sorted by length", True), ("file order", False)):
        widths = [len(p.tokens) for p in pieces]
        batches = token_batches(widths, max_tokens=10**9, max_sequences=args.batch_size, sort=sort)
        started = time.perf_counter()
        for batch in batches:
            run_pieces(model, [pieces[k] for k in batch], request, 0, torch.device("cpu"))
        seconds = time.perf_counter() - started
        rows.append((name, len(batches), padding_fraction(widths, batches), sum(widths) / seconds, seconds))
    ordered = sorted(sizes)
    report = [
        f"CPU: {cpu_model()}, {torch.get_num_threads()} threads, capability "
        f"`{torch.backends.cpu.get_cpu_capability()}`, torch {torch.__version__}",
        f"Model: random-weight RNA-FM, {args.layers} layers x {args.hidden}, float32. Input: {args.sequences} "
        f"sequences, {min(sizes)}-{max(sizes)} nt (median {ordered[len(ordered) // 2]}, "
        f"{sum(n < 200 for n in sizes) / len(sizes):.0%} under 200), {sum(sizes):,} nt; batch size {args.batch_size}.",
        "",
        "| batching | batches | padding | tokens/s | seconds |",
        "|---|---|---|---|---|",
        *(f"| {name} | {count} | {pad:.1%} | {rate:,.0f} | {sec:.1f} |" for name, count, pad, rate, sec in rows),
        "",
        f"Speed-up of sorted batching: {rows[0][3] / rows[1][3]:.2f}x",
    ]
    text = "\n".join(report)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    main()
