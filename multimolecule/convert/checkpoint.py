"""Reading upstream checkpoint files without ever executing what they contain, in bounded memory.

PyTorch files (zip or legacy; Lightning and fairseq checkpoints are both) go through
`torch.load(weights_only=True)`; plain pickles (e.g. PaddlePaddle `.pdparams`) through a restricted
unpickler. Both accept only an explicit allow-list of classes: tensors and plain containers, numpy arrays,
`argparse.Namespace`, plus what a family names. Anything else is refused before it is constructed, and so
is any attempt to change an allowed class or function itself (pickle's BUILD on a class object).

numpy is never handed what a file says: the allow-list names stand-ins (`_numpy_dtype`, `_numpy_reconstruct`,
`_numpy_scalar`, `_numpy_frombuffer`) that accept plain numeric and bool dtypes only, check that shape and
byte count agree, and build arrays with `np.frombuffer`. numpy's own `__setstate__`, which trusts field
offsets and object pointers it is given, is never called on a file's data.

Before either unpickler runs, every pickle of the file (a plain pickle, a zip's `data.pkl`, a legacy file's
pickles) is scanned opcode by opcode without building anything. The scan refuses
- containers nested more than `MAX_NESTING` levels (hashing a million-deep tuple crashes Python), and
- a pickle whose objects would take more than `memory_budget(size)` = `MEMORY_PER_FILE_BYTE` x the file's
  size + `MEMORY_BASE`: reading a file of S bytes allocates at most 16 S + 64 MiB, however it is built,
  besides the tensor data itself (a zip's is memory-mapped; a legacy file's storages torch allocates at
  the sizes the file declares, which this module does not check).
Zip records may not declare more inflated bytes than that budget either, a safetensors header is bounded
(`SAFETENSORS_MAX_HEADER` bytes, `SAFETENSORS_MAX_TENSORS` entries), and after loading every tensor is
checked to lie inside its storage without overlapping itself (`_Finisher`).

Whatever goes wrong while reading a file (missing, a directory, empty, truncated, corrupt, not a checkpoint
at all, over a bound) is a `CheckpointError` that names the file and what was expected or refused; a
refusal of something a checkpoint has no reason to contain is an `UnsafeCheckpointError` that also names
what the file asked for.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import collections
import io
import json
import math
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

from .digest import check_crcs, stored_records
from .errors import EXPECTED_CHECKPOINT, CheckpointError, UnsafeCheckpointError

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_EXPECTED = EXPECTED_CHECKPOINT
_ALLOWED = "tensors, containers, numpy arrays, argparse.Namespace"

MAX_NESTING = 100  # container levels; a checkpoint needs about ten
MEMORY_PER_FILE_BYTE = 16
MEMORY_BASE = 64 << 20
SAFETENSORS_MAX_HEADER = 16 << 20  # bytes of JSON; a model of 10,000 tensors needs about 2 MiB
SAFETENSORS_MAX_TENSORS = 16_384
TENSOR_BYTES_PER_FILE_BYTE = 4  # all tensors together, views of one storage each counted
NUMPY_DTYPES = frozenset({"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"})
_MIB = 1 << 20


def memory_budget(size: int) -> int:
    """The most memory reading a file of `size` bytes may take, besides its tensor data."""
    return MEMORY_PER_FILE_BYTE * size + MEMORY_BASE


# ------------------------------------------------------------------------------------------ refusals


class _Refused(Exception):
    """The reader met something a checkpoint has no reason to contain.

    `what` is a global ("GLOBAL module.name") or, with `build=True`, the class or function the file tried
    to modify. Not an `UnpicklingError`, so that torch passes it on unchanged.
    """

    def __init__(self, what: str, build: bool = False) -> None:
        super().__init__(f"refused: {what}")
        self.what, self.build = what, build


class _Unsound(Exception):
    """The file declares something no checkpoint of weights can be: `reason` completes "refused to load X: ".

    `unsafe` marks what only a crafted file does (numpy state that would crash or read memory); the rest
    (too deep, too big) is a plain `CheckpointError`.
    """

    def __init__(self, reason: str, unsafe: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.unsafe = reason, unsafe


# ------------------------------------------------------------------------------------ numpy stand-ins


class _PendingDtype:
    """What `numpy.dtype(name, align, copy)` returns while unpickling: BUILD then sets its byte order."""

    value: np.dtype | None = None
    built = False

    def __init__(self, value: np.dtype) -> None:
        self.value = value

    def __setstate__(self, state: Any) -> None:
        if self.value is None or self.built:
            raise _Unsound("it sets the state of a numpy dtype twice, or of one it never made", unsafe=True)
        self.value, self.built = _dtype_with_state(self.value, state), True


class _PendingArray:
    """What `_reconstruct(ndarray, (0,), b'b')` returns while unpickling: BUILD then supplies shape and bytes."""

    value: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.value is not None:
            raise _Unsound("it sets the state of a numpy array twice", unsafe=True)
        self.value = _array_from_state(state)


class _NumpyNdarray:
    """Stands in for `numpy.ndarray`: a pickle names it as the type `_reconstruct` rebuilds, never calls it."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _NumpyNdarray:
        raise _Unsound(
            "it calls numpy.ndarray(...) directly, which allocates whatever shape and dtype the file names "
            "(arrays are read only from their pickled bytes)",
            unsafe=True,
        )


