"""Every family at its published size: the forward pass against its own matrix products alone.

Families are discovered from `multimolecule.converters.FAMILIES`, so a family added there is benchmarked without
touching this script. Each family runs in a fresh process: the published architecture (the config class's
defaults) with random weights, float32, `torch.inference_mode()`. Per shape (4 x 256 and 1 x the family's
maximum length, tokens including the special ones):

- forward / floor: the forward pass (default attention, SDPA) against the same pass's matrix products replayed
  alone (`matmul_floor`), interleaved call by call, the fastest call of each (the least disturbed by other
  load: a floor comparison wants the undisturbed cost); target <= 1.15;
- output_attentions (4 x 256): the eager path that returns every layer's weights, against its own floor, and
  its peak memory in layers' worth of (batch x heads x length x length) scores; `return_contacts` where the
  family has a contact head;
- bf16 (4 x 256): time fp32 / bf16 and the deviation of the last hidden state (max |difference|, cosine);
- padding (4 x 256): a batch of lengths 100/80/50/20 % of 256 padded, against the same sequences one by one,
  run packed (the default) and over the padded rectangle (`config.pack_padded_batches=False`); `--padding-only`
  measures this alone.

    python benchmarks/bench_families.py                  # every family (long: RiNALMo giga is 650 M parameters)
    python benchmarks/bench_families.py --families rnafm rnabert --repeats 3
    python benchmarks/bench_families.py --families rnafm splicebert rinalmo --padding-only
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from common import (
    LoadGuard,
    PeakMemory,
    add_worker_arguments,
    load_average,
    machine,
    run_worker,
    time_calls,
    worker_main,
)

PAD_FRACTIONS = (1.0, 0.8, 0.5, 0.2)
ALIGNMENT_ROWS = 16  # rows per alignment for families that read alignments
TARGET = 1.15


def _family_model(family: str):
    """The family's main architecture (its masked-LM model where it has one) at the published size."""
    from multimolecule.converters import family_variants

    variants = family_variants(family)
    converter = variants.get(family) or next(iter(variants.values()))
    return converter.architecture, converter.config_class()


