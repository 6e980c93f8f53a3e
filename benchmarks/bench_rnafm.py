"""Forward latency, peak memory and conversion time of RNA-FM at the published size: MultiMolecule vs `rna-fm`.

The original implementation (`rna-fm`, import name `fm`) builds the published architecture (12 layers, width
640, 20 heads, FFN 5120, 1024 positions) with random weights; the file is saved the way the release is saved
(fairseq layout) and converted by MultiMolecule's converter, so both models hold the same weights. Every
(implementation, batch size, length) runs in a fresh subprocess, which loads the model, times forward passes
under `torch.inference_mode()` in float32 and records its peak RSS growth; the original's last hidden state is
kept so that our runs report max |difference| against it.

    python benchmarks/bench_rnafm.py            # the full run (about 10 minutes on 2 CPU cores)
    python benchmarks/bench_rnafm.py --quick    # a smoke run (1-2 minutes)

See benchmarks/README.md for what the columns mean.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import RESULT_PREFIX, PeakMemory, cores, fmt, loadavg, machine, quartiles, run_command, status_kib

IMPLEMENTATIONS = ("fm", "sdpa", "eager")
LABELS = {"fm": "rna-fm (original)", "sdpa": "ours, SDPA", "eager": "ours, eager"}
# the published RNA-FM (`RNA-FM_pretrained.pth`): fairseq arguments of the release
PUBLISHED = {"layers": 12, "embed_dim": 640, "ffn_embed_dim": 5120, "attention_heads": 20, "max_positions": 1024}
CHECKPOINT_NAME = "RNA-FM_pretrained.pth"  # fm's loader keys on the name ("RNA-FM": no contact-regression file)


# ----------------------------------------------------------------------------------------------------------------
# measurement helpers (used in the worker subprocesses)


def sequences(batch: int, length: int, seed: int, padded: bool) -> list[str]:
    """`batch` random RNA sequences of `length - 2` nucleotides (`length` tokens with <cls> and <eos>); with
    `padded`, the lengths fall evenly to about half so that the batch is padded (the first stays the longest)."""
    generator = random.Random(seed * 1_000_003 + batch * 10_007 + length)
    longest = length - 2
    sizes = [longest - (index * longest) // (2 * batch) if padded else longest for index in range(batch)]
    return ["".join(generator.choice("ACGU") for _ in range(size)) for size in sizes]


def _touch(model) -> None:
    """Read every parameter once, so pages of a lazily loaded (mmapped) file are resident before the baseline."""
    import torch

    with torch.inference_mode():
        for parameter in model.parameters():
            parameter.sum()


# ----------------------------------------------------------------------------------------------------------------
# workers


def worker_prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Build fm's model at the published size, move every tensor off its initialisation, save it as released."""
    from argparse import Namespace

    import fm
    import torch

    args = Namespace(
        _name="ESM-1b",
        arch="roberta_large",
        encoder_layers=PUBLISHED["layers"],
        encoder_embed_dim=PUBLISHED["embed_dim"],
        encoder_ffn_embed_dim=PUBLISHED["ffn_embed_dim"],
        encoder_attention_heads=PUBLISHED["attention_heads"],
        max_positions=PUBLISHED["max_positions"],
    )
    alphabet = fm.Alphabet.from_architecture("roberta_large", "rna")
    model_args = Namespace(**PUBLISHED, arch="roberta_large", emb_layer_norm_before=True)
    model = fm.BioBertModel(model_args, alphabet).eval()
    generator = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():  # biases and norms off 0 / 1, weights perturbed at BERT's initialisation scale
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    # fairseq's layout; state_dict() keeps embed_tokens and lm_head.weight in one storage, as the release does
    state = {f"encoder.encoder.{key}": value for key, value in model.state_dict().items()}
    torch.save({"args": args, "model": state}, spec["checkpoint"])
    return {
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "file_mib": os.path.getsize(spec["checkpoint"]) / 2**20,
    }


