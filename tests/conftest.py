"""Shared fixtures: the golden cases and a runner for the converter CLI (the code path users run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from multimolecule import converters
from multimolecule.convert.cli import main as convert_main

GOLDEN = Path(__file__).parent / "golden"


@dataclass
class GoldenCase:
    directory: Path
    meta: dict

    @property
    def checkpoint(self) -> Path:
        return self.directory / self.meta["checkpoint"]

    @property
    def expected(self) -> dict[str, torch.Tensor]:
        return load_file(self.directory / "expected.safetensors")

    @property
    def variant(self) -> str:
        """The first variant whose converter names this case as its self-test."""
        family, case = self.meta["family"], self.directory.name
        return next(name for name, c in converters.family_variants(family).items() if case in c.golden_cases)

    @property
    def overrides(self) -> list[str]:
        """`--model.<field>` values for what the fixture's files do not store (the converter says which)."""
        fields = converters.get_converter(self.variant).fixture_overrides(self.meta)
        return [item for name, value in fields.items() for item in (f"--model.{name}", str(value))]


def golden_case(family: str, case: str) -> GoldenCase:
    directory = GOLDEN / family / case
    return GoldenCase(directory, json.loads((directory / "meta.json").read_text()))


def run_convert(*argv: str | Path) -> int:
    return convert_main([str(arg) for arg in argv])


@pytest.fixture
def convert():
    return run_convert


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> dict[str, Path]:
    """The RNA-FM fixtures (`rnafm`, `rnafm-ss`) converted once per session through the CLI: tiny models."""
    root = tmp_path_factory.mktemp("converted")
    paths = {}
    for case_name in ("rnafm", "rnafm-ss"):
        case = golden_case("rnafm", case_name)
        paths[case_name] = root / case_name
        code = run_convert(
            case.variant, "--checkpoint", case.checkpoint, "--output", paths[case_name], "--no-verify", *case.overrides
        )
        assert code == 0
    return paths
