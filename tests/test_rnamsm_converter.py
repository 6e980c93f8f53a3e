"""RNA-MSM's Lightning container: the authors' script classes it pickles load as inert placeholders (and nothing
else does), the head count is read from them and checked against the tensors."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import golden_case, run_convert
from multimolecule.converters.rnamsm import SCRIPT_CLASSES, ScriptConfig

from multimolecule.convert.checkpoint import load_checkpoint
from multimolecule.convert.errors import UnsafeCheckpointError

CASE = golden_case("rnamsm", "rnamsm")


def test_script_classes_load_as_placeholders_holding_only_their_attributes():
    content = load_checkpoint(CASE.checkpoint, SCRIPT_CLASSES)
    hyperparameters = content["hyper_parameters"]
    assert {name: type(value).__name__ for name, value in hyperparameters.items()} == {
        "data": "DataConfig",
        "model": "MSATransformerModelConfig",
        "optimizer": "OptimizerConfig",
        "train": "TrainConfig",
        "logging": "LoggingConfig",
    }
    assert all(isinstance(value, ScriptConfig) for value in hyperparameters.values())
    model = vars(hyperparameters["model"])
    expected = CASE.meta["hyperparameters"]
    assert {name: model[name] for name in ("embed_dim", "num_attention_heads", "num_layers")} == {
        name: expected[name] for name in ("embed_dim", "num_attention_heads", "num_layers")
    }
    assert [name for name in vars(ScriptConfig) if not name.startswith("__")] == []  # no behaviour to run


def _lightning_file(tmp_path, monkeypatch, name: str, **attributes):
    """The fixture's state dict with hyper_parameters['model'] pickled as an object of `__main__.<name>`."""
    script_class = type(name, (), {"__module__": "__main__"})
    monkeypatch.setattr(sys.modules["__main__"], name, script_class, raising=False)
    obj = script_class()
    vars(obj).update(attributes)
    state = load_checkpoint(CASE.checkpoint, SCRIPT_CLASSES)["state_dict"]
    path = tmp_path / "RNA_MSM_pretrained.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {"model": obj}}, path)
    return path


def test_any_other_main_class_is_refused(tmp_path, monkeypatch):
    path = _lightning_file(tmp_path, monkeypatch, "Payload", embed_dim=32)
    with pytest.raises(UnsafeCheckpointError, match=r"GLOBAL __main__\.Payload"):
        load_checkpoint(path, SCRIPT_CLASSES)


def test_a_head_count_the_tensors_contradict_is_one_error(tmp_path, monkeypatch, capsys):
    path = _lightning_file(
        tmp_path, monkeypatch, "MSATransformerModelConfig", embed_dim=32, num_attention_heads=8, num_layers=2
    )
    assert run_convert("rnamsm", "--checkpoint", path, "--output", tmp_path / "out", "--no-verify") == 1
    error = capsys.readouterr().err
    assert "num_attention_heads=8 but its tensors say 4" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()