def worker_convert(spec: dict[str, Any]) -> dict[str, Any]:
    """load + convert + save through the Python API; then, for a breakdown, the steps convert() is made of."""
    start = time.perf_counter()
    import torch
    from multimolecule.converters import get_converter

    from multimolecule.convert.checkpoint import load_checkpoint
    from multimolecule.convert.digest import file_sha256

    torch.set_num_threads(spec["threads"])
    result: dict[str, Any] = {"import": time.perf_counter() - start}
    converter = get_converter("rnafm")
    with PeakMemory() as memory:
        start = time.perf_counter()
        conversion = converter.convert(spec["checkpoint"])
        result["convert"] = time.perf_counter() - start
        start = time.perf_counter()
        conversion.model.save_pretrained(spec["output"])
        conversion.tokenizer.save_pretrained(spec["output"])
        result["save"] = time.perf_counter() - start
    result["total"] = result["convert"] + result["save"]
    result["peak_growth_mib"] = memory.growth_mib
    result["memory_method"] = memory.method
    # the parts of convert(), each timed on its own afterwards (page cache warm)
    path = Path(spec["checkpoint"])
    start = time.perf_counter()
    file_sha256(path)
    result["part: sha256 of the file"] = time.perf_counter() - start
    start = time.perf_counter()
    content = load_checkpoint(path, converter.extra_globals)
    result["part: load_checkpoint"] = time.perf_counter() - start
    del content
    start = time.perf_counter()
    type(conversion.model)(conversion.model.config)
    result["part: build the model (random init)"] = time.perf_counter() - start
    return result


def worker_forward(spec: dict[str, Any]) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(spec["threads"])
    impl, batch, length = spec["impl"], spec["batch"], spec["length"]
    texts = sequences(batch, length, spec["seed"], spec["padded"])
    if impl == "fm":
        from argparse import Namespace

        import fm

        rss_imports_kib = status_kib("VmRSS") or 0
        start = time.perf_counter()
        with torch.serialization.safe_globals([Namespace]):
            model, alphabet = fm.pretrained.load_model_and_alphabet_local(spec["checkpoint"], theme="rna")
        model.eval()
        converter = alphabet.get_batch_converter()
        tokens = converter([(str(index), text) for index, text in enumerate(texts)])[2]
        mask = tokens.ne(alphabet.padding_idx)
        layers = model.args.layers
        inputs, warm_inputs = tokens, tokens[:1]

        def call(tokens):
            return model(tokens, repr_layers=[layers])["representations"][layers]

    else:
        import multimolecule

        rss_imports_kib = status_kib("VmRSS") or 0
        start = time.perf_counter()
        model = multimolecule.RnaFmForMaskedLM.from_pretrained(
            spec["model_dir"], attn_implementation=impl, dtype=torch.float32
        ).eval()
        if model.config._attn_implementation != impl:
            raise RuntimeError(f"asked for {impl} attention, got {model.config._attn_implementation}")
        tokenizer = multimolecule.RnaTokenizer.from_pretrained(spec["model_dir"])
        inputs = dict(tokenizer(texts, padding=True, return_tensors="pt"))
        mask = inputs["attention_mask"].bool()
        warm_inputs = {key: value[:1] for key, value in inputs.items()}
        captured: list[torch.Tensor] = []
        model.model.register_forward_hook(lambda module, args, output: captured.append(output.last_hidden_state))

        def call(inputs):
            model(**inputs)  # the masked-LM head runs too, as fm's forward always computes logits
            return captured.pop()

    load_seconds = time.perf_counter() - start
    if mask.shape != (batch, length):
        raise RuntimeError(f"{impl}: tokenized to {tuple(mask.shape)}, expected {(batch, length)}")
    _touch(model)

    large = batch * length >= spec["large_tokens"]
    times: list[float] = []
    cpu_times: list[float] = []
    first = None
    with torch.inference_mode(), PeakMemory() as memory:
        warm_up_spent, warm_up_calls = 0.0, 0
        while warm_up_calls < 1 or (not large and warm_up_spent < spec["warmup_seconds"] and warm_up_calls < 5):
            begin = time.perf_counter()
            call(warm_inputs if large else inputs)
            elapsed = time.perf_counter() - begin
            warm_up_spent += elapsed
            first = elapsed if first is None else first
            warm_up_calls += 1
        if large:
            repeats = spec["large_repeats"]
        else:
            per_call = warm_up_spent / warm_up_calls
            repeats = min(max(math.ceil(spec["budget"] / per_call), spec["min_repeats"]), spec["max_repeats"])
        hidden = None
        threads = torch.get_num_threads()
        discarded: list[tuple[float, float]] = []
        while len(times) < repeats and len(discarded) <= spec["max_discards"]:
            hidden = None  # free the previous output before the next call
            begin, begin_cpu = time.perf_counter(), time.process_time()
            hidden = call(inputs)
            elapsed, cpu = time.perf_counter() - begin, time.process_time() - begin_cpu
            if cpu / elapsed / threads < spec["min_cpu_use"]:  # descheduled: the machine was busy
                discarded.append((elapsed, cpu))
            else:
                times.append(elapsed)
                cpu_times.append(cpu)
        contended = not times
        if contended:  # no call had its cores: report them all, flagged
            times, cpu_times = [t for t, _ in discarded], [c for _, c in discarded]

    result: dict[str, Any] = {
        "impl": impl,
        "batch": batch,
        "length": length,
        "padded": spec["padded"],
        "times": times,
        "cpu_times": cpu_times,
        "discarded": len(discarded) if not contended else 0,
        "contended": contended,
        "first_call": None if large else first,
        "warm_up": f"1 call at batch 1 x {length}" if large else f"{warm_up_calls} call(s) at full shape",
        "load_seconds": load_seconds,
        "cpu_use": sum(cpu_times) / sum(times) / threads,
        "rss_after_imports_mib": rss_imports_kib / 1024,
        "rss_after_load_mib": memory.baseline_kib / 1024,
        "peak_growth_mib": memory.growth_mib,
        "memory_method": memory.method,
        "max_abs_diff": None,
        "max_abs_value": float(hidden[mask].abs().max()),
    }
    reference = Path(spec["reference"])
    if impl == "fm":
        torch.save({"hidden": hidden, "mask": mask}, reference)
    elif reference.exists():
        expected = torch.load(reference)
        if not torch.equal(expected["mask"], mask):
            raise RuntimeError("fm and ours padded the batch differently")
        result["max_abs_diff"] = float((hidden - expected["hidden"])[mask].abs().max())
    return result


