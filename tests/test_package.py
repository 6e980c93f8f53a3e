"""What `import multimolecule` does and does not do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from multimolecule import RnaFmConfig


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_import_leaves_the_random_generators_alone():
    result = run_python(
        """
        import random, torch, numpy
        states = (torch.get_rng_state(), random.getstate(), numpy.random.get_state()[1].copy())
        import multimolecule
        assert torch.equal(states[0], torch.get_rng_state())
        assert states[1] == random.getstate()
        assert (states[2] == numpy.random.get_state()[1]).all()
        print("unchanged")
        """
    )
    assert result.stdout.strip() == "unchanged", result.stderr


def test_transformers_knows_the_families_only_after_the_import(tmp_path):
    RnaFmConfig(num_hidden_layers=1).save_pretrained(tmp_path)
    result = run_python(
        f"""
        from transformers import AutoConfig
        try:
            AutoConfig.from_pretrained({str(tmp_path)!r})
        except ValueError as error:
            print("before:", str(error).splitlines()[0])
        import multimolecule
        print("after:", type(AutoConfig.from_pretrained({str(tmp_path)!r})).__name__)
        """
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("before: The checkpoint you are trying to load has model type `rnafm`"), result.stderr
    assert lines[1] == "after: RnaFmConfig"


def test_every_package_of_the_tree_is_listed_for_installation():
    """`pip install .` (not -e) ships only the packages pyproject.toml lists: a family missing there would be
    absent from an installed multimolecule."""
    from pathlib import Path

    import tomllib

    root = Path(__file__).parents[1]
    listed = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    tree = {".".join(path.parent.relative_to(root).parts) for path in (root / "multimolecule").rglob("__init__.py")} | {
        "multimolecule.converters",
        "multimolecule.checkpoints",
    }
    assert len(listed) == len(set(listed)), "a package is listed twice"
    assert set(listed) == tree
