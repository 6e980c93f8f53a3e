"""`python -m multimolecule.extract MODEL INPUT OUTPUT [options]`, also under `accelerate launch` / `torchrun`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import chanfig

from ..io.errors import InputError

USAGE = """\
usage: python -m multimolecule.extract MODEL INPUT OUTPUT [--include mean cls per-token contacts structure]
           [--layers -1] [--max-tokens 4096] [--batch-size N] [--dtype float32] [--window W --stride S] ...

Computes per-sequence and per-token representations (and contact or structure maps) for every record of a
FASTA file (plain or gzipped) with a converted MultiMolecule model (a Hub id or a directory), and writes them to
OUTPUT as safetensors shards with an index of record ids (layout: multimolecule/extract/shards.py). Rerunning
the same command after an interruption resumes; under `accelerate launch` or `torchrun` the processes share
the shards. Bad records (empty, duplicate id, refused by the tokenizer) are skipped and listed in skipped.tsv.
"""

FLAGS = {
    "strict": "a character outside the model's alphabet makes a record bad (default: it is read as <unk>)",
    "fail_on_bad": "stop at the first bad record instead of skipping it",
}
OPTIONS = {
    "include": ("+", "outputs: mean, cls (per layer), per-token (ragged), contacts, structure (pair maps)"),
    "layers": ("+", "hidden-state layers: 0 is the embeddings, -1 (default) the last layer"),
    "max_tokens": (None, "token budget of a batch, padding included (default 4096)"),
    "batch_size": (None, "at most this many sequences per batch (default: no limit)"),
    "dtype": (None, "float32 (default), float16 or bfloat16; outputs are stored as float32"),
    "device": (None, "cpu, cuda, cuda:1, ... (default: the process's GPU if there is one)"),
    "window": (None, "cut sequences longer than the model accepts into windows of W tokens ..."),
    "stride": (None, "... starting every S tokens; overlapping per-token outputs are averaged"),
    "shard_size": (None, "records per shard (default 10000)"),
}


class ExtractConfig(chanfig.Config):
    include: list = ["mean"]  # noqa: RUF012 - chanfig reads class attributes as defaults
    layers: list = [-1]  # noqa: RUF012
    max_tokens: int = 4096
    batch_size: int | None = None
    dtype: str = "float32"
    device: str | None = None
    window: int | None = None
    stride: int | None = None
    shard_size: int = 10000
    strict: bool = False
    fail_on_bad: bool = False


def parse(argv: Sequence[str]) -> ExtractConfig:
    parser = chanfig.ConfigParser(
        prog="python -m multimolecule.extract",
        usage=USAGE.split("\n\n")[0].removeprefix("usage: "),
        description=USAGE.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, help_text in FLAGS.items():
        parser.add_argument(*_names(name), dest=name, action="store_true", help=help_text)
    for name, (nargs, help_text) in OPTIONS.items():
        parser.add_argument(*_names(name), dest=name, nargs=nargs, help=help_text)
    config = ExtractConfig()
    config.setattr("parser", parser)
    config = config.parse(_join_layers(list(argv)))
    unknown = sorted(set(config.keys()) - set(ExtractConfig().keys()))
    if unknown:
        raise InputError(f"unknown option(s): {', '.join('--' + key.replace('_', '-') for key in unknown)}")
    return config


def _names(name: str) -> list[str]:
    """`--max-tokens` and `--max_tokens` alike (chanfig would otherwise add the second as its own option)."""
    return list(dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}"]))


def _join_layers(argv: list[str]) -> list[str]:
    """`--layers -1 6` as `--layers=-1,6`: the parser would read `-1` as an option."""
    result, index = [], 0
    while index < len(argv):
        if argv[index] == "--layers":
            values = []
            while index + 1 < len(argv) and argv[index + 1].lstrip("-").isdigit():
                index += 1
                values.append(argv[index])
            result.append("--layers=" + ",".join(values))
        else:
            result.append(argv[index])
        index += 1
    return result


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    positional = [arg for arg in argv[:3] if not arg.startswith("-")]
    if len(positional) < 3 or any(arg in ("-h", "--help") for arg in argv):
        parse(["--help"])  # argparse prints the help and exits
    try:
        config = parse(argv[3:])
        from .run import extract  # after parsing: --help stays fast

        return extract(argv[0], Path(argv[1]), Path(argv[2]), config)
    except (InputError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