WORKERS = {"prepare": worker_prepare, "convert": worker_convert, "forward": worker_forward}


# ----------------------------------------------------------------------------------------------------------------
# the parent: runs every worker in a fresh subprocess


def run_child(kind: str, spec: dict[str, Any], timeout: float) -> tuple[dict[str, Any], float, int]:
    """(the worker's result, wall seconds, the child's peak RSS in KiB from wait4)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--spec", json.dumps(spec)]
    return run_command(command, timeout, parse=True)


def forward_table(results: list[dict[str, Any]]) -> str:
    fm_median = {
        (r["batch"], r["length"]): statistics.median(r["times"]) for r in results if r["impl"] == "fm" and r["times"]
    }
    header = (
        "| batch | tokens | implementation | median ms | IQR ms | n (dropped) | first call ms | speed-up vs fm "
        "| tokens/s | CPU use | CPU ms per call | RSS imports + model MiB | peak RSS growth MiB | max abs diff vs fm |"
    )
    rows = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in results:
        q1, median, q3 = quartiles(r["times"])
        reference = fm_median.get((r["batch"], r["length"]))
        speed_up = f"{reference / median:.2f}x" if reference else "—"
        diff = "—" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        rows.append(
            f"| {r['batch']} | {r['length']} | {LABELS[r['impl']]}{' (contended)' if r['contended'] else ''} "
            f"| {fmt(median * 1e3)} | {fmt((q3 - q1) * 1e3)} | {len(r['times'])} ({r['discarded']}) "
            f"| {fmt(r['first_call'] * 1e3 if r['first_call'] is not None else None)} "
            f"| {speed_up} | {fmt(r['batch'] * r['length'] / median, 0)} | {r['cpu_use']:.0%} "
            f"| {fmt(statistics.median(r['cpu_times']) * 1e3)} "
            f"| {r['rss_after_imports_mib']:.0f} + {r['rss_after_load_mib'] - r['rss_after_imports_mib']:.0f} "
            f"| {fmt(r['peak_growth_mib'], 0)} | {diff} |"
        )
    return "\n".join(rows)


def conversion_table(runs: list[dict[str, Any]], cli: dict[str, Any] | None) -> str:
    rows = ["| step | median s | min s | max s | n |", "|---|---|---|---|---|"]
    for key in runs[0]:
        if isinstance(runs[0][key], str) or key == "peak_growth_mib":
            continue
        values = [run[key] for run in runs]
        name = {
            "import": "import multimolecule + converters (not part of the total)",
            "convert": "`get_converter('rnafm').convert(path)` (sha256, load, map, build, load_state_dict)",
            "save": "`model.save_pretrained` + `tokenizer.save_pretrained`",
            "total": "**load + convert + save**",
        }.get(key, key)
        rows.append(
            f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | {len(values)} |"
        )
    growth = [run["peak_growth_mib"] for run in runs]
    rows.append(f"| peak RSS growth of load + convert + save (MiB) | {statistics.median(growth):.0f} | "
                f"{min(growth):.0f} | {max(growth):.0f} | {len(growth)} |")  # fmt: skip
    if cli is not None:
        rows.append(
            f"| CLI end to end: `python -m multimolecule.convert rnafm --checkpoint PATH --output DIR --no-verify` "
            f"(process start, convert, save, validation incl. live fm parity, model card) | {cli['wall']:.2f} | "
            f"{cli['wall']:.2f} | {cli['wall']:.2f} | 1 |"
        )
        if cli["peak_kib"]:
            rows.append(f"| CLI process peak RSS (MiB) | {cli['peak_kib'] / 1024:.0f} | | | 1 |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 1, lengths 64 and 256, short budget")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default: 1 8 (--quick: 1)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="tokens incl. <cls>/<eos>; 64 256 1024")
    parser.add_argument("--impls", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS))
    parser.add_argument("--threads", type=int, default=cores(), help="torch.set_num_threads (default: all cores)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed calls per configuration (6)")
    parser.add_argument("--min-repeats", type=int, default=3)
    parser.add_argument("--max-repeats", type=int, default=30)
    parser.add_argument("--warmup-seconds", type=float, default=1.0, help="warm up for at least this (max 5 calls)")
    parser.add_argument(
        "--large-tokens",
        type=int,
        default=16384,
        help="configurations of at least batch x length tokens warm up once at batch 1 and run --large-repeats",
    )
    parser.add_argument("--large-repeats", type=int, default=3)
    parser.add_argument(
        "--min-cpu-use",
        type=float,
        default=0.9,
        help="drop (and redo) a timed call whose CPU time / wall / threads is below this: the process was "
        "descheduled by other load (0 keeps every call)",
    )
    parser.add_argument("--max-discards", type=int, default=3, help="calls dropped per configuration at most")
    parser.add_argument("--retries", type=int, default=2, help="reruns of a configuration none of whose calls had "
                        "its cores (a fresh process, after --retry-wait seconds)")  # fmt: skip
    parser.add_argument("--retry-wait", type=float, default=30.0)
    parser.add_argument("--padded", action="store_true", help="batches of unequal lengths (padding + mask path)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conversion-repeats", type=int, default=None, help="fresh processes (default 3; quick 1)")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI conversion timing")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the checkpoint and outputs here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the report to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw measurements to this file")
    parser.add_argument("--child-timeout", type=float, default=1800)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.batch_sizes = args.batch_sizes or ([1] if quick else [1, 8])
    args.lengths = args.lengths or ([64, 256] if quick else [64, 256, 1024])
    args.budget = args.budget if args.budget is not None else (2.0 if quick else 6.0)
    if args.conversion_repeats is None:
        args.conversion_repeats = 1 if quick else 3
    args.no_cli = args.no_cli or quick
    if any(length < 3 or length > PUBLISHED["max_positions"] for length in args.lengths):
        parser.error(f"lengths are tokens incl. <cls> and <eos>: between 3 and {PUBLISHED['max_positions']}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = WORKERS[args.worker](json.loads(args.spec))
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    began = time.perf_counter()
    load_before = loadavg()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_rnafm_"))
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / CHECKPOINT_NAME
    model_dir = workdir / "converted"
    try:
        say(f"building the published-size fm model in {workdir}")
        prepared, _, _ = run_child("prepare", {"seed": args.seed, "checkpoint": str(checkpoint)}, args.child_timeout)
        say(f"  {prepared['parameters']:,} parameters, {prepared['file_mib']:.0f} MiB file")

        conversions = []
        for index in range(args.conversion_repeats):
            output = model_dir if index == 0 else workdir / f"converted_{index}"
            shutil.rmtree(output, ignore_errors=True)
            spec = {"checkpoint": str(checkpoint), "output": str(output), "threads": args.threads}
            result, _, _ = run_child("convert", spec, args.child_timeout)
            conversions.append(result)
            say(f"conversion {index + 1}/{args.conversion_repeats}: load + convert + save {result['total']:.2f} s")
            if index:
                shutil.rmtree(output, ignore_errors=True)
        cli = None
        if not args.no_cli:
            output = workdir / "converted_cli"
            shutil.rmtree(output, ignore_errors=True)
            command = [sys.executable, "-m", "multimolecule.convert", "rnafm", "--checkpoint", str(checkpoint)]
            _, wall, peak_kib = run_command([*command, "--output", str(output), "--no-verify"], args.child_timeout)
            cli = {"wall": wall, "peak_kib": peak_kib}
            say(f"CLI conversion end to end: {wall:.2f} s")
            shutil.rmtree(output, ignore_errors=True)

        results = []
        order = [impl for impl in IMPLEMENTATIONS if impl in args.impls]  # fm first: it writes the reference
        for batch in args.batch_sizes:
            for length in args.lengths:
                reference = workdir / f"reference_b{batch}_l{length}.pt"
                reference.unlink(missing_ok=True)
                for impl in order:
                    spec = {
                        "impl": impl,
                        "batch": batch,
                        "length": length,
                        "seed": args.seed,
                        "padded": args.padded,
                        "threads": args.threads,
                        "budget": args.budget,
                        "min_repeats": args.min_repeats,
                        "max_repeats": args.max_repeats,
                        "warmup_seconds": args.warmup_seconds,
                        "large_tokens": args.large_tokens,
                        "large_repeats": args.large_repeats,
                        "min_cpu_use": args.min_cpu_use,
                        "max_discards": args.max_discards,
                        "checkpoint": str(checkpoint),
                        "model_dir": str(model_dir),
                        "reference": str(reference),
                    }
                    result, wall, _ = run_child("forward", spec, args.child_timeout)
                    for _ in range(args.retries):  # the machine was busy throughout: wait, then run it again
                        if not result["contended"]:
                            break
                        say(f"batch {batch} x {length} {LABELS[impl]}: contended; again in {args.retry_wait:g} s")
                        time.sleep(args.retry_wait)
                        again, wall, _ = run_child("forward", spec, args.child_timeout)
                        result = again if again["cpu_use"] >= result["cpu_use"] else result
                    result["process_wall"] = wall
                    results.append(result)
                    median = statistics.median(result["times"])
                    diff = result["max_abs_diff"]
                    result["loadavg"] = loadavg()
                    say(
                        f"batch {batch:>2} x {length:>4} tokens  {LABELS[impl]:<18} median {median * 1e3:10.1f} ms "
                        f"(n={len(result['times'])}, dropped {result['discarded']}, "
                        f"CPU use {result['cpu_use']:.0%}, load {result['loadavg']})  "
                        f"peak +{result['peak_growth_mib']:.0f} MiB"
                        + (f"  max|diff| {diff:.1e}" if diff is not None else "")
                    )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    info = machine()
    methods = sorted({r["memory_method"] for r in results} | {c["memory_method"] for c in conversions})
    report = [
        "# RNA-FM at the published size: MultiMolecule vs rna-fm (CPU)",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in info.items()],
        f"- torch threads: {args.threads}",
        f"- load average (1, 5, 15 min) at the start: {load_before}; at the end: {loadavg()}",
        "",
        "## Forward pass",
        "",
        f"{prepared['parameters']:,} parameters, float32, `torch.inference_mode()`; "
        + ("batches padded to unequal lengths; " if args.padded else "every sequence of a batch the same length; ")
        + "tokens include <cls> and <eos>. Both models run their masked-LM head. "
        f"Timed calls per configuration: about {args.budget:g} s worth, {args.min_repeats} to {args.max_repeats}, "
        f"after at least {args.warmup_seconds:g} s of warm-up; configurations of {args.large_tokens} tokens or more "
        f"warm up once at batch 1 and time {args.large_repeats} calls. Memory: {', '.join(methods)}, in a fresh "
        "process per configuration, relative to the RSS after loading the model and reading every parameter. "
        f"CPU use: process CPU time / wall time / threads over the timed calls; a call below {args.min_cpu_use:.0%} "
        f"(the process did not get its cores: other load on the machine) is dropped and redone, at most "
        f"{args.max_discards} times per row (`n (dropped)`); a row none of whose calls had its cores is marked "
        "*contended* and reports them all. CPU ms per call: median process CPU time of a call (all threads), "
        "the work done, which other load inflates much less than the wall time.",
        "",
        forward_table(results),
        "",
        "## Conversion of the published-size file",
        "",
        f"{prepared['file_mib']:.0f} MiB fairseq checkpoint, each run in a fresh process (page cache warm).",
        "",
        conversion_table(conversions, cli),
        "",
        f"Total benchmark wall time: {(time.perf_counter() - began) / 60:.1f} min.",
    ]
    text = "\n".join(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.json:
        raw = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}, "prepared": prepared}
        raw.update({"forward": results, "conversion": conversions, "cli": cli})
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
