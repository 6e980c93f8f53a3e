"""One command for issue 14's ratios: conversion (RNA-FM size), every family's forward pass against its matrix
products, padding, bf16, import and loading. Each part is its own script (see README); this one runs them in
turn and prints their `RATIO` lines together, with the load average each part ran under.

    python benchmarks/bench_all.py            # about 30-40 min on 2 cores (RiNALMo giga dominates)
    python benchmarks/bench_all.py --quick    # conversion and the small families only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import CHILD_ENV, load_average, machine

HERE = Path(__file__).resolve().parent
SMALL = ["rnafm", "rnabert", "splicebert", "rnaernie", "utrlm"]


def run(script: str, *args: str) -> tuple[str, list[str]]:
    """The script's stdout and its RATIO lines; its progress goes to our stderr."""
    import os

    before = load_average()[0]
    completed = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **CHILD_ENV},
        check=True,
    )
    after = load_average()[0]
    ratios = [line.removeprefix("RATIO ") for line in completed.stdout.splitlines() if line.startswith("RATIO ")]
    return completed.stdout, [f"{line}  [load {before:.1f}->{after:.1f}]" for line in ratios]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, the small families, no giga")
    parser.add_argument("--markdown", type=Path, default=None, help="also write every report to this file")
    args = parser.parse_args(argv)
    repeats = "1" if args.quick else "3"
    parts = [
        ("bench_convert.py", "--family", "rnafm", "--repeats", repeats),
        ("bench_families.py", "--repeats", repeats, *(["--families", *SMALL] if args.quick else [])),
        ("bench_import.py", "--runs", repeats),
    ]
    reports, ratios = [], []
    for script, *options in parts:
        print(f"== {script} {' '.join(options)}", file=sys.stderr, flush=True)
        report, found = run(script, *options)
        reports.append(report)
        ratios += found
    info = machine()
    header = [f"- {key}: {value}" for key, value in info.items() if key != "lscpu Flags"]
    text = "\n".join(["# Issue 14 benchmark", "", *header, "", *reports])
    if args.markdown:
        args.markdown.write_text(text + "\n")
    print("\n".join(["", "Ratios:", *ratios]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
