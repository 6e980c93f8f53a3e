"""Shared fixtures: the golden cases and a runner for the converter CLI (the code path users run)."""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

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


def convert_golden(root: Path, cases: list[tuple[str, str]]) -> dict[str, Path]:
    """Convert each (family, case) fixture through the CLI into root/<case>; case -> output directory."""
    outputs = {}
    for family, name in cases:
        case = golden_case(family, name)
        output = root / name
        status = run_convert(
            case.variant, "--checkpoint", case.checkpoint, "--output", output, "--no-verify", *case.overrides
        )
        assert status == 0, f"conversion of {name} failed"
        outputs[name] = output
    return outputs


def assert_structure_batched_equals_alone(model_class, directory: Path) -> None:
    """A padded batch gives every sequence the (finite) structure map it gets alone, zero outside its square."""
    model = model_class.from_pretrained(directory).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    sequences = ["GGGUGCGAUCAUACCAGCACUAAUGCCCUCC", "GGACUUCGGUCC", "ACGUN"]
    with torch.no_grad():
        batched = model(**tokenizer(sequences, padding=True, return_tensors="pt")).logits
        assert torch.isfinite(batched).all()
        for index, sequence in enumerate(sequences):
            alone = model(**tokenizer(sequence, return_tensors="pt")).logits
            n = len(sequence)
            assert torch.allclose(batched[index, :n, :n], alone[0], atol=1e-5)
            assert not batched[index, n:].any() and not batched[index, :, n:].any()


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


def zip_record_ranges(path: Path) -> list[tuple[int, int]]:
    """Byte ranges of a zip file's record contents that carry a CRC-32, in file order, read from the local
    headers by hand (what each record's checksum covers)."""
    data = path.read_bytes()
    ranges = []
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            names, extra = struct.unpack("<HH", data[member.header_offset + 26 : member.header_offset + 30])
            start = member.header_offset + 30 + names + extra
            if member.CRC:
                ranges.append((start, start + member.compress_size))
    return sorted(ranges)
