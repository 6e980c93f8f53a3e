"""The publisher: fetch, verify, convert, validate, write (atomically), and push one catalogued variant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import converters
from .card import model_card
from .catalogue import Entry, lookup
from .digest import file_sha256
from .engine import Conversion, Converter
from .errors import ChecksumError, ValidationError
from .output import check_target, staged_directory
from .validate import Reference, ValidationReport, attach_written_weights, golden_cases, golden_reference, validate


@dataclass
class Options:
    checkpoint: Path | None = None
    output: Path | None = None
    verify: bool = True
    overwrite: bool = False
    push: bool = False
    repo_id: str | None = None
    token: str | None = None
    cache_dir: Path | None = None
    golden_dir: Path | None = None
    model: dict[str, Any] | None = None


@dataclass
class Result:
    variant: str
    output: Path
    report: ValidationReport
    commit: str | None = None


def default_golden_dir() -> Path | None:
    """The golden fixtures of a source checkout (tests/golden), used for the converter self-test."""
    candidate = Path(__file__).resolve().parents[2] / "tests" / "golden"
    return candidate if candidate.is_dir() else None


def _protected(options: Options) -> dict[str, Path | None]:
    """What the output must neither be nor contain: replacing it would delete them."""
    from .download import default_cache_dir

    return {"the input checkpoint": options.checkpoint, "the download cache": options.cache_dir or default_cache_dir()}


def _known_size(entry: Entry, checkpoint: Path | None) -> int:
    """The checkpoint's size, where it is known (the output takes about as much); else 0."""
    if checkpoint is not None and Path(checkpoint).is_file():
        return Path(checkpoint).stat().st_size
    return entry.size or 0


def publish(variant: str, options: Options, say: Callable[[str], None] = print) -> Result:
    entry = lookup(variant)
    converter = converters.get_converter(variant)
    output = options.output or Path("converted") / variant
    protect = _protected(options)
    check_target(output, options.overwrite, protect=protect, needed=_known_size(entry, options.checkpoint))
    token = None
    if options.push:
        from .hub import resolve_token  # fail before converting, not after an hour

        token = resolve_token(options.token)

    fixtures = _fixtures(converter, options.golden_dir)
    path, sha256 = _checkpoint(entry, converter, options, say)
    say(f"converting {path}")
    check_target(output, options.overwrite, protect=protect, needed=_known_size(entry, path))  # its size is known
    conversion = converter.convert(path, options.model, sha256=sha256)
    if "threshold" in entry.card:  # the pair threshold the release tuned, for the structure pipeline
        conversion.model.config.pair_threshold = float(entry.card["threshold"])
    with staged_directory(output, options.overwrite) as staging:
        conversion.model.save_pretrained(staging)
        conversion.tokenizer.save_pretrained(staging)
        attach_written_weights(conversion.model, staging)  # frees the upstream file's tensors
        say("validating")
        parity = _parity_checks(converter, conversion, fixtures, say)
        report = validate(staging, conversion, parity, list(converter.sample_sequences))
        say(report.summary())
        if not report.ok:
            raise ValidationError(
                f"validation of {variant} failed; nothing was written to {output}:\n{report.summary()}"
            )
        model_card(entry, conversion, report).save(staging / "README.md")
    say(f"wrote {output}")
    result = Result(variant, output, report)
    if options.push:
        from .hub import push

        repo_id = options.repo_id or entry.repo_id
        result.commit = push(output, repo_id, token, commit_message=f"Convert {variant} from {entry.source}")
        say(f"pushed to {repo_id}: " + (f"commit {result.commit}" if result.commit else "no change, no new commit"))
    return result


def _checkpoint(
    entry: Entry, converter: Converter, options: Options, say: Callable[[str], None]
) -> tuple[Path, str | None]:
    """The checkpoint to convert (a file or a release directory), and its weights file's sha256 when it was
    verified against the catalogue."""
    if options.checkpoint is None:
        from .download import fetch

        return fetch(entry, options.cache_dir), entry.sha256
    path = Path(options.checkpoint)
    if not options.verify:
        say(f"not verifying {path} against the catalogue (--no-verify)")
        return path, None
    actual = file_sha256(converter.locate(path)[0])
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path} has sha256 {actual}, but the catalogue's {entry.variant} is {entry.sha256}. "
            "Pass --no-verify to convert a local variant of the checkpoint on purpose."
        )
    return path, actual


def _fixtures(converter: Converter, golden_dir: Path | None) -> list[tuple[Path, dict]]:
    """The golden fixtures the converter names (`Converter.golden_cases`); a missing one is an error, so the
    self-test is never skipped in silence."""
    directory = golden_dir if golden_dir is not None else default_golden_dir()
    found = {case.name: (case, meta) for case, meta in golden_cases(directory, converter.family)}
    missing = [name for name in converter.golden_cases if name not in found]
    if missing:
        where = directory / converter.family if directory is not None else "no golden directory (not a source checkout)"
        raise ValidationError(
            f"the converter self-test of {converter.variant} needs the golden fixture(s) {', '.join(missing)} "
            f"of {converter.family}, not found in {where}; pass --golden-dir DIR (a source checkout's tests/golden)"
        )
    return [found[name] for name in converter.golden_cases]


def _parity_checks(
    converter: Converter, conversion: Conversion, cases: list[tuple[Path, dict]], say: Callable[[str], None]
) -> list[tuple[Conversion, Reference]]:
    """The golden fixture when the file is one; otherwise the converter's self-test on the variant's fixtures
    and the original implementation run live on this file, where it is installed."""
    for case, meta in cases:
        if file_sha256(converter.locate(case / meta["checkpoint"])[0]) == conversion.sha256:
            return [(conversion, golden_reference(case, meta))]
    checks = []
    for case, meta in cases:
        fixture = converter.convert(case / meta["checkpoint"], converter.fixture_overrides(meta))
        reference = golden_reference(case, meta)
        reference.name = f"converter self-test on the {reference.name}"
        checks.append((fixture, reference))
    live = converter.reference(conversion.source, list(converter.sample_sequences), conversion.model.config)
    if live is None:
        say(f"original implementation of {converter.family} not installed: live parity skipped")
    else:
        checks.append((conversion, live))
    return checks
