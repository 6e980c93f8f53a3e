"""`python -m multimolecule.convert`: list, convert, validate and publish the catalogued checkpoints."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import chanfig

from .. import converters
from .catalogue import catalogue
from .errors import ConversionError
from .publish import Options, publish

USAGE = """\
usage: python -m multimolecule.convert list
       python -m multimolecule.convert <variant> [--checkpoint PATH] [--output DIR] [--push] [options]
       python -m multimolecule.convert all [--output DIR] [--push] [options]

Converts a published upstream checkpoint (downloaded and verified, or --checkpoint PATH) into a MultiMolecule
model directory (model.safetensors, config.json, tokenizer files, README.md model card), validates it through
every Auto class and against the original implementation's outputs, and with --push publishes it to the Hub.
`list` shows every catalogued variant; `all` converts every variant that has a converter.
"""

# (option, help); the flags take no value
FLAGS = {
    "push": "publish the converted directory to the Hugging Face Hub",
    "no_verify": "convert a --checkpoint whose sha256 differs from the catalogue's, on purpose",
    "overwrite": "replace a non-empty output directory",
}
OPTIONS = {
    "checkpoint": "upstream checkpoint file to convert (skips the download; its sha256 is still checked)",
    "output": "output directory (default: converted/<variant>; with `all`, the parent directory)",
    "repo_id": "Hub repository to push to (default: the catalogue's, multimolecule/<variant>)",
    "token": (
        "Hugging Face token: `-` reads it from standard input. Prefer HF_TOKEN, the token saved by `hf auth login` "
        "(both used by default) or --token-file: a token given here is visible to other users of the machine "
        "(ps, /proc) for the whole run"
    ),
    "token_file": "file holding the Hugging Face token (its first line), e.g. a secret mounted by CI",
    "cache_dir": "download cache (default: $MULTIMOLECULE_CACHE or ~/.cache/multimolecule)",
    "golden_dir": "golden fixtures for the converter self-test (default: tests/golden of a source checkout)",
}
MODEL_HELP = (
    "--model.<field> VALUE  set a config field the checkpoint does not store (e.g. --model.num_attention_heads 20)"
)


class ConvertConfig(chanfig.Config):
    checkpoint: str | None = None
    output: str | None = None
    push: bool = False
    no_verify: bool = False
    overwrite: bool = False
    repo_id: str | None = None
    token: str | None = None
    token_file: str | None = None
    cache_dir: str | None = None
    golden_dir: str | None = None

    def post(self) -> None:
        if self.get("model") is None:
            self.model = chanfig.Config()

    def options(self, output: Path | None = None) -> Options:
        def path(value: str | None) -> Path | None:
            return Path(value) if value else None

        return Options(
            checkpoint=path(self.checkpoint),
            output=output or path(self.output),
            verify=not self.no_verify,
            overwrite=self.overwrite,
            push=self.push,
            repo_id=self.repo_id,
            token=self.token,
            cache_dir=path(self.cache_dir),
            golden_dir=path(self.golden_dir),
            model=dict(self.model.dict()) if self.model else {},
        )


def parse(argv: Sequence[str]) -> ConvertConfig:
    parser = chanfig.ConfigParser(
        prog="python -m multimolecule.convert",
        usage=USAGE.split("\n\n")[0].removeprefix("usage: "),
        description=USAGE.split("\n\n", 1)[1],
        epilog=MODEL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, help_text in {**FLAGS, **OPTIONS}.items():
        names = dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}"])  # --no-verify and --no_verify
        action = {"action": "store_true"} if name in FLAGS else {}
        parser.add_argument(*names, dest=name, help=help_text, **action)
    config = ConvertConfig()
    config.setattr("parser", parser)
    return config.parse(_dash_values_joined(argv))


def _dash_values_joined(argv: Sequence[str]) -> list[str]:
    """`--token -` as `--token=-`: chanfig's parser would take a lone `-` for an option of its own."""
    joined: list[str] = []
    for arg in argv:
        if arg == "-" and joined and joined[-1].startswith("--") and "=" not in joined[-1]:
            joined[-1] += "=-"
        else:
            joined.append(arg)
    return joined


TOKEN_VISIBLE = (
    "warning: --token VALUE is visible to other users of this machine (ps, /proc) while the conversion runs; "
    "prefer HF_TOKEN, `hf auth login`, --token-file PATH or --token - (standard input)"
)


def read_token(config: ConvertConfig) -> str | None:
    """The token the options give: from --token-file, from standard input (`--token -`), or --token's value.

    None leaves it to huggingface_hub's usual places (HF_TOKEN, the saved login). A value on the command
    line still works, with a warning: every user of the machine can read a process's arguments.
    """
    if config.token and config.token_file:
        raise ConversionError("give the Hugging Face token with --token or --token-file, not both")
    if config.token_file:
        try:
            text = Path(config.token_file).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise ConversionError(f"could not read the token file {config.token_file}: {error}") from None
        return _first_line(text, f"the token file {config.token_file}")
    if config.token == "-":
        return _first_line(sys.stdin.readline(), "standard input (--token -)")
    if config.token:
        print(TOKEN_VISIBLE, file=sys.stderr)
    return config.token or None


def _first_line(text: str, source: str) -> str:
    token = text.strip().split("\n", 1)[0].strip()
    if not token:
        raise ConversionError(f"{source} holds no Hugging Face token")
    return token


def list_variants() -> str:
    available = converters.all_variants()
    rows = [("variant", "family", "converter", "hub repo", "licence")]
    for name, entry in sorted(catalogue().items(), key=lambda item: (item[1].family, item[0])):
        rows.append((name, entry.family_name, "yes" if name in available else "not yet", entry.repo_id, entry.license))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def convert_all(config: ConvertConfig) -> int:
    """Every variant with a converter; one failure does not stop the others."""
    if config.checkpoint:
        raise ConversionError("`all` downloads each variant; --checkpoint applies to a single variant")
    root = Path(config.output or "converted")
    outcomes = []
    for variant in sorted(converters.all_variants()):
        print(f"== {variant}")
        try:
            result = publish(variant, config.options(root / variant))
            outcomes.append((variant, "ok", str(result.output)))
        except ConversionError as error:
            print(f"error: {error}", file=sys.stderr)
            outcomes.append((variant, "FAILED", str(error).splitlines()[0]))
    print("\nvariant".ljust(20) + "status  detail")
    for variant, status, detail in outcomes:
        print(f"{variant:<19} {status:<7} {detail}")
    return 0 if all(status == "ok" for _, status, _ in outcomes) else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        parse(["--help"])  # argparse prints the help and exits
    command, rest = argv[0], argv[1:]
    try:
        if command == "list":
            print(list_variants())
            return 0
        config = parse(rest)
        config.token = read_token(config)
        if command == "all":
            return convert_all(config)
        publish(command, config.options())
        return 0
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
