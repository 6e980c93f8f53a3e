"""The README's fine-tuning examples run on the shipped RNA-FM fixture and learn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import golden_case
from families import convert

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
import finetune


@pytest.fixture(scope="module")
def rnafm(tmp_path_factory):
    return str(convert(golden_case("rnafm", "rnafm"), tmp_path_factory.mktemp("rnafm")))


@pytest.mark.parametrize(("task", "metric"), [("sequence", "eval_pearson"), ("token", "eval_accuracy"),
                                              ("contact", "eval_accuracy")])  # fmt: skip
def test_finetune_example(rnafm, task, metric, tmp_path):
    metrics = finetune.TASKS[task](rnafm, output=str(tmp_path), steps=3)
    assert metrics[metric] == metrics[metric]  # a number, not NaN
    assert 0.0 <= abs(metrics[metric]) <= 1.0