def _numpy_dtype(name: Any, align: Any = False, copy: Any = False) -> _PendingDtype:
    if type(name) is not str or name not in NUMPY_DTYPES:
        raise _Unsound(
            f"it asks numpy for dtype {_short(name)}; only plain numeric and bool dtypes "
            f"({', '.join(sorted(NUMPY_DTYPES))}) are read, never objects, records, strings or sub-arrays",
            unsafe=True,
        )
    return _PendingDtype(np.dtype(name))


def _numpy_reconstruct(subtype: Any, shape: Any, typecode: Any) -> _PendingArray:
    if subtype is not _NumpyNdarray or not _exactly(shape, (0,)) or not _exactly(typecode, b"b"):
        raise _Unsound("it calls numpy's _reconstruct with arguments numpy itself never writes", unsafe=True)
    return _PendingArray()


def _numpy_scalar(dtype: Any, raw: Any = None) -> np.generic:
    value = _resolved_dtype(dtype)
    if type(raw) is not bytes or len(raw) != value.itemsize:
        raise _Unsound(
            f"a numpy {value} scalar needs {value.itemsize} bytes; the file gives {_short(raw)}", unsafe=True
        )
    return np.frombuffer(raw, dtype=value)[0]


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not (_exactly(order, "C") or _exactly(order, "F")):
        raise _Unsound(f"a numpy array in order {_short(order)}, which numpy never writes", unsafe=True)
    return _array(buffer, _resolved_dtype(dtype), _shape(shape), order)


def _dtype_with_state(dtype: np.dtype, state: Any) -> np.dtype:
    """`dtype` in the byte order `state` names, once the rest of the state is that of a plain dtype."""
    if (
        type(state) is not tuple
        or len(state) != 8
        or not _exactly(state[:1] + state[2:], (3, None, None, None, -1, -1, 0))
    ):
        raise _Unsound(
            f"it gives numpy dtype {dtype} the state {_short(state)}; only a plain dtype's state "
            "(3, byte order, None, None, None, -1, -1, 0) is accepted, never fields, offsets or sub-arrays",
            unsafe=True,
        )
    if type(state[1]) is not str or state[1] not in ("<", ">", "=", "|"):
        raise _Unsound(f"numpy byte order {_short(state[1])} does not exist", unsafe=True)
    return dtype.newbyteorder(state[1]) if state[1] in "<>" else dtype


def _resolved_dtype(dtype: Any) -> np.dtype:
    if type(dtype) is not _PendingDtype or dtype.value is None:
        raise _Unsound(f"a numpy array or scalar whose dtype is {_short(dtype)}, not a numpy dtype", unsafe=True)
    return dtype.value


def _array_from_state(state: Any) -> np.ndarray:
    """The array numpy's `__setstate__` would make of `(version, shape, dtype, is_fortran, bytes)`, checked."""
    if type(state) is tuple and len(state) == 5 and _exactly(state[0], 1):
        state = state[1:]
    if type(state) is not tuple or len(state) != 4 or type(state[2]) is not bool:
        raise _Unsound(
            f"it gives a numpy array the state {_short(state)}; expected (1, shape, dtype, is_fortran, bytes)",
            unsafe=True,
        )
    shape, dtype, fortran, raw = state
    return _array(raw, _resolved_dtype(dtype), _shape(shape), "F" if fortran else "C")


def _shape(shape: Any) -> tuple[int, ...]:
    if type(shape) is not tuple or len(shape) > 32 or any(type(n) is not int or not 0 <= n < 2**40 for n in shape):
        raise _Unsound(f"a numpy array of shape {_short(shape)}, which is not a shape", unsafe=True)
    return shape


