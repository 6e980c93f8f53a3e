"""Cold-import time of `import multimolecule` against what it must import anyway, and its global side effects.

Every measurement is a fresh Python process. The scenarios run round-robin (so that a burst of other load on
the machine hits all of them alike), after one discarded round that fills the bytecode cache:

    baseline       import torch, transformers; from transformers import PreTrainedModel, AutoModel
    multimolecule  import multimolecule
    incremental    the baseline (not timed), then `import multimolecule` timed: multimolecule's own cost
    converter CLI  import multimolecule.convert.cli (what `python -m multimolecule.convert` loads)

A further process checks that `import multimolecule` leaves torch's RNG state (and Python's and NumPy's, the
default dtype, the thread count and the logging configuration) as it found them, and `-X importtime` lists
the modules the import adds beyond the baseline, slowest first.

    python benchmarks/bench_import.py               # 10 rounds, bytecode cached (about 4 minutes on 2 cores)
    python benchmarks/bench_import.py --runs 3      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

BASELINE = "import torch, transformers; from transformers import PreTrainedModel, AutoModel"
SCENARIOS = {
    "baseline": ("", BASELINE),
    "multimolecule": ("", "import multimolecule"),
    "incremental": (BASELINE, "import multimolecule"),
    "converter CLI": ("", "import multimolecule.convert.cli"),
}
LABELS = {
    "baseline": f"baseline: `{BASELINE}`",
    "multimolecule": "`import multimolecule`",
    "incremental": "`import multimolecule` after the baseline (multimolecule's own cost)",
    "converter CLI": "`import multimolecule.convert.cli`",
}
TIMER = """
import time, json
{setup}
_start = time.perf_counter()
{statement}
print("RESULT " + json.dumps(time.perf_counter() - _start))
"""
SIDE_EFFECTS = """
import json, logging, random, warnings
import numpy, torch
{pre}
random.seed(1234)
numpy.random.seed(1234)
torch.manual_seed(1234)
def snapshot():
    return {
        "torch RNG state": torch.get_rng_state().clone(),
        "torch initial seed": torch.initial_seed(),
        "Python random state": random.getstate(),
        "NumPy RNG state": numpy.random.get_state(legacy=False),
        "torch default dtype": torch.get_default_dtype(),
        "torch threads": torch.get_num_threads(),
        "torch grad enabled": torch.is_grad_enabled(),
        "root logger (level, handlers)": (logging.getLogger().level, len(logging.getLogger().handlers)),
        "warnings filters": len(warnings.filters),
    }
before = snapshot()
import multimolecule
after = snapshot()

