"""Shared fixtures: the golden RNA-FM cases and a runner for the converter CLI (the code path users run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

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
    def overrides(self) -> list[str]:
        """What the file does not store: RNA-FM's ss file has no args, hence no number of heads."""
        return ["--model.num_attention_heads", str(self.meta["hyperparameters"]["attention_heads"])]


def golden_case(family: str, case: str) -> GoldenCase:
    directory = GOLDEN / family / case
    return GoldenCase(directory, json.loads((directory / "meta.json").read_text()))


def run_convert(*argv: str | Path) -> int:
    return convert_main([str(arg) for arg in argv])


@pytest.fixture
def convert():
    return run_convert
