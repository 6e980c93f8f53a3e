"""Reading upstream checkpoint files without ever executing what they contain.

PyTorch files (zip or legacy; Lightning and fairseq checkpoints are both) go through
`torch.load(weights_only=True)`; plain pickles (e.g. PaddlePaddle `.pdparams`) through a restricted
unpickler. Both accept only an explicit allow-list of classes: tensors and plain containers, numpy arrays,
`argparse.Namespace`, plus what a family names. Anything else is refused before it is constructed, and so
is any attempt to change an allowed class or function itself (pickle's BUILD on a class object).

Whatever goes wrong while reading a file (missing, a directory, empty, truncated, corrupt, not a checkpoint
at all) is a `CheckpointError` that names the file and what was expected; a refusal is an
`UnsafeCheckpointError` that also names what the file asked for.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file as load_safetensors

from .errors import CheckpointError, UnsafeCheckpointError

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_EXPECTED = "a PyTorch checkpoint (zip or legacy), a pickle or a safetensors file"
_ALLOWED = "tensors, containers, numpy arrays, argparse.Namespace"


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
        # arrays pickled with protocol 5 (Python 3.14's default)
        "numpy.core.numeric._frombuffer": core.numeric._frombuffer,
        "numpy._core.numeric._frombuffer": core.numeric._frombuffer,
    }
    for dtype_class in vars(np.dtypes).values():
        if isinstance(dtype_class, type):
            names[f"numpy.dtypes.{dtype_class.__name__}"] = dtype_class
    return names


class _Refused(pickle.UnpicklingError):
    """The restricted unpickler met something a checkpoint has no reason to contain.

    `what` is a global ("GLOBAL module.name") or, with `build=True`, the class or function the file tried
    to modify.
    """

    def __init__(self, what: str, build: bool = False) -> None:
        super().__init__(f"refused: {what}")
        self.what, self.build = what, build


def _latin1_bytes(text: Any, encoding: Any) -> bytes:
    """How protocol 2 pickles `bytes` (numpy arrays included): `_codecs.encode(text, "latin1")`. No other codec."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r} (only latin1, which pickle writes, is allowed)")
    return text.encode("latin1")


SAFE_GLOBALS: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,
    "collections.OrderedDict": collections.OrderedDict,
    "_codecs.encode": _latin1_bytes,
    **_numpy_globals(),
}


class _BoundedReader:
    """A file that refuses to read more than is left in it.

    A pickle's length fields can claim any size; reading (and allocating) that much would exhaust memory
    long before the file runs out. No record in a file can be longer than the rest of the file.
    """

    def __init__(self, file) -> None:
        self.file = file
        self.size = os.fstat(file.fileno()).st_size

    def read(self, size: int = -1) -> bytes:
        left = self.size - self.file.tell()
        if size is not None and size > left:
            raise pickle.UnpicklingError(f"a length field asks for {size} bytes but only {left} are left in the file")
        return self.file.read(size)

    def readline(self) -> bytes:
        return self.file.readline()


class _RestrictedUnpickler(pickle._Unpickler):
    """pickle's own (pure Python) unpickler with an allow-list of globals, a guarded BUILD and bounded reads.

    The pure Python implementation is used because its opcode table can be extended: with the C one, BUILD
    on a class object (`argparse.Namespace` itself, not an instance) would set attributes of that class for
    the whole process. It reads large arrays as fast as the C one (one read per array).
    """

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, allowed: dict[str, Any]) -> None:
        reader = _BoundedReader(file)
        super().__init__(reader)
        self.allowed, self.size = allowed, reader.size

    def find_class(self, module: str, name: str) -> Any:
        written = f"{module}.{name}"
        qualified = _python3_name(module, name) if self.proto < 3 and self.fix_imports else written
        if qualified in self.allowed:
            return self.allowed[qualified]
        raise _Refused(_global(qualified, written))

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("a persistent id, which only a PyTorch file may hold")

    def _load_build(self) -> None:
        target = self.stack[-2] if len(self.stack) >= 2 else None
        if isinstance(target, type) or callable(target):
            qualified = next((name for name, obj in self.allowed.items() if obj is target), repr(target))
            raise _Refused(qualified, build=True)
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build

    def _load_bytearray8(self) -> None:
        # pickle allocates (and zero-fills) the claimed size before it reads: check the claim first
        (length,) = struct.unpack("<Q", self.read(8))
        if length > self.size:
            raise pickle.UnpicklingError(f"BYTEARRAY8 claims {length} bytes; the whole file has {self.size}")
        buffer = bytearray(length)
        self.readinto(buffer)
        self.append(buffer)

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8