def _array(raw: Any, dtype: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    if type(raw) not in (bytes, bytearray):
        raise _Unsound(f"a numpy array whose data is {_short(raw)}, not bytes", unsafe=True)
    needed = math.prod(shape) * dtype.itemsize
    if needed != len(raw):
        raise _Unsound(
            f"a numpy array of shape {shape} and dtype {dtype} needs {needed} bytes; the file gives {len(raw)}",
            unsafe=True,
        )
    data = bytearray(raw) if type(raw) is bytes else raw  # writable, as numpy's own unpickling makes it
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def _exactly(value: Any, expected: Any) -> bool:
    """`value == expected`, and of the same plain types throughout: a file's arrays never get compared."""
    if type(value) is not type(expected):
        return False
    if type(expected) is tuple:
        return len(value) == len(expected) and all(map(_exactly, value, expected))
    return value == expected


def _short(value: Any, limit: int = 80) -> str:
    """A value for a message: its repr, cut short (a file can put megabytes where a name belongs)."""
    if isinstance(value, bytes | bytearray | str) and len(value) > limit:
        return f"{type(value).__name__} of length {len(value)}"
    text = repr(value) if isinstance(value, str | bytes | int | float | bool | tuple | type(None)) else None
    if text is None:
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def _latin1_bytes(text: Any, encoding: Any) -> bytes:
    """How protocol 2 pickles `bytes` (numpy arrays included): `_codecs.encode(text, "latin1")`. No other codec."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r} (only latin1, which pickle writes, is allowed)")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """How protocol 2 pickles `b""` (an empty array's data): `bytes()`. Never `bytes(n)`, n zero bytes."""
    if args:
        raise _Refused(f"builtins.bytes with arguments {_short(args)} (only bytes(), which pickle writes, is allowed)")
    return b""


def _numpy_globals() -> dict[str, Any]:
    """The stand-ins, under numpy's old and new module names."""
    names: dict[str, Any] = {"numpy.dtype": _numpy_dtype, "numpy.ndarray": _NumpyNdarray}
    for core in ("numpy.core", "numpy._core"):
        names[f"{core}.multiarray._reconstruct"] = _numpy_reconstruct
        names[f"{core}.multiarray.scalar"] = _numpy_scalar
        names[f"{core}.numeric._frombuffer"] = _numpy_frombuffer  # protocol 5 (Python 3.14's default)
    return names


SAFE_GLOBALS: dict[str, Any] = {
    "argparse.Namespace": argparse.Namespace,
    "collections.OrderedDict": collections.OrderedDict,
    "_codecs.encode": _latin1_bytes,
    "builtins.bytes": _empty_bytes,
    **_numpy_globals(),
}
# BUILD reaches these through torch only when they are on its allow-list; no file names them
_PENDING = {f"{__name__}.{cls.__name__}": cls for cls in (_PendingDtype, _PendingArray)}
# torch lets any file call bytearray(n): n bytes, zero-filled, whatever n is
_TORCH_REFUSED = frozenset({"builtins.bytearray"})


# -------------------------------------------------------------------------------------------- scanning


class _Node:
    """A container, or an object a call builds, as the scan sees it.

    `depth`: how deeply it nests; `length`: its items (pairs for a dict); `size`: bytes of data it holds (a
    call's result: what it copied; a tuple: its atoms). A tuple keeps its container `items` (None for
    anything else), which a call may copy in turn. Atoms (numbers, strings, globals, the empty tuple) are
    plain ints on the scan's stack: the bytes they take. The scan's own memory stays well under what it
    charges: empty containers share `_EMPTY` until something adds to them or names them twice.
    """

    __slots__ = ("depth", "items", "length", "size")

    def __init__(self, depth: int = 1, length: int = 0, size: int = 0, items: tuple | None = None) -> None:
        self.depth, self.length, self.size, self.items = depth, length, size, items


_EMPTY = _Node()


def _depth(item: Any) -> int:
    return item.depth if type(item) is _Node else 0


def _copied(item: Any) -> int:
    """Bytes a call allocates to copy `item` into what it builds (an atom's data, a container's entries)."""
    return item if type(item) is not _Node else item.size + 104 * item.length


def _passed(arguments: Any) -> list[Any]:
    """What a call receives from its argument tuple (or a BUILD from its state): the items, or the whole."""
    if type(arguments) is _Node and arguments.items is not None:
        return [arguments.size, *arguments.items]
    return [arguments]


# opcode -> (argument, action, bytes charged). An argument is a struct format, "data:<format>" for a
# length followed by that many bytes, "line" / "lines" for protocol 0's newline-terminated text, or
# "frame". The charges are upper estimates of what CPython allocates for what the opcode makes.
_OPCODES: dict[bytes, tuple[str | None, str, int]] = {
    pickle.MARK: (None, "mark", 64),
    pickle.STOP: (None, "nop", 0),
    pickle.POP: (None, "pop", 0),
    pickle.POP_MARK: (None, "pop_mark", 0),
    pickle.DUP: (None, "dup", 8),
    pickle.FLOAT: ("line", "text", 32),
    pickle.INT: ("line", "text", 32),
    pickle.LONG: ("line", "text", 32),
    pickle.STRING: ("line", "text", 64),
    pickle.UNICODE: ("line", "text", 64),
    pickle.PERSID: ("line", "text", 256),
    pickle.BININT: ("<i", "atom", 32),
    pickle.BININT1: ("<B", "atom", 8),
    pickle.BININT2: ("<H", "atom", 32),
    pickle.BINFLOAT: (">d", "atom", 32),
    pickle.NONE: (None, "atom", 8),
    pickle.NEWTRUE: (None, "atom", 8),
    pickle.NEWFALSE: (None, "atom", 8),
    pickle.EXT1: ("<B", "atom", 64),
    pickle.EXT2: ("<H", "atom", 64),
    pickle.EXT4: ("<i", "atom", 64),
    pickle.NEXT_BUFFER: (None, "atom", 64),
    pickle.LONG1: ("data:<B", "data", 32),
    pickle.LONG4: ("data:<i", "data", 32),
    pickle.BINSTRING: ("data:<i", "data", 64),
    pickle.SHORT_BINSTRING: ("data:<B", "data", 64),
    pickle.BINUNICODE: ("data:<I", "data", 64),
    pickle.SHORT_BINUNICODE: ("data:<B", "data", 64),
    pickle.BINUNICODE8: ("data:<Q", "data", 64),
    pickle.BINBYTES: ("data:<I", "data", 40),
    pickle.SHORT_BINBYTES: ("data:<B", "data", 40),
    pickle.BINBYTES8: ("data:<Q", "data", 40),
    pickle.BYTEARRAY8: ("data:<Q", "data", 64),
    pickle.GLOBAL: ("lines", "global_", 64),
    pickle.STACK_GLOBAL: (None, "stack_global", 64),
    pickle.BINPERSID: (None, "persid", 256),
    pickle.EMPTY_TUPLE: (None, "atom", 8),
    pickle.EMPTY_LIST: (None, "empty", 64),
    pickle.EMPTY_DICT: (None, "empty", 72),
    pickle.EMPTY_SET: (None, "empty", 224),
    pickle.TUPLE: (None, "tuple_", 64),
    pickle.TUPLE1: (None, "tuple1", 72),
    pickle.TUPLE2: (None, "tuple2", 80),
    pickle.TUPLE3: (None, "tuple3", 88),
    pickle.LIST: (None, "list_", 64),
    pickle.DICT: (None, "dict_", 72),
    pickle.FROZENSET: (None, "frozenset_", 224),
    pickle.APPEND: (None, "append", 16),
    pickle.APPENDS: (None, "appends", 0),
    pickle.SETITEM: (None, "setitem", 104),
    pickle.SETITEMS: (None, "setitems", 0),
    pickle.ADDITEMS: (None, "additems", 0),
    pickle.BUILD: (None, "build", 512),
    pickle.REDUCE: (None, "call", 512),
    pickle.NEWOBJ: (None, "call", 512),
    pickle.NEWOBJ_EX: (None, "call_ex", 512),
    pickle.INST: ("lines", "inst", 512),
    pickle.OBJ: (None, "obj", 512),
    pickle.PUT: ("line", "put", 160),
    pickle.BINPUT: ("<B", "put", 160),
    pickle.LONG_BINPUT: ("<I", "put", 160),
    pickle.MEMOIZE: (None, "memoize", 160),
    pickle.GET: ("line", "get", 8),
    pickle.BINGET: ("<B", "get", 8),
    pickle.LONG_BINGET: ("<I", "get", 8),
    pickle.PROTO: ("<B", "nop", 0),
    pickle.FRAME: ("frame", "nop", 0),
    pickle.READONLY_BUFFER: (None, "nop", 0),
}
# bytes per item a container gains: list and tuple slots, dict entries (pairs), set entries
_PER_ITEM = {"list": 16, "tuple": 8, "dict": 104, "set": 64}
_TOO_DEEP = f"it nests containers more than {MAX_NESTING} levels deep (a checkpoint needs about ten)"


class _Budget:
    """Memory one file may make the reader allocate (`memory_budget`), charged as its records are read.

    The charges are estimates of what CPython allocates; the allocator adds to them (a large memo, a dict
    resized), so the estimates may reach two thirds of the bound.
    """

    def __init__(self, size: int) -> None:
        self.size, self.bound, self.spent = size, memory_budget(size), 0
        self.limit = self.bound * 2 // 3

    def check(self, what: str = "unpickling it") -> None:
        if self.spent > self.limit:
            raise _Unsound(
                f"{what} would take more than {self.bound // _MIB} MiB of memory, the bound for a file of "
                f"{self.size} bytes ({MEMORY_PER_FILE_BYTE} x its size + {MEMORY_BASE // _MIB} MiB); a checkpoint "
                "of weights holds far fewer objects"
            )


class _PickleScan:
    """One pickle's opcodes, walked without building anything: how deep it nests, how much it allocates.

    Refuses nesting deeper than `MAX_NESTING` (hashing a deeper tuple overflows the C stack), allocations
    over the budget, length fields longer than what is left of the file, and (for torch) the globals in
    `refused`. A container that grows after a parent was built (APPEND to a list already inside a tuple)
    is not re-measured here; `_Finisher` measures the loaded result.
    """

    def __init__(self, file, end: int, budget: _Budget, refused: frozenset[str] = frozenset()) -> None:
        self.file, self.end, self.budget, self.refused = file, end, budget, refused
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[Any, Any] = {}

    def run(self) -> None:
        read, budget = self.file.read, self.budget
        handlers = {code: (arg, getattr(self, action), cost) for code, (arg, action, cost) in _OPCODES.items()}
        while True:
            code = read(1)
            if code not in handlers:
                raise pickle.UnpicklingError(f"invalid pickle opcode {code!r}" if code else "the pickle is cut short")
            if code == pickle.STOP:
                return
            argument, handle, cost = handlers[code]
            handle(self._argument(argument) if argument else None)
            budget.spent += cost
            if budget.spent > budget.limit:
                budget.check()

    # arguments
    def _argument(self, kind: str) -> Any:
        if kind == "line":
            return self._line()
        if kind == "lines":
            return self._line(), self._line()
        if kind == "frame":
            return self._length(self._unpack("<Q"))
        if kind.startswith("data:"):
            length = self._length(self._unpack(kind[5:]))
            self.file.seek(length, io.SEEK_CUR)
            return length
        return self._unpack(kind)

    def _unpack(self, fmt: str) -> Any:
        raw = self.file.read(struct.calcsize(fmt))
        if len(raw) != struct.calcsize(fmt):
            raise pickle.UnpicklingError("the pickle is cut short")
        return struct.unpack(fmt, raw)[0]

    def _line(self) -> bytes:
        line = self.file.readline()
        if not line.endswith(b"\n"):
            raise pickle.UnpicklingError("the pickle is cut short inside a text argument")
        return line

    def _length(self, length: int) -> int:
        left = self.end - self.file.tell()
        if not 0 <= length <= left:
            raise pickle.UnpicklingError(f"a length field asks for {length} bytes but only {left} are left in the file")
        return length

    # the stack
    def _pop(self) -> Any:
        if not self.stack:
            raise pickle.UnpicklingError("the pickle takes from an empty stack")
        return self.stack.pop()

    def _pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise pickle.UnpicklingError("the pickle has no MARK where it needs one")
        items, self.stack = self.stack, self.metastack.pop()
        return items

    def _push(self, node: _Node) -> None:
        if node.depth > MAX_NESTING:
            raise _Unsound(_TOO_DEEP)
        self.stack.append(node)

    def _container(self, items: list[Any], kind: str) -> None:
        self.budget.spent += _PER_ITEM[kind] * len(items)
        depth = 1 + max(map(_depth, items), default=0)
        if kind == "tuple":
            nodes = tuple(item for item in items if type(item) is _Node)
            atoms = sum(item for item in items if type(item) is not _Node)
            self._push(_Node(depth, len(items), atoms, nodes))
        else:
            self._push(_Node(depth, len(items) // 2 if kind == "dict" else len(items)))

    def _own(self) -> _Node | None:
        """The container on top of the stack as a node of its own (not the shared `_EMPTY`), if one is there."""
        if not self.stack:
            return None
        if self.stack[-1] is _EMPTY:
            self.stack[-1] = _Node()
        return self.stack[-1] if type(self.stack[-1]) is _Node else None

    def _grow(self, items: list[Any], kind: str) -> None:
        """Items added to the container on top of the stack (APPEND, SETITEM(S), ADDITEMS, BUILD)."""
        if not self.stack:
            raise pickle.UnpicklingError("the pickle adds to a container that is not there")
        node = self._own()
        if node is None:  # an atom: the real unpickler fails here; the scan carries on
            node = self.stack[-1] = _Node()
        added = len(items) // 2 if kind == "dict" else len(items)
        self.budget.spent += _PER_ITEM[kind] * added
        node.length += added
        node.depth = max(node.depth, 1 + max(map(_depth, items), default=0))
        if node.depth > MAX_NESTING:
            raise _Unsound(_TOO_DEEP)

    def _call(self, arguments: list[Any]) -> None:
        """A call (or class instantiation) builds something from copies of what it is passed."""
        passed = [item for argument in arguments for item in _passed(argument)]
        self.budget.spent += sum(map(_copied, passed))
        length = sum(item.length for item in passed if type(item) is _Node)
        size = sum(item.size if type(item) is _Node else item for item in passed)
        self._push(_Node(1 + max(map(_depth, arguments), default=0), length, size))

    # actions, as _OPCODES names them
    def nop(self, value: Any) -> None:
        pass

    def atom(self, value: Any) -> None:
        self.stack.append(8)

    def data(self, length: int) -> None:
        self.budget.spent += length
        self.stack.append(length + 8)

    def text(self, line: bytes) -> None:
        self.budget.spent += 4 * len(line)  # up to 4 bytes a character once decoded
        self.stack.append(4 * len(line))

    def mark(self, value: None) -> None:
        if len(self.metastack) >= MAX_NESTING:
            raise _Unsound(_TOO_DEEP)
        self.metastack.append(self.stack)
        self.stack = []

    def pop(self, value: None) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self._pop_mark()

    def pop_mark(self, value: None) -> None:
        self._pop_mark()

    def dup(self, value: None) -> None:
        self._own()
        item = self._pop()
        self.stack += [item, item]

    def empty(self, value: None) -> None:
        self.stack.append(_EMPTY)

    def tuple_(self, value: None) -> None:
        self._container(self._pop_mark(), "tuple")

    def tuple1(self, value: None) -> None:
        self._container([self._pop()], "tuple")

    def tuple2(self, value: None) -> None:
        second = self._pop()
        self._container([self._pop(), second], "tuple")

    def tuple3(self, value: None) -> None:
        third, second = self._pop(), self._pop()
        self._container([self._pop(), second, third], "tuple")

    def list_(self, value: None) -> None:
        self._container(self._pop_mark(), "list")

    def dict_(self, value: None) -> None:
        self._container(self._pop_mark(), "dict")

    def frozenset_(self, value: None) -> None:
        self._container(self._pop_mark(), "set")

    def append(self, value: None) -> None:
        self._grow([self._pop()], "list")

    def appends(self, value: None) -> None:
        self._grow(self._pop_mark(), "list")

    def setitem(self, value: None) -> None:
        item, key = self._pop(), self._pop()
        self._grow([key, item], "dict")

    def setitems(self, value: None) -> None:
        self._grow(self._pop_mark(), "dict")

    def additems(self, value: None) -> None:
        self._grow(self._pop_mark(), "set")

    def build(self, value: None) -> None:
        state = self._pop()
        self.budget.spent += sum(map(_copied, _passed(state)))
        self._grow([state], "tuple")

    def call(self, value: None) -> None:  # REDUCE, NEWOBJ: the callable or class, then its argument tuple
        arguments = self._pop()
        self._pop()
        self._call([arguments])

    def call_ex(self, value: None) -> None:  # NEWOBJ_EX: class, arguments, keyword arguments
        keywords, arguments = self._pop(), self._pop()
        self._pop()
        self._call([arguments, keywords])

    def obj(self, value: None) -> None:  # OBJ: the class and its arguments after a MARK
        self.tuple_(None)
        self._call([self.stack.pop()])

    def inst(self, names: tuple[bytes, bytes]) -> None:  # INST: the class in-line, its arguments after a MARK
        self._check_global(names)
        self.tuple_(None)
        self._call([self.stack.pop()])

    def global_(self, names: tuple[bytes, bytes]) -> None:
        self._check_global(names)
        self.stack.append(64)

    def _check_global(self, names: tuple[bytes, bytes]) -> None:
        module, name = (part[:-1].decode("utf-8", "replace") for part in names)
        qualified = _python3_name(module, name)
        if qualified in self.refused:
            raise _Refused(_global(qualified, f"{module}.{name}"))

    def stack_global(self, value: None) -> None:
        self._pop()
        self._pop()
        self.stack.append(64)

    def persid(self, value: None) -> None:
        self._pop()
        self.stack.append(256)

    def put(self, key: Any) -> None:
        key = _memo_key(key)
        if not self.stack:
            raise pickle.UnpicklingError("the pickle memoizes from an empty stack")
        self._own()
        self.memo[key] = self.stack[-1]

    def memoize(self, value: None) -> None:
        self.put(len(self.memo))

    def get(self, key: Any) -> None:
        key = _memo_key(key)
        if key not in self.memo:
            raise pickle.UnpicklingError(f"the pickle refers to memo entry {_short(key)}, which it never stored")
        self.stack.append(self.memo[key])


def _memo_key(key: int | bytes) -> int:
    """PUT and GET name the entry in text ("12\\n"), their binary forms as a number: both are one memo."""
    try:
        return int(key)
    except ValueError:
        raise pickle.UnpicklingError(f"the pickle names memo entry {_short(key)}, which is not a number") from None


def _scan_pickles(file, end: int, budget: _Budget, count: int = 1, refused: frozenset[str] = frozenset()) -> None:
    """Scan `count` consecutive pickles from the file's position (a legacy torch file holds five)."""
    for _ in range(count):
        _PickleScan(file, end, budget, refused).run()


# ------------------------------------------------------------------------------------------- unpickling


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
    the whole process. BUILD is allowed on instances of the allowed classes and on the numpy stand-ins'
    placeholders only, never on an array or anything else whose `__setstate__` would trust the file. It
    reads large arrays as fast as the C one (one read per array).
    """

    dispatch: ClassVar[dict[int, Any]] = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, allowed: dict[str, Any]) -> None:
        reader = _BoundedReader(file)
        super().__init__(reader)
        self.allowed, self.size = allowed, reader.size
        self.buildable = (*_PENDING.values(), *(obj for obj in allowed.values() if isinstance(obj, type)))

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
        if type(target) not in self.buildable:
            raise _Unsound(_build_refusal(f"{type(target).__module__}.{type(target).__qualname__}"), unsafe=True)
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


def _build_refusal(name: str) -> str:
    return (
        f"it sets the state of a {name} object with pickle BUILD, which would hand the file's data to code that "
        "trusts it; a checkpoint has no reason to"
    )


# ---------------------------------------------------------------------------------------------- loading


def load_checkpoint(
    path: str | Path, extra_globals: dict[str, Any] | None = None, *, records_checked: bool = False
) -> Any:
    """The deserialised content of an upstream checkpoint file (a dict of tensors, usually nested).

    `extra_globals` maps further qualified names ("module.Class") a family's format needs to the object
    that stands in for them. Reading a file of S bytes takes at most `memory_budget(S)` = 16 S + 64 MiB of
    memory besides its tensor data; files that would need more are refused. `records_checked`: the caller
    checks a zip archive's CRC-32s itself (`digest.check_crcs`, beside the loading) or has matched the file's
    sha256 to the catalogue, so this read of the whole file is skipped.
    """
    path = Path(path)
    allowed = {**SAFE_GLOBALS, **(extra_globals or {})}
    size = _checked_size(path)
    try:
        with path.open("rb") as file:
            head = file.read(16)
    except OSError as error:
        raise CheckpointError(f"could not open checkpoint {path}: {error.strerror or error}") from error
    try:
        return _Finisher(size, allowed).run(_load(path, head, size, allowed, records_checked))
    except CheckpointError:
        raise
    except Exception as error:  # whatever a damaged or hostile file makes a parser raise
        raise _explain(path, error) from error


def _checked_size(path: Path) -> int:
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
    return size


def _load(path: Path, head: bytes, size: int, allowed: dict[str, Any], records_checked: bool) -> Any:
    """The file's content, read by its format."""
    budget = _Budget(size)
    if head.startswith(b"PK\x03\x04"):
        _check_archive(path, budget, records_checked)
        return _torch_load(path, allowed, mmap=True)
    if _looks_like_safetensors(head, size):
        _check_safetensors_header(path)
        return load_safetensors(str(path))
    if head[:1] == b"\x80":
        return _load_pickle(path, size, allowed, budget)
    raise CheckpointError(f"{path} is not a checkpoint: it starts with {head[:8]!r}; expected {_EXPECTED}")


def _load_pickle(path: Path, size: int, allowed: dict[str, Any], budget: _Budget) -> Any:
    """A plain pickle, or the legacy torch format (five pickles, then the storages' bytes)."""
    with path.open("rb") as file:
        _scan_pickles(file, size, budget)
        file.seek(0)
        first = _RestrictedUnpickler(file, allowed).load()
        if type(first) is int and first == _TORCH_LEGACY_MAGIC:
            budget.spent += size  # torch reads the storages into memory
            _scan_pickles(file, size, budget, count=4, refused=_TORCH_REFUSED)
            return _torch_load(path, allowed, mmap=False)
        if file.read(1):
            raise CheckpointError(f"{path} holds more than one pickled object; expected {_EXPECTED}")
    return first


def _check_archive(path: Path, budget: _Budget, records_checked: bool = False) -> None:
    """A zip file is a PyTorch checkpoint (not TorchScript, not another archive) whose records are intact
    and inflate within the budget, and whose pickles pass the scan.

    torch does not verify the CRC-32 each record carries, so a download damaged inside tensor data would
    otherwise load silently. Records written without a checksum (CRC 0) or compressed are left to torch.
    """
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        _check_records(path, members)
        _check_inflated_sizes(path, members, budget)
        if not records_checked:
            check_crcs(path, stored_records(path, members))
        for member in members:
            if member.filename.split("/", 1)[-1] == "data.pkl":
                data = archive.read(member)
                _scan_pickles(io.BytesIO(data), len(data), budget, refused=_TORCH_REFUSED)


def _check_records(path: Path, members: list[zipfile.ZipInfo]) -> None:
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


def _check_inflated_sizes(path: Path, members: list[zipfile.ZipInfo], budget: _Budget) -> None:
    """torch allocates what a compressed record declares before inflating it: bound the declarations."""
    for member in members:
        if member.compress_type == zipfile.ZIP_STORED:
            if member.file_size != member.compress_size:
                raise CheckpointError(
                    f"{path} is corrupt: stored record {member.filename} declares {member.file_size} bytes but "
                    f"holds {member.compress_size}; expected {_EXPECTED}. Download it again."
                )
            continue
        budget.spent += member.file_size
        budget.check(f"inflating its compressed records ({member.filename} declares {member.file_size} bytes)")


def _torch_load(path: Path, allowed: dict[str, Any], mmap: bool) -> Any:
    safe = [(obj, name) for name, obj in {**allowed, **_PENDING}.items()]
    with torch.serialization.safe_globals(safe):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    header_length = int.from_bytes(head[:8], "little")
    return 0 < header_length < size and head[8:9] == b"{"


def _check_safetensors_header(path: Path) -> None:
    """A header small enough to parse, declaring at most `SAFETENSORS_MAX_TENSORS` tensors.

    The safetensors library builds every tensor a header declares (a million cost 41 s and 1.4 GiB);
    counting stops at the first entry over the bound, so the count itself stays cheap.
    """
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        if length > SAFETENSORS_MAX_HEADER:
            raise _Unsound(
                f"its safetensors header is {length} bytes; at most {SAFETENSORS_MAX_HEADER} are read "
                f"(a header for {SAFETENSORS_MAX_TENSORS} tensors needs a fraction of that)"
            )
        header = file.read(length)
    objects = 0

    def count(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal objects
        objects += 1
        if objects > SAFETENSORS_MAX_TENSORS + 2:  # the tensors' entries, the metadata, the header itself
            raise _Unsound(f"its safetensors header declares more than {SAFETENSORS_MAX_TENSORS} tensors")
        return dict(pairs)

    entries = json.loads(header, object_pairs_hook=count)
    if not isinstance(entries, dict):
        raise pickle.UnpicklingError("the safetensors header is not a JSON object")
    if len(entries) - ("__metadata__" in entries) > SAFETENSORS_MAX_TENSORS:
        raise _Unsound(f"its safetensors header declares more than {SAFETENSORS_MAX_TENSORS} tensors")


# ------------------------------------------------------------------------------------------ after loading


class _Finisher:
    """Walks what was loaded: swaps the numpy placeholders for their arrays and refuses what cannot be right.

    Refused: containers nested deeper than `MAX_NESTING` or containing themselves (built by growing a
    container after a parent was made, which the scan cannot see), a numpy placeholder whose state never
    came, a tensor reaching past its storage, with a stride of 0 on a dimension longer than 1, or
    overlapping itself, and tensors adding up to more than `TENSOR_BYTES_PER_FILE_BYTE` x the file's size
    (views repeating one storage: each is a full copy once converted).
    """

    def __init__(self, size: int, allowed: dict[str, Any]) -> None:
        self.tensor_limit = TENSOR_BYTES_PER_FILE_BYTE * size + _MIB
        self.tensor_bytes = 0
        self.instances = tuple(obj for obj in allowed.values() if isinstance(obj, type) and obj is not _NumpyNdarray)
        self.done: dict[int, tuple[Any, int]] = {}  # id -> (replacement, depth)

    def run(self, root: Any) -> Any:
        todo: list[tuple[Any, list[Any] | None]] = [(root, None)]
        path: set[int] = set()
        while todo:
            obj, children = todo[-1]
            if children is None:
                self._enter(obj, todo, path)
                continue
            todo.pop()
            path.discard(id(obj))
            depth = 1 + max((self.done[id(child)][1] for child in children), default=0)
            if depth > MAX_NESTING:
                raise _Unsound(_TOO_DEEP)
            self.done[id(obj)] = (self._rebuilt(obj, children), depth)
        return self.done[id(root)][0]

    def _enter(self, obj: Any, todo: list, path: set[int]) -> None:
        if id(obj) in self.done:
            todo.pop()
            return
        if id(obj) in path:
            raise _Unsound(f"a {type(obj).__name__} in it contains itself, which no checkpoint does")
        children = self._children(obj)
        if children is None:
            todo.pop()
            self.done[id(obj)] = (self._leaf(obj), 0)
            return
        if len(path) >= MAX_NESTING:
            raise _Unsound(_TOO_DEEP)
        path.add(id(obj))
        todo[-1] = (obj, children)
        todo.extend((child, None) for child in children)

    def _children(self, obj: Any) -> list[Any] | None:
        if isinstance(obj, dict):
            return [*obj.keys(), *obj.values()]
        if type(obj) in (list, tuple, set, frozenset):
            return list(obj)
        if isinstance(obj, self.instances) and isinstance(getattr(obj, "__dict__", None), dict):
            return list(vars(obj).values())
        return None

    def _leaf(self, obj: Any) -> Any:
        if type(obj) in _PENDING.values():
            if obj.value is None:
                raise _Unsound("it makes a numpy array but never gives it its data", unsafe=True)
            return obj.value
        if isinstance(obj, torch.Tensor):
            self._check_tensor(obj)
        elif isinstance(obj, np.ndarray) and obj.dtype.hasobject:
            raise _Unsound("it holds a numpy array of Python objects", unsafe=True)
        return obj

    def _rebuilt(self, obj: Any, children: list[Any]) -> Any:
        """`obj` with its children replaced (in place where it is mutable)."""
        new = [self.done[id(child)][0] for child in children]
        changed = [index for index, (a, b) in enumerate(zip(children, new, strict=True)) if a is not b]
        if not changed:
            return obj
        if type(obj) is tuple:
            return tuple(new)
        if type(obj) is list:
            obj[:] = new
        elif isinstance(obj, dict) and changed[0] >= len(obj):
            for key, value in zip(list(obj), new[len(obj) :], strict=True):
                obj[key] = value
        elif not isinstance(obj, dict | set | frozenset):
            for name, value in zip(list(vars(obj)), new, strict=True):
                setattr(obj, name, value)
        else:
            raise _Unsound(f"it uses a numpy value as a key of a {type(obj).__name__}", unsafe=True)
        return obj

    def _check_tensor(self, tensor: torch.Tensor) -> None:
        if tensor.layout != torch.strided or tensor.device.type == "meta" or tensor.numel() == 0:
            return
        problem = _tensor_problem(tensor)
        if problem:
            raise _Unsound(f"a tensor of shape {tuple(tensor.shape)} and stride {tensor.stride()} {problem}")
        self.tensor_bytes += tensor.numel() * tensor.element_size()
        if self.tensor_bytes > self.tensor_limit:
            raise _Unsound(
                f"its tensors add up to more than {self.tensor_limit} bytes, {TENSOR_BYTES_PER_FILE_BYTE} x the "
                "file's size: many tensors repeat the same stored data"
            )


def _tensor_problem(tensor: torch.Tensor) -> str | None:
    """Why a strided tensor cannot be a weight stored in its file, or None."""
    sizes, strides = tensor.shape, tensor.stride()
    if any(stride == 0 and size > 1 for size, stride in zip(sizes, strides, strict=True)):
        return "repeats one stored element along a dimension (stride 0)"
    extent = tensor.storage_offset() + sum((size - 1) * stride for size, stride in zip(sizes, strides, strict=True))
    stored = tensor.untyped_storage().nbytes() // tensor.element_size()
    if extent + 1 > stored:
        return f"reaches element {extent} of a storage of {stored}"
    span = 0  # elements a non-overlapping layout covers with the dimensions of smaller stride
    for size, stride in sorted((pair for pair in zip(sizes, strides, strict=True) if pair[0] > 1), key=lambda p: p[1]):
        if stride <= span:
            return "overlaps itself (its elements share stored data)"
        span += (size - 1) * stride
    return None


# ------------------------------------------------------------------------------------------- messages

# torch's weights-only refusals: an unlisted or blocked global, BUILD on a class, function or other object
_TORCH_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+?) (?:was not an allowed global|whose module)")
_TORCH_REFUSED_BUILD = re.compile(r"Can only build .* but got <class '([^']+)'>")
_CLASS_OR_FUNCTION = ("type", "function", "builtin_function_or_method")


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
    if isinstance(error, _Unsound):
        cls = UnsafeCheckpointError if error.unsafe else CheckpointError
        return cls(f"refused to load {path}: {error.reason}. Nothing in it was executed.")
    if isinstance(error, _Refused):
        refused, modified = (None, error.what) if error.build else (error.what, None)
    elif isinstance(error, pickle.UnpicklingError):
        if match := _TORCH_REFUSED_GLOBAL.search(message):
            written = match.group(1) if "." in match.group(1) else f"builtins.{match.group(1)}"  # torch drops it
            refused = _global(_python3_name(*written.rsplit(".", 1)), written)
        elif (match := _TORCH_REFUSED_BUILD.search(message)) and match.group(1) in _CLASS_OR_FUNCTION:
            modified = f"a class or function (torch reports <class '{match.group(1)}'>)"
        elif match:
            return UnsafeCheckpointError(
                f"refused to load {path}: {_build_refusal(match.group(1))}. Nothing in it was executed."
            )
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
