"""bf16 on a CPU without bf16 instructions says so, once; elsewhere, and in float32, it stays silent."""

from __future__ import annotations

import warnings

import pytest
import torch

from multimolecule import RnaFmConfig, RnaFmModel
from multimolecule.modules import precision

SIZE = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4, "intermediate_size": 64}


@pytest.fixture
def model() -> RnaFmModel:
    return RnaFmModel(RnaFmConfig(**SIZE)).eval()


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "_warned", False)


def run(model: RnaFmModel, times: int) -> list[warnings.WarningMessage]:
    ids = torch.tensor([[1, 6, 7, 8, 2]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(times):
            model(input_ids=ids)
    return [w for w in caught if "bfloat16" in str(w.message)]


def test_emulated_bf16_warns_once(model: RnaFmModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: False)
    caught = run(model.to(torch.bfloat16), times=3)
    assert len(caught) == 1
    assert issubclass(caught[0].category, RuntimeWarning)
    assert "float32" in str(caught[0].message)


def test_native_bf16_is_silent(model: RnaFmModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: True)
    assert run(model.to(torch.bfloat16), times=2) == []


def test_float32_is_silent(model: RnaFmModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda: False)
    assert run(model, times=2) == []


def test_probe_answers() -> None:
    assert isinstance(precision.native_bf16_cpu(), bool)