def load_checkpoint(path: str | Path, extra_globals: dict[str, Any] | None = None) -> Any:
    """The deserialised content of an upstream checkpoint file (a dict of tensors, usually nested).

    `extra_globals` maps further qualified names ("module.Class") a family's format needs to the object
    that stands in for them.
    """
    path = Path(path)
    allowed = {**SAFE_GLOBALS, **(extra_globals or {})}
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; expected {_EXPECTED}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file; expected {_EXPECTED} (give the file)")
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} is not a regular file (a device, pipe or socket); expected {_EXPECTED}"
        )
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); expected {_EXPECTED}")
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as error:
        raise CheckpointError(f"could not open checkpoint {path}: {error.strerror or error}") from error
    try:
        if head.startswith(b"PK\x03\x04"):
            _check_archive(path)
            return _torch_load(path, allowed, mmap=True)
        if _looks_like_safetensors(head, size):
            return load_safetensors(str(path))
        if head[:1] == b"\x80":
            with path.open("rb") as file:
                first = _RestrictedUnpickler(file, allowed).load()
                trailing = file.read(1)
            if type(first) is int and first == _TORCH_LEGACY_MAGIC:
                return _torch_load(path, allowed, mmap=False)
            if trailing:
                raise CheckpointError(f"{path} holds more than one pickled object; expected {_EXPECTED}")
            return first
    except CheckpointError:
        raise
    except Exception as error:  # whatever a damaged or hostile file makes a parser raise
        raise _explain(path, error) from error
    raise CheckpointError(f"{path} is not a checkpoint: it starts with {head[:8]!r}; expected {_EXPECTED}")


def _check_archive(path: Path) -> None:
    """A zip file is a PyTorch checkpoint (not TorchScript, not another archive) and its records are intact.

    torch does not verify the CRC-32 each record carries, so a download damaged inside tensor data would
    otherwise load silently. Records written without a checksum (CRC 0) or compressed are left to torch.
    """
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        records = {member.filename.split("/", 1)[-1] for member in members}
        if "constants.pkl" in records or any(record.startswith("code/") for record in records):
            raise UnsafeCheckpointError(
                f"refused to load {path}: it is a TorchScript archive, a compiled program rather than a checkpoint "
                f"of weights, and loading it would run its code. Nothing in it was executed. Expected {_EXPECTED}; "
                "export the weights with torch.save(model.state_dict()) instead."
            )
        if "data.pkl" not in records:
            names = ", ".join(sorted(member.filename for member in members)[:5]) or "none"
            raise CheckpointError(
                f"{path} is a zip archive but not a PyTorch checkpoint: it has no data.pkl record (records: "
                f"{names}); expected {_EXPECTED}"
            )
        for member in members:
            if member.CRC == 0 or member.compress_type != zipfile.ZIP_STORED:
                continue
            try:
                with archive.open(member) as record:
                    while record.read(1 << 20):
                        pass
            except zipfile.BadZipFile as error:
                raise CheckpointError(
                    f"{path} is corrupt: record {member.filename} does not match its CRC-32 checksum ({error}), so "
                    f"bytes changed after it was written; expected {_EXPECTED}. Download it again."
                ) from error


def _torch_load(path: Path, allowed: dict[str, Any], mmap: bool) -> Any:
    safe = [(obj, name) for name, obj in allowed.items()]
    with torch.serialization.safe_globals(safe):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    header_length = int.from_bytes(head[:8], "little")
    return 0 < header_length < size and head[8:9] == b"{"


# torch's weights-only refusals: an unlisted or blocked global, BUILD on a class or function
_TORCH_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+?) (?:was not an allowed global|whose module)")
_TORCH_REFUSED_BUILD = re.compile(r"Can only build .* but got (<class '(?:type|function|builtin_function_or_method)'>)")


def _python3_name(module: str, name: str) -> str:
    """The Python 3 name of a global a protocol 0-2 pickle names the Python 2 way, as pickle resolves it."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _global(qualified: str, written: str) -> str:
    return f"GLOBAL {qualified}" + (f" (written as {written})" if written != qualified else "")


def _explain(path: Path, error: Exception) -> CheckpointError:
    message = str(error)
    refused, modified = None, None
    if isinstance(error, _Refused):
        refused, modified = (None, error.what) if error.build else (error.what, None)
    elif isinstance(error, pickle.UnpicklingError):
        if match := _TORCH_REFUSED_GLOBAL.search(message):
            written = match.group(1) if "." in match.group(1) else f"builtins.{match.group(1)}"  # torch drops it
            refused = _global(_python3_name(*written.rsplit(".", 1)), written)
        elif match := _TORCH_REFUSED_BUILD.search(message):
            modified = f"a class or function (torch reports {match.group(1)})"
    if refused:
        return UnsafeCheckpointError(
            f"refused to load {path}: it asks for {refused}, which is not on the allow-list of what a checkpoint "
            f"may contain ({_ALLOWED}). Nothing in it was executed. If the file is trustworthy and this class is "
            "plain data, add it to the converter's extra_globals."
        )
    if modified:
        return UnsafeCheckpointError(
            f"refused to load {path}: it tries to set attributes of {modified} (pickle BUILD on the class or "
            "function itself, not on an instance), which would change it for the whole process; a checkpoint has "
            "no reason to. Nothing in it was executed."
        )
    return CheckpointError(
        f"could not read {path} ({path.stat().st_size} bytes): it looks truncated or corrupt "
        f"({type(error).__name__}: {_detail(message)}); expected {_EXPECTED}. Download it again."
    )


def _detail(message: str, limit: int = 200) -> str:
    """The cause in one line, without torch's advice to load the file with weights_only=False."""
    if "Weights only load failed" in message:
        if "WeightsUnpickler error:" in message:
            message = message.split("WeightsUnpickler error:", 1)[1]
        else:
            message = message.split("\n\n", 1)[-1]
        message = message.split("Check the documentation of torch.load", 1)[0]
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    detail = lines[0] if lines else "no detail"
    return detail if len(detail) <= limit else detail[:limit] + "..."
