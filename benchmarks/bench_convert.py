"""Conversion of a published-size release file: time and peak memory against the I/O floor.

The floor is what any conversion must do: `torch.load` the file and `safetensors` save its tensors. Measured,
each in a fresh process (page cache warm, after one untimed read of the file):

- floor:  `torch.load(path, mmap=True)` + `safetensors.torch.save_file` of its tensors;
- api:    `get_converter(variant).convert(path)` + `save_pretrained` of the model and tokenizer (no validation);
- load:   `from_pretrained` of the api's output against `safetensors.torch.load_file` of its weights, each
          followed by one read of every tensor (both map the file lazily);
- cli:    `python -m multimolecule.convert VARIANT --checkpoint PATH --output DIR --no-verify`, the whole publish
          path (convert, save, validate through every Auto class, parity, card), timed from outside; its peak
          RSS from `wait4`, imports included.

Peak memory is VmHWM after resetting it (`PeakMemory`), as growth over the RSS after the imports, and is
reported as a multiple of the file size. Targets (issue 14): api <= 1.5x the floor's time and <= 1.3x the file
in peak growth; the CLI below 2x the file in peak RSS.

    python benchmarks/bench_convert.py --family rnafm
    python benchmarks/bench_convert.py --family rinalmo --repeats 1   # 2.6 GB file: run when the machine is quiet
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    LoadGuard,
    PeakMemory,
    add_worker_arguments,
    load_average,
    machine,
    median,
    run_command,
    run_worker,
    worker_main,
)
from release_files import RELEASES, write_release

TARGETS = {
    "api time / floor time": 1.5,
    "api peak / file": 1.3,
    "cli peak / file": 2.0,
    "from_pretrained / load_file (+ one read)": 1.3,
    "from_pretrained again / load_file again": 1.3,
}


def _read(path: Path) -> None:
    """Read the file once so every measurement starts with it in the page cache."""
    with path.open("rb") as file:
        while file.read(1 << 24):
            pass


def worker_floor(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(spec["threads"])
    path, output = Path(spec["checkpoint"]), Path(spec["output"])
    with PeakMemory() as memory:
        start = time.perf_counter()
        content = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        state = content.get("model", content)
        seen: set[tuple[int, int]] = set()
        tensors = {}
        for key, value in state.items():  # safetensors refuses shared storage: one copy of a tied weight
            if isinstance(value, torch.Tensor):
                identity = (value.untyped_storage().data_ptr(), value.storage_offset())
                if identity not in seen:
                    seen.add(identity)
                    tensors[key] = value.contiguous()
        loaded = time.perf_counter()
        save_file(tensors, output / "model.safetensors")
        end = time.perf_counter()
    return {"total": end - start, "load": loaded - start, "save": end - loaded, "peak_mib": memory.growth_mib}


def worker_api(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from multimolecule.converters import get_converter

    torch.set_num_threads(spec["threads"])
    converter = get_converter(spec["variant"])
    output = Path(spec["output"])
    with PeakMemory() as memory:
        start = time.perf_counter()
        conversion = converter.convert(spec["checkpoint"])
        converted = time.perf_counter()
        conversion.model.save_pretrained(output)
        conversion.tokenizer.save_pretrained(output)
        end = time.perf_counter()
    return {
        "total": end - start,
        "convert": converted - start,
        "save": end - converted,
        "peak_mib": memory.growth_mib,
    }


def worker_load(spec: dict[str, Any]) -> dict[str, Any]:
    """`from_pretrained` of the converted directory, or `safetensors.torch.load_file` of its weights; both map
    the file lazily, so each reads every tensor once (what a first forward pass does). Twice in the process:
    the first `from_pretrained` also builds transformers' table of checkpoint conversions for every model type
    (about 1,100 regular expressions), once per process whatever the model."""
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(spec["threads"])
    directory = Path(spec["directory"])
    if spec["how"] == "from_pretrained":
        from multimolecule.converters import get_converter

        architecture = get_converter(spec["variant"]).architecture

    def load() -> float:
        start = time.perf_counter()
        if spec["how"] == "from_pretrained":
            tensors = list(architecture.from_pretrained(directory).state_dict().values())
        else:
            tensors = list(load_file(directory / "model.safetensors").values())
        with torch.inference_mode():
            for tensor in tensors:
                tensor.sum()
        return time.perf_counter() - start

    return {"total": load(), "again": load()}


WORKERS = {"floor": worker_floor, "api": worker_api, "load": worker_load}


def measure(args: argparse.Namespace, path: Path, workdir: Path, say) -> dict[str, Any]:
    """Interleaved floor / api runs, then the CLI once; every figure with the load average it was taken under."""
    release = RELEASES[args.family]
    file_mib = path.stat().st_size / 2**20
    guard = LoadGuard(args.max_load)
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "api": []}
    for index in range(args.repeats):
        for kind in ("floor", "api"):
            output = workdir / f"{kind}_{index}"
            shutil.rmtree(output, ignore_errors=True)
            output.mkdir()
            _read(path)
            spec = {"checkpoint": str(path), "output": str(output), "variant": release.variant, "threads": args.threads}
            result, _, _ = run_worker(__file__, kind, spec, args.timeout)
            result["loadavg"] = load_average()[0]
            result["quiet"] = guard.quiet()
            runs[kind].append(result)
            say(f"{kind:>5} {index + 1}/{args.repeats}: {result['total']:.2f} s, peak +{result['peak_mib']:.0f} MiB"
                f"{guard.flag()}")  # fmt: skip
            if index or kind == "floor":
                shutil.rmtree(output, ignore_errors=True)
    loads: dict[str, list[float]] = {"from_pretrained": [], "load_file": []}
    again: dict[str, list[float]] = {"from_pretrained": [], "load_file": []}
    for _ in range(args.repeats):
        for how in loads:
            spec = {
                "directory": str(workdir / "api_0"),
                "how": how,
                "variant": release.variant,
                "threads": args.threads,
            }
            result = run_worker(__file__, "load", spec, args.timeout)[0]
            loads[how].append(result["total"])
            again[how].append(result["again"])
    say(f"  from_pretrained {median(loads['from_pretrained']):.2f} s (again {median(again['from_pretrained']):.2f}), "
        f"load_file {median(loads['load_file']):.2f} s (again {median(again['load_file']):.2f})")  # fmt: skip
    shutil.rmtree(workdir / "api_0", ignore_errors=True)
    cli = None
    if not args.no_cli:
        output = workdir / "cli"
        shutil.rmtree(output, ignore_errors=True)
        _read(path)
        command = [sys.executable, "-m", "multimolecule.convert", release.variant, "--checkpoint", str(path)]
        out, wall, peak_kib = run_command([*command, "--output", str(output), "--no-verify"], args.timeout)
        cli = {"wall": wall, "peak_mib": peak_kib / 1024, "loadavg": load_average()[0], "quiet": guard.quiet()}
        say(f"  cli: {wall:.1f} s, peak RSS {peak_kib / 1024:.0f} MiB{guard.flag()}\n{out.strip()}")
        shutil.rmtree(output, ignore_errors=True)
    return {"file_mib": file_mib, "runs": runs, "cli": cli, "loads": loads, "again": again}


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """The issue's ratios, from the medians (time over quiet runs where there are any)."""

    def times(kind: str) -> list[float]:
        quiet = [run["total"] for run in result["runs"][kind] if run["quiet"]]
        return quiet or [run["total"] for run in result["runs"][kind]]

    file_mib = result["file_mib"]
    floor_peak = median([run["peak_mib"] for run in result["runs"]["floor"]])
    api_peak = median([run["peak_mib"] for run in result["runs"]["api"]])
    out = {
        "floor time s": median(times("floor")),
        "api time s": median(times("api")),
        "api time / floor time": median(times("api")) / median(times("floor")),
        "floor peak / file": floor_peak / file_mib,
        "api peak / file": api_peak / file_mib,
    }
    loads = result["loads"]
    out["from_pretrained / load_file (+ one read)"] = median(loads["from_pretrained"]) / median(loads["load_file"])
    again = result["again"]  # the second load in the process: without transformers' one-time table
    out["from_pretrained again / load_file again"] = median(again["from_pretrained"]) / median(again["load_file"])
    if result["cli"]:
        out["cli time s"] = result["cli"]["wall"]
        out["cli peak / file"] = result["cli"]["peak_mib"] / file_mib
    return out