def _inputs(config, batch: int, length: int, lengths: list[int] | None = None):
    """Random tokens, <cls> ... <eos>, padded to `length` after `lengths`; a family that reads alignments
    (`config.max_alignment_rows`, RNA-MSM) gets `ALIGNMENT_ROWS` rows per alignment."""
    import torch

    rows = (min(ALIGNMENT_ROWS, config.max_alignment_rows),) if hasattr(config, "max_alignment_rows") else ()
    generator = torch.Generator().manual_seed(batch * 7919 + length)
    ids = torch.randint(6, config.vocab_size, (batch, *rows, length), generator=generator)
    ids[..., 0] = config.bos_token_id
    mask = torch.ones(batch, *rows, length, dtype=torch.long)
    for row, size in enumerate(lengths or [length] * batch):
        ids[row, ..., size - 1] = config.eos_token_id
        ids[row, ..., size:] = config.pad_token_id
        mask[row, ..., size:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _versus_floor(model, inputs: dict, repeats: int, **kwargs) -> dict[str, Any]:
    """Forward and its matrix products, interleaved; the fastest calls, the ratio, and the forward's peak memory."""
    import torch
    from matmul_floor import Replay, record

    def forward() -> None:
        model(**inputs, **kwargs)

    with torch.inference_mode():
        replay = Replay(record(forward))
        forward()  # warm-up (first-touch, kernel selection)
        replay()
        with PeakMemory() as memory:
            forward()
        forwards, floors = [], []
        for _ in range(repeats):
            forwards.append(time_calls(forward, 1))
            floors.append(time_calls(replay, 1))
    forward_s = min(t for run in forwards for t in run["times"])  # the least disturbed call of each
    floor_s = min(t for run in floors for t in run["times"])
    return {
        "forward_s": forward_s,
        "floor_s": floor_s,
        "ratio": forward_s / floor_s,
        "gflops": replay.flops / 1e9,
        "peak_mib": memory.growth_mib,
        "cpu_use": min(run["cpu_use"] for run in forwards + floors),
        "loadavg": load_average()[0],
    }


def worker_family(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    architecture, config = _family_model(spec["family"])
    model = architecture(config).eval()
    repeats = spec["repeats"]
    result: dict[str, Any] = {
        "family": spec["family"],
        "class": architecture.__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "attention": model.config._attn_implementation,
        "cases": {},
    }
    if spec.get("padding_only"):
        result["padding"] = _padding(model, config, repeats)
        return result
    longest = config.max_position_embeddings
    for batch, length in ((4, 256), (1, longest)):
        result["cases"][f"{batch} x {length}"] = _versus_floor(model, _inputs(config, batch, length), repeats)

    inputs = _inputs(config, 4, 256)
    heads = config.num_attention_heads
    layer_scores_mib = 4 * heads * 256 * 256 * 4 / 2**20  # one layer's fp32 scores at 4 x 256
    case = _versus_floor(model, inputs, repeats, output_attentions=True)
    case["layers_of_scores"] = case["peak_mib"] / layer_scores_mib
    result["cases"]["4 x 256, output_attentions"] = case
    if getattr(model, "contact_head", None) is not None:
        case = _versus_floor(model, inputs, repeats, return_contacts=True)
        case["layers_of_scores"] = case["peak_mib"] / layer_scores_mib
        result["cases"]["4 x 256, return_contacts"] = case
    result["layer_scores_mib"] = layer_scores_mib

    result["padding"] = _padding(model, config, repeats)
    result["bf16"] = _bf16(model, inputs, repeats)
    return result


def _padding(model, config, repeats: int) -> dict[str, Any]:
    """A padded batch against the same sequences one by one (the tokens it really holds), with the layers run
    packed to the real tokens (`config.pack_padded_batches`, the default) and over the padded rectangle; the three
    interleaved call by call, the fastest call of each."""
    import torch

    lengths = [max(3, int(256 * fraction)) for fraction in PAD_FRACTIONS]
    padded = _inputs(config, len(lengths), 256, lengths)
    singles = [
        {key: value[row : row + 1, ..., :size] for key, value in padded.items()} for row, size in enumerate(lengths)
    ]

    def batch(packed: bool) -> None:
        model.config.pack_padded_batches = packed
        model(**padded)

    def one_by_one() -> None:
        for single in singles:
            model(**single)

    calls = {"packed": lambda: batch(True), "rectangle": lambda: batch(False), "one_by_one": one_by_one}
    times: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for call in calls.values():
            call()
        for _ in range(repeats):
            for name, call in calls.items():
                times[name] += time_calls(call, 1)["times"]
    model.config.pack_padded_batches = True
    fastest = {name: min(values) for name, values in times.items()}
    return {
        "padded_s": fastest["packed"],
        "rectangle_s": fastest["rectangle"],
        "unpadded_s": fastest["one_by_one"],
        "ratio": fastest["packed"] / fastest["one_by_one"],
        "rectangle_ratio": fastest["rectangle"] / fastest["one_by_one"],
        "real_tokens": sum(lengths) / (256 * len(lengths)),
        "loadavg": load_average()[0],
    }


def _bf16(model, inputs: dict, repeats: int) -> dict[str, Any]:
    """bf16 against fp32 on the same inputs: speed, and the deviation of the last hidden state."""
    import torch

    captured: list[torch.Tensor] = []
    backbone = getattr(model, "model", model)
    hook = backbone.register_forward_hook(lambda module, args, output: captured.append(output.last_hidden_state))

    def forward() -> None:
        model(**inputs)

    with torch.inference_mode():
        forward()
        reference = captured.pop().float()
        fp32_s = min(time_calls(forward, 1)["times"][0] for _ in range(repeats))
        captured.clear()
        model.to(torch.bfloat16)
        forward()
        ours = captured.pop().float()
        bf16_s = min(time_calls(forward, 1)["times"][0] for _ in range(repeats))
    hook.remove()
    mask = inputs["attention_mask"].bool()
    a, b = reference[mask], ours[mask]
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1).min().item()
    return {"fp32_s": fp32_s, "bf16_s": bf16_s, "speedup": fp32_s / bf16_s,
            "max_abs": (a - b).abs().max().item(), "min_cosine": cosine}  # fmt: skip


WORKERS = {"family": worker_family}


def families() -> list[str]:
    from multimolecule.converters import FAMILIES

    return list(FAMILIES)


def report(results: list[dict[str, Any]], info: dict[str, str]) -> str:
    lines = []
    if any(result["cases"] for result in results):
        lines += ["### Forward pass vs its matrix products alone (fp32)", ""]
        lines += [
            "| family | parameters | case | forward ms | matmuls ms | ratio | GFLOP | peak MiB | load |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for result in results:
        for name, case in result["cases"].items():
            verdict = "" if case["ratio"] <= TARGET else " **>1.15**"
            scores = f" ({case['layers_of_scores']:.1f} layers' scores)" if "layers_of_scores" in case else ""
            lines.append(
                f"| {result['family']} | {result['parameters'] / 1e6:.1f} M | {name} | {case['forward_s'] * 1e3:,.0f} "
                f"| {case['floor_s'] * 1e3:,.0f} | {case['ratio']:.2f}{verdict} | {case['gflops']:,.0f} "
                f"| {case['peak_mib']:,.0f}{scores} | {case['loadavg']:.1f} |"
            )
    if lines:
        lines.append("")
    lines += ["### Padding (4 x 256): a padded batch / the same sequences one by one", ""]
    lines += [
        "| family | packed (default) | padded rectangle | real tokens | packed ms | rectangle ms | one by one ms "
        "| load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        pad = result["padding"]
        lines.append(
            f"| {result['family']} | {pad['ratio']:.2f} | {pad['rectangle_ratio']:.2f} | {pad['real_tokens']:.0%} "
            f"| {pad['padded_s'] * 1e3:,.0f} | {pad['rectangle_s'] * 1e3:,.0f} | {pad['unpadded_s'] * 1e3:,.0f} "
            f"| {pad['loadavg']:.1f} |"
        )
    if any("bf16" in result for result in results):
        lines += ["", "### bf16 (4 x 256)", ""]
        lines += ["| family | fp32 / bf16 time | bf16 max abs diff | bf16 min cosine |", "|---|---|---|---|"]
    for result in results:
        if "bf16" in result:
            bf16 = result["bf16"]
            lines.append(
                f"| {result['family']} | {bf16['speedup']:.2f}x | {bf16['max_abs']:.1e} | {bf16['min_cosine']:.4f} |"
            )
    lines += ["", f"{info.get('lscpu Model name', '')}, torch capability {info['torch CPU capability']}, "
              f"{info['cores (os.sched_getaffinity)']} cores, {info['date']}."]  # fmt: skip
    return "\n".join(lines)


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    """The worst forward / floor ratio per family (the figure the target is about)."""
    return {
        f"{result['family']} forward / matmuls (worst case)": max(
            case["ratio"] for name, case in result["cases"].items() if "," not in name
        )
        for result in results
        if result["cases"]
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--families", nargs="+", default=None, help="default: every family in FAMILIES")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved forward / floor pairs per case")
    parser.add_argument(
        "--max-load", type=float, default=2.0, help="1-min load (ours included) above which runs are flagged"
    )
    parser.add_argument("--patience", type=float, default=0.0)
    parser.add_argument(
        "--padding-only", action="store_true", help="only the padded batch vs one by one (minutes, not the whole run)"
    )
    add_worker_arguments(parser, WORKERS, timeout=3600)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(WORKERS, args.worker, args.spec)
    guard = LoadGuard(args.max_load)
    results = []
    for family in args.families or families():
        guard.wait(args.patience)
        spec = {"family": family, "threads": args.threads, "repeats": args.repeats, "padding_only": args.padding_only}
        try:
            result, wall, peak_kib = run_worker(__file__, "family", spec, args.timeout)
        except RuntimeError as error:  # one family failing does not hide the others' figures
            print(f"{family}: FAILED {str(error).splitlines()[-1][:300]}", file=sys.stderr, flush=True)
            continue
        result["process_peak_mib"] = peak_kib / 1024
        results.append(result)
        padding = result["padding"]["ratio"]
        figure = max(case["ratio"] for case in result["cases"].values()) if result["cases"] else None
        summary = f"worst forward / matmuls {figure:.2f}" if figure else f"padded / one by one {padding:.2f}"
        print(f"{family}: {summary}, {wall:.0f} s{guard.flag()}", file=sys.stderr, flush=True)
    print(report(results, machine()))
    for name, value in ratios(results).items():
        print(f"RATIO {name}: {value:.2f}" + ("" if value <= TARGET else f" (target {TARGET})"))
    for result in results:
        pad = result["padding"]
        print(
            f"RATIO {result['family']} padded / one by one: {pad['ratio']:.2f} packed "
            f"({pad['rectangle_ratio']:.2f} over the padded rectangle)"
        )
    return 0 if all(math.isfinite(value) for value in ratios(results).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