def same(a, b):
    if isinstance(a, torch.Tensor):
        return bool(torch.equal(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, numpy.ndarray):
        return bool(numpy.array_equal(a, b))
    return a == b

def describe(value):
    if isinstance(value, torch.Tensor):
        import hashlib
        digest = hashlib.sha1(value.numpy().tobytes()).hexdigest()[:12]
        return f"{value.dtype} tensor of {value.numel()} values, sha1 {digest}"
    if isinstance(value, tuple) and len(str(value)) > 60:
        return f"tuple, sha1 {__import__('hashlib').sha1(repr(value).encode()).hexdigest()[:12]}"
    if isinstance(value, dict):
        return f"dict, sha1 {__import__('hashlib').sha1(repr(value).encode()).hexdigest()[:12]}"
    return str(value)[:60]

report = {name: [same(before[name], after[name]), describe(before[name]), describe(after[name])] for name in before}
fresh = torch.rand(3, generator=torch.Generator().manual_seed(1234))
draw = torch.rand(3)
report["next torch.rand(3) = the first draw after manual_seed(1234)"] = [bool(torch.equal(draw, fresh)), "", ""]
print("RESULT " + json.dumps(report))
"""


def run(code: str, env: dict[str, str], python: str, extra: tuple[str, ...] = ()) -> tuple[object, float, str]:
    """(the RESULT payload, process wall seconds, stderr)."""
    start = time.perf_counter()
    done = subprocess.run([python, *extra, "-c", code], capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{python} -c ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    payload = json.loads(lines[-1].removeprefix("RESULT ")) if lines else None
    return payload, wall, done.stderr


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def importtime_added(env: dict[str, str], python: str, top: int) -> list[tuple[str, float, float]]:
    """Modules imported by `import multimolecule` after the baseline: (module, self ms, cumulative ms)."""
    marker = "__bench_import_marker__"
    code = f"{BASELINE}\nimport sys\nsys.stderr.write('{marker}\\n')\nsys.stderr.flush()\nimport multimolecule"
    _, _, stderr = run(code, env, python, ("-X", "importtime"))
    added = []
    for line in stderr.split(marker, 1)[-1].splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        added.append((name.strip(), int(self_us) / 1e3, int(cumulative_us) / 1e3))
    return sorted(added, key=lambda row: row[1], reverse=True)[:top]


def environment(mode: str, cache: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    if mode == "cached":  # every module (torch's too) from one fresh bytecode cache, filled by the first round
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--runs", type=int, default=10, help="timed rounds (each scenario once per round)")
    parser.add_argument(
        "--bytecode",
        choices=("cached", "env"),
        default="cached",
        help="cached: a private PYTHONPYCACHEPREFIX filled by a discarded first round (what an installed package "
        "sees); env: this environment as it is (PYTHONDONTWRITEBYTECODE=1 recompiles uncached modules every time)",
    )
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--top", type=int, default=15, help="modules to list from -X importtime")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_import_pycache_") as cache:
        env = environment(args.bytecode, cache)
        for name in args.scenarios:  # discarded round: fills the cache, warms the page cache
            run(TIMER.format(setup=SCENARIOS[name][0], statement=SCENARIOS[name][1]), env, args.python)
        timings: dict[str, list[float]] = {name: [] for name in args.scenarios}
        walls: dict[str, list[float]] = {name: [] for name in args.scenarios}
        for round_index in range(args.runs):
            for name in args.scenarios:
                setup, statement = SCENARIOS[name]
                seconds, wall, _ = run(TIMER.format(setup=setup, statement=statement), env, args.python)
                timings[name].append(float(seconds))
                walls[name].append(wall)
            print(f"round {round_index + 1}/{args.runs} done", file=sys.stderr, flush=True)
        effects = {
            "torch only": run(SIDE_EFFECTS.replace("{pre}", ""), env, args.python)[0],
            "baseline": run(SIDE_EFFECTS.replace("{pre}", BASELINE), env, args.python)[0],
        }
        added = importtime_added(env, args.python, args.top)

    versions = []
    for package in ("torch", "transformers", "multimolecule"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    bytecode = args.bytecode
    if bytecode == "env":
        bytecode += f" (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')})"
    lines = [
        "# Import time of multimolecule",
        "",
        f"Python {sys.version.split()[0]}, {', '.join(versions)}, {os.cpu_count()} CPUs; bytecode: {bytecode}; "
        f"{args.runs} rounds after one discarded round.",
        "",
        "| what | median ms | IQR ms | min ms | process wall median ms | n |",
        "|---|---|---|---|---|---|",
    ]
    for name in args.scenarios:
        q1, median, q3 = quartiles(timings[name])
        lines.append(
            f"| {LABELS[name]} | {median * 1e3:,.0f} | {(q3 - q1) * 1e3:,.0f} | {min(timings[name]) * 1e3:,.0f} "
            f"| {statistics.median(walls[name]) * 1e3:,.0f} | {len(timings[name])} |"
        )
    if "baseline" in timings and "multimolecule" in timings:
        difference = statistics.median(timings["multimolecule"]) - statistics.median(timings["baseline"])
        lines += ["", f"Median `import multimolecule` minus median baseline: {difference * 1e3:+,.0f} ms."]
        ratio = statistics.median(timings["multimolecule"]) / statistics.median(timings["baseline"])
        print(f"RATIO import multimolecule / import torch + transformers: {ratio:.2f} (target 1.15)", flush=True)
    lines += [
        "",
        "## Global state before and after `import multimolecule` (same process)",
        "",
        "Seeded with 1234 (torch, random, NumPy) before the import; *unchanged* is checked with only torch (and "
        "NumPy) imported before, and with the whole baseline imported before.",
        "",
        "| what | unchanged (torch only before) | unchanged (baseline before) | value before | value after "
        "(torch only before) |",
        "|---|---|---|---|---|",
    ]
    for name, (unchanged, before, after) in effects["torch only"].items():
        after_baseline = effects["baseline"][name][0]
        marks = ["yes" if value else "**NO**" for value in (unchanged, after_baseline)]
        lines.append(f"| {name} | {marks[0]} | {marks[1]} | {before} | {'' if unchanged else after} |")
    own = [name for name, (same, _, _) in effects["baseline"].items() if not same]
    inherited = [name for name, (same, _, _) in effects["torch only"].items() if not same and name not in own]
    if own:
        finding = f"importing multimolecule itself CHANGES {', '.join(own)} (even with the baseline imported first)."
    else:
        finding = "importing multimolecule itself leaves torch's RNG state and everything above unchanged"
        finding += (
            f"; {', '.join(inherited)} change only when transformers is not yet imported, i.e. by the import of "
            "transformers that multimolecule needs anyway (the baseline does the same)."
            if inherited
            else "."
        )
    lines += [
        "",
        f"Finding: {finding}",
        "",
        f"## Slowest modules `import multimolecule` adds after the baseline (`-X importtime`, top {args.top})",
        "",
        "| module | self ms | cumulative ms |",
        "|---|---|---|",
        *[f"| `{name}` | {self_ms:,.1f} | {cumulative_ms:,.1f} |" for name, self_ms, cumulative_ms in added],
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