def report(family: str, result: dict[str, Any], info: dict[str, str]) -> str:
    """The parts (medians over the runs), then the ratios against the targets."""
    runs = result["runs"]
    lines = [f"### Conversion of {RELEASES[family].variant} ({result['file_mib']:.0f} MiB file)", ""]
    lines += ["| run | parts, median s | total s | peak growth MiB | load (1 min) |", "|---|---|---|---|---|"]
    for kind, parts in (("floor", ("load", "save")), ("api", ("convert", "save"))):
        for index, run in enumerate(runs[kind]):
            detail = ", ".join(f"{part} {run[part]:.2f}" for part in parts)
            flag = "" if run["quiet"] else " (flagged: loaded)"
            figures = f"{run['total']:.2f} | {run['peak_mib']:.0f} | {run['loadavg']:.1f}{flag}"
            lines.append(f"| {kind} {index + 1} | {detail} | {figures} |")
    if result["cli"]:
        cli = result["cli"]
        figures = f"{cli['wall']:.1f} | {cli['peak_mib']:.0f} | {cli['loadavg']:.1f}"
        lines.append(f"| cli (peak RSS, imports included) | | {figures} |")
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    for name, value in ratios(result).items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"<= {target}: " + ("holds" if value <= target else "**misses**")
        lines.append(f"| {name} | {value:.2f} | {verdict} |")
    lines += ["", f"{info.get('lscpu Model name', '')}, {info['torch CPU capability']}, "
              f"{info['cores (os.sched_getaffinity)']} cores, {info['date']}."]  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--family", choices=sorted(RELEASES), default="rnafm")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per kind, interleaved")
    parser.add_argument("--max-load", type=float, default=2.0, help="flag runs above this 1-min load (ours: ~threads)")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI run")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated file here (reused)")
    add_worker_arguments(parser, WORKERS, timeout=1800)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(WORKERS, args.worker, args.spec)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_convert_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        path = workdir / RELEASES[args.family].filename
        if not path.exists():
            say(f"writing a published-size {args.family} file to {path}")
            run_worker(__file__, "write", {"family": args.family, "directory": str(workdir)}, args.timeout)
        result = measure(args, path, workdir, say)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report(args.family, result, machine()))
    for name, value in ratios(result).items():
        target = TARGETS.get(name)
        if target is not None:
            print(f"RATIO {args.family} {name}: {value:.2f} (target {target})")
    return 0


def worker_write(spec: dict[str, Any]) -> dict[str, Any]:
    path = write_release(spec["family"], Path(spec["directory"]))
    return {"file_mib": path.stat().st_size / 2**20}


WORKERS["write"] = worker_write

if __name__ == "__main__":
    sys.exit(main())
