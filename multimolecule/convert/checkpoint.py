"""Reading upstream checkpoint files without ever executing what they contain.

PyTorch files (zip or legacy; Lightning and fairseq checkpoints are both) go through
`torch.load(weights_only=True)`; plain pickles (e.g. PaddlePaddle `.pdparams`) through a restricted
unpickler. Both accept only an explicit allow-list of classes: tensors and plain containers, numpy arrays,
`argparse.Namespace`, plus what a family names. Anything else is refused before it is constructed.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file as load_safetensors

from .errors import CheckpointError, UnsafeCheckpointError

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_EXPECTED = "a PyTorch checkpoint (zip or legacy), a pickle or a safetensors file"


def _numpy_globals() -> dict[str, Any]:
    """numpy's array and scalar reconstruction, under both its old and new module names."""
    core = getattr(np, "_core", None) or np.core
    names = {
        "numpy.dtype": np.dtype,
        "numpy.ndarray": np.ndarray,
        "numpy.core.multiarray._reconstruct": core.multiarray._reconstruct,
        "numpy._core.multiarray._reconstruct": core.multiarray._reconstruct,
        "numpy.core.multiarray.scalar": core.multiarray.scalar,
        "numpy._core.multiarray.scalar": core.multiarray.scalar,
    }
    for dtype_class in vars(np.dtypes).values():
        if isinstance(dtype_class, type):
            names[f"numpy.dtypes.{dtype_class.__name__}"] = dtype_class
    return names


SAFE_GLOBALS: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,
    "collections.OrderedDict": collections.OrderedDict,
    **_numpy_globals(),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: dict[str, Any]) -> None:
        super().__init__(file)
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified in self.allowed:
            return self.allowed[qualified]
        raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {qualified}")


def load_checkpoint(path: str | Path, extra_globals: dict[str, Any] | None = None) -> Any:
    """The deserialised content of an upstream checkpoint file (a dict of tensors, usually nested).

    `extra_globals` maps further qualified names ("module.Class") a family's format needs to the object
    that stands in for them.
    """
    path = Path(path)
    allowed = {**SAFE_GLOBALS, **(extra_globals or {})}
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist (or is not a file)")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); expected {_EXPECTED}")
    with path.open("rb") as file:
        head = file.read(16)
    try:
        if head.startswith(b"PK\x03\x04"):
            return _torch_load(path, allowed, mmap=True)
        if _looks_like_safetensors(head, size):
            return load_safetensors(str(path))
        if head[:1] == b"\x80":
            with path.open("rb") as file:
                first = _RestrictedUnpickler(file, allowed).load()
                trailing = file.read(1)
            if first == _TORCH_LEGACY_MAGIC:
                return _torch_load(path, allowed, mmap=False)
            if trailing:
                raise CheckpointError(f"{path} holds more than one pickled object; expected {_EXPECTED}")
            return first
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError, TypeError, AttributeError) as error:
        raise _explain(path, error) from error
    raise CheckpointError(f"{path} is not a checkpoint: it starts with {head[:8]!r}; expected {_EXPECTED}")


def _torch_load(path: Path, allowed: dict[str, Any], mmap: bool) -> Any:
    safe = [(obj, name) for name, obj in allowed.items()]
    with torch.serialization.safe_globals(safe):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    header_length = int.from_bytes(head[:8], "little")
    return 0 < header_length < size and head[8:9] == b"{"


def _explain(path: Path, error: Exception) -> CheckpointError:
    message = str(error)
    refused = re.search(r"GLOBAL ([\w.]+)", message)
    if refused:
        return UnsafeCheckpointError(
            f"refused to load {path}: it asks for {refused.group(1)}, which is not on the allow-list of what a "
            "checkpoint may contain (tensors, containers, numpy arrays, argparse.Namespace). Nothing in it was "
            "executed. If the file is trustworthy and this class is plain data, add it to the converter's "
            "extra_globals."
        )
    return CheckpointError(
        f"could not read {path} ({path.stat().st_size} bytes): it looks truncated or corrupt "
        f"({type(error).__name__}: {message.strip().splitlines()[0] if message.strip() else 'no detail'}); "
        f"expected {_EXPECTED}. Download it again."
    )

