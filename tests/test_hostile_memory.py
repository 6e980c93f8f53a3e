"""Hostile checkpoints aimed at memory: numpy state that crashes or reads the heap, nesting that overflows the
C stack, allocation bombs, tensors repeating their storage, oversized safetensors headers.

Each file is built here, a few hundred bytes to a few MB. Whatever can crash or allocate gigabytes on the code
these tests guard against runs in a child process with a capped address space, so a regression fails the
test instead of taking the machine down. The bound under test is `memory_budget(size)`: reading a file of S
bytes allocates at most 16 S + 64 MiB besides its tensor data (memory-mapped from a zip file).
"""

from __future__ import annotations

import argparse
import json
import pickle
import struct
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from multimolecule.convert.checkpoint import (
    MAX_NESTING,
    SAFETENSORS_MAX_HEADER,
    SAFETENSORS_MAX_TENSORS,
    load_checkpoint,
    memory_budget,
)
from multimolecule.convert.errors import CheckpointError, UnsafeCheckpointError

ROOT = Path(__file__).parent
RNAFM = ROOT / "golden" / "rnafm" / "rnafm" / "RNA-FM_pretrained.pth"
PDPARAMS = ROOT / "data" / "rnaernie_model_state.pdparams"  # a PaddlePaddle 2.x file (RNAErnie's golden fixture)
CHILD_ADDRESS_SPACE = 1 << 30  # what a child may map beyond its start: a bomb fails there, not on the machine


# ------------------------------------------------------------------------------------ pickle assembler
# Protocol 2 opcodes only: torch's weights-only unpickler reads no others.


def s(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def i(number: int) -> bytes:
    return b"J" + struct.pack("<i", number)


def glob(qualified: str) -> bytes:
    module, name = qualified.rsplit(".", 1)
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(function: str, *args: bytes) -> bytes:
    return glob(function) + tup(*args) + b"R"


def raw(data: bytes) -> bytes:
    """bytes as protocol 2 writes them: _codecs.encode(latin-1 text, 'latin1')."""
    return call("_codecs.encode", s(data.decode("latin1")), s("latin1"))


def dtype(name: str, order: str = "<", names: bytes = b"N", fields: bytes = b"N", sizes=(-1, -1, 0)) -> bytes:
    """numpy.dtype(name, False, True) and the BUILD that sets its state, as numpy pickles a dtype."""
    state = tup(i(3), s(order), b"N", names, fields, *map(i, sizes))
    return glob("numpy.dtype") + tup(s(name), b"\x89", b"\x88") + b"R" + state + b"b"


def array(shape: tuple[int, ...], dtype_ops: bytes, data: bytes) -> bytes:
    """_reconstruct(ndarray, (0,), b'b') and the BUILD that gives it (1, shape, dtype, False, bytes)."""
    head = call("numpy.core.multiarray._reconstruct", glob("numpy.ndarray"), tup(i(0)), raw(b"b"))
    return head + tup(i(1), tup(*map(i, shape)), dtype_ops, b"\x89", raw(data)) + b"b"


def record_dtype(field_dtype: bytes, offset: int) -> bytes:
    """A dtype 'V8' with one field at `offset`: numpy trusts both the offset and the field's dtype."""
    fields = b"}" + s("a") + tup(field_dtype, i(offset)) + b"s"
    return dtype("V8", "|", names=tup(s("a")), fields=fields, sizes=(8, 1, 0))


def pickled(ops: bytes) -> bytes:
    return b"\x80\x02" + ops + b"."


class Raw:
    """Pickles as the opcodes it holds (through `RawPickler`): hostile content inside valid content."""

    def __init__(self, ops: bytes) -> None:
        self.ops = ops


class RawPickler(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Raw):
            self.write(obj.ops)
            return
        super().save(obj, save_persistent_id)


def write(path: Path, content, fmt: str) -> Path:
    """`content` (with `Raw` parts) as a torch zip file ("pth") or a plain protocol 2 pickle ("pkl")."""
    if fmt == "pth":
        module = types.SimpleNamespace(__name__="raw_pickle", Pickler=RawPickler)
        torch.save(content, path, pickle_module=module)
    else:
        with path.open("wb") as file:
            RawPickler(file, protocol=2).dump(content)
    return path


def fairseq(extra, fmt: str) -> dict:
    """The golden RNA-FM checkpoint with `extra` before its args and model (numpy arrays in a plain pickle)."""
    content = load_checkpoint(RNAFM)
    model = content["model"] if fmt == "pth" else {key: value.numpy() for key, value in content["model"].items()}
    return {"extra": extra, "args": content["args"], "model": model}


def deep_tuple(depth: int) -> bytes:
    return b")" + b"\x85" * depth


# --------------------------------------------------------------------------------------- hostile files

# numpy state that numpy trusts: an object array read from raw bytes dereferences them as pointers
OBJECT_ARRAY = array((1,), dtype("O", "|"), b"\x41" * 8)
HOSTILE = {
    # OrderedDict iterates the array at load time: 0x4141414141414141 as a PyObject*, a segfault
    "object array": lambda: {"x": Raw(call("collections.OrderedDict", OBJECT_ARRAY))},
    # a million-deep tuple as a dict key: hashing it recurses in C until the stack overflows
    "deep key": lambda: {Raw(deep_tuple(1_000_000)): 1},
}


def test_heap_read_through_a_field_offset_is_refused(tmp_path: Path):
    """A record dtype whose field lies 4096 bytes past the 8-byte item: reading it reads the heap."""
    path = tmp_path / "model.pkl"
    path.write_bytes(pickled(array((1,), record_dtype(dtype("i8"), 4096), b"\0" * 8)))
    assert len(path.read_bytes()) < 400
    with pytest.raises(UnsafeCheckpointError, match=r"dtype 'V8'.*only plain numeric and bool") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("fmt", ["pkl", "pth"])
def test_object_field_is_refused(fmt: str, tmp_path: Path):
    path = write(tmp_path / f"model.{fmt}", {"x": Raw(array((1,), record_dtype(dtype("O", "|"), 0), b"A" * 8))}, fmt)
    with pytest.raises(UnsafeCheckpointError, match="dtype 'V8'"):
        load_checkpoint(path)


RECONSTRUCT = call("numpy.core.multiarray._reconstruct", glob("numpy.ndarray"), tup(i(0)), raw(b"b"))
FROMBUFFER = call("numpy.core.numeric._frombuffer", raw(b"\0" * 8), dtype("f8"), tup(i(1)), s("C"))
SCALAR = "numpy.core.multiarray.scalar"
NUMPY_STATE = [
    pytest.param(dtype("f8", "|", names=tup(s("a")), sizes=(8, 1, 0)), "state", id="fields in a plain dtype"),
    pytest.param(dtype("f8", "?"), "byte order", id="byte order that does not exist"),
    pytest.param(array((4,), dtype("f4"), b"\0" * 8), "needs 16 bytes", id="shape claiming more than the bytes"),
    pytest.param(array((-1,), dtype("f4"), b""), "not a shape", id="negative dimension"),
    pytest.param(RECONSTRUCT + i(3) + b"b", "expected (1, shape", id="array state that is not a tuple"),
    pytest.param(RECONSTRUCT, "never gives it its data", id="array without its state"),
    pytest.param(call("numpy.ndarray", tup(i(1)), s("f4")), "numpy.ndarray(...) directly", id="ndarray called"),
    pytest.param(call(SCALAR, dtype("V8", "|"), raw(b"\0" * 8)), "dtype 'V8'", id="void scalar"),
    pytest.param(call(SCALAR, dtype("i8"), raw(b"\1")), "needs 8 bytes", id="scalar with too few bytes"),
    pytest.param(
        FROMBUFFER + tup(i(1), tup(i(4096)), dtype("f8"), b"\x89", raw(b"")) + b"b",
        "numpy.ndarray object with pickle BUILD",
        id="BUILD on a finished array",
    ),
]


@pytest.mark.parametrize(("ops", "says"), NUMPY_STATE)
@pytest.mark.parametrize("fmt", ["pkl", "pth"])
def test_numpy_state_is_checked_before_numpy_sees_it(fmt: str, ops: bytes, says: str, tmp_path: Path):
    path = write(tmp_path / f"model.{fmt}", {"weight": np.ones(2), "x": Raw(ops)}, fmt)
    with pytest.raises(UnsafeCheckpointError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert says in message and str(path) in message and "\n" not in message, message


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_and_scalars_still_load(protocol: int, tmp_path: Path):
    """Every plain dtype, both byte orders, C and Fortran order, empty and 0-d arrays, scalars."""
    arrays = {name: np.arange(6).astype(name).reshape(2, 3) for name in ("?", "i1", "u2", "i4", "u8", "f2", "c16")}
    arrays |= {"big-endian": np.arange(4, dtype=">f4"), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    arrays |= {"empty": np.zeros((0, 48), "f4"), "0-d": np.array(3.5), "transposed": np.arange(6.0).reshape(2, 3).T}
    content = {**arrays, "scalar": np.int64(7), "float": np.float32(0.5), "flag": np.bool_(True)}
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    loaded = load_checkpoint(path)
    assert list(loaded) == list(content)
    for key, expected in content.items():
        assert type(loaded[key]) is type(expected) and loaded[key].dtype == expected.dtype, key
        assert np.array_equal(loaded[key], expected), key
        if isinstance(expected, np.ndarray):
            assert loaded[key].shape == expected.shape and loaded[key].flags.writeable


def test_numpy_in_a_torch_file_still_loads(tmp_path: Path):
    """Lightning keeps numpy scalars (a monitored metric) and arrays beside the tensors."""
    content = {"state_dict": {"w": torch.ones(2)}, "best": np.float64(0.25), "hist": np.arange(3, dtype=np.int32)}
    torch.save(content, tmp_path / "model.ckpt")
    loaded = load_checkpoint(tmp_path / "model.ckpt")
    assert loaded["best"] == content["best"] and type(loaded["best"]) is np.float64
    assert np.array_equal(loaded["hist"], content["hist"]) and loaded["hist"].dtype == np.int32


def test_a_real_pdparams_file_loads_byte_exactly():
    """PaddlePaddle's own file (protocol 4, float32 / int64 arrays, a str -> str dict) reads as pickle does."""
    expected = pickle.loads(PDPARAMS.read_bytes())  # our own fixture, trusted
    loaded = load_checkpoint(PDPARAMS)
    assert list(loaded) == list(expected)
    arrays = [key for key, value in expected.items() if isinstance(value, np.ndarray)]
    assert len(arrays) > 50 and {expected[key].dtype for key in arrays} >= {np.dtype("float32")}
    for key in arrays:
        assert loaded[key].dtype == expected[key].dtype and loaded[key].shape == expected[key].shape, key
        assert loaded[key].tobytes() == expected[key].tobytes(), key
    assert loaded["StructuredToParameterName@@"] == expected["StructuredToParameterName@@"]
    assert loaded["ernie.embeddings.word_embeddings.weight"].shape == (39, 48)


# ------------------------------------------------------------------------------------------ nesting


@pytest.mark.parametrize("fmt", ["pkl", "pth"])
def test_nesting_is_bounded(fmt: str, tmp_path: Path):
    path = write(tmp_path / f"model.{fmt}", {"w": np.ones(1), "x": Raw(deep_tuple(MAX_NESTING + 1))}, fmt)
    with pytest.raises(CheckpointError, match=f"more than {MAX_NESTING} levels deep") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)
    shallow = write(tmp_path / f"shallow.{fmt}", {"w": np.ones(1), "x": Raw(deep_tuple(MAX_NESTING - 4))}, fmt)
    assert isinstance(load_checkpoint(shallow)["x"], tuple)


def test_nesting_built_by_growing_lists_afterwards_is_bounded(tmp_path: Path):
    """Lists appended to one another in reverse order look shallow opcode by opcode; the result is a chain."""
    count = 5_000
    ops = b"".join(b"]r" + struct.pack("<I", n) for n in range(count))  # empty lists, memoized 0..count-1
    for n in range(count - 1, 0, -1):  # list n-1 into list n, while list n-1 is still empty
        ops += b"j" + struct.pack("<I", n) + b"j" + struct.pack("<I", n - 1) + b"a0"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickled(b"(" + ops + b"j" + struct.pack("<I", count - 1) + b"t"))
    with pytest.raises(CheckpointError, match="levels deep"):
        load_checkpoint(path)


def test_a_container_holding_itself_is_refused(tmp_path: Path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickled(b"]q\x00h\x00a"))  # a list appended to itself
    with pytest.raises(CheckpointError, match="contains itself"):
        load_checkpoint(path)


# ------------------------------------------------------------------------------ through the real CLI


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[tuple[str, str], tuple[Path, Path, subprocess.CompletedProcess]]:
    """Each crashing file converted by `python -m multimolecule.convert` in its own process, all at once."""
    started = {}
    for case in HOSTILE:
        for fmt in ("pkl", "pth"):
            directory = tmp_path_factory.mktemp("cli")
            path = write(directory / f"model.{fmt}", fairseq(HOSTILE[case](), fmt), fmt)
            command = [sys.executable, "-m", "multimolecule.convert", "rnafm", "--checkpoint", str(path)]
            command += ["--no-verify", "--output", str(directory / "out")]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            started[case, fmt] = (path, directory / "out", process)
    runs = {}
    for key, (path, output, process) in started.items():
        stdout, stderr = process.communicate(timeout=600)
        runs[key] = (path, output, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return runs


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("fmt", ["pkl", "pth"])
def test_crashing_files_end_in_one_line_through_the_cli(case: str, fmt: str, cli_runs):
    """What used to kill the converter with SIGSEGV (exit -11) is one `error:` line and exit status 1."""
    path, output, result = cli_runs[case, fmt]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refused to load") and str(path) in lines[0], lines
    assert "Traceback" not in result.stderr + result.stdout
    assert not output.exists()


# ------------------------------------------------------------------------------------ memory, measured

# Imports once, then loads each file in a fork of itself: a fork's peak memory (VmHWM) starts at its memory
# at the fork, and its address space is capped, so a bomb the reader lets through fails there.
CHILD = textwrap.dedent(
    """
    import json, os, resource, sys
    from multimolecule.convert.checkpoint import load_checkpoint
    from multimolecule.convert.errors import CheckpointError

    def status(field):
        with open("/proc/self/status") as file:
            return next(int(line.split()[1]) * 1024 for line in file if line.startswith(field))

    for path in sys.argv[2:]:
        pid = os.fork()
        if pid == 0:
            before = status("VmRSS")
            resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + int(sys.argv[1]), resource.RLIM_INFINITY))
            try:
                load_checkpoint(path)
                outcome = "loaded"
            except CheckpointError as error:
                outcome = f"{type(error).__name__}: {error}"
            print(json.dumps({"path": path, "outcome": outcome, "grown": status("VmHWM") - before}), flush=True)
            os._exit(0)
        _, code = os.waitpid(pid, 0)
        if code:
            print(json.dumps({"path": path, "outcome": f"died ({code})", "grown": 0}), flush=True)
    """
)


def load_in_children(paths: list[Path]) -> dict[Path, tuple[str, int]]:
    """path -> (outcome, peak memory growth in bytes) of loading it with a capped address space."""
    command = [sys.executable, "-c", CHILD, str(CHILD_ADDRESS_SPACE), *map(str, paths)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {Path(report["path"]): (report["outcome"], report["grown"]) for report in reports}


def _inflating_zip(path: Path) -> None:
    """A torch zip whose data.pkl is deflated and declares 3.75 GiB once inflated (torch allocates that first)."""
    torch.save({"w": torch.ones(2)}, path)
    with zipfile.ZipFile(path) as archive:
        member = next(m for m in archive.infolist() if m.filename.endswith("/data.pkl"))
        assert member.compress_type == zipfile.ZIP_STORED
        pickled_data = archive.read(member)
    rebuilt = path.with_suffix(".tmp")
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(rebuilt, "w") as out:
        for info in archive.infolist():
            kind = zipfile.ZIP_DEFLATED if info.filename == member.filename else zipfile.ZIP_STORED
            out.writestr(info.filename, archive.read(info), compress_type=kind)
    data = bytearray(rebuilt.read_bytes())
    declared = struct.pack("<I", len(pickled_data))
    for at in (data.find(b"PK\x03\x04") + 22, data.find(b"PK\x01\x02") + 24):  # local header, central directory
        assert data[at : at + 4] == declared
        data[at : at + 4] = struct.pack("<I", 0xF0000000)
    path.write_bytes(bytes(data))
    rebuilt.unlink()


PAIRS = b"(" + b"".join(i(n) + b"N\x86" for n in range(20_000)) + b"lq\x000"  # a list of pairs, memoized
COPY = glob("collections.OrderedDict") + b"h\x00\x85R"  # OrderedDict(that list)
BOMBS = {
    # 33 bytes: numpy.ndarray((2**28,), 'O') is 2 GiB of None pointers
    "ndarray of objects": (lambda path: path.write_bytes(pickled(call("numpy.ndarray", tup(i(1 << 28)), s("O"))))),
    # a void scalar of 4 GiB
    "huge void scalar": lambda path: path.write_bytes(pickled(call(SCALAR, dtype("V4294967296", "|"), raw(b"")))),
    "zip record inflating to 3.75 GiB": _inflating_zip,
    # 1 MiB of EMPTY_SET: each byte a 216-byte set, 236 MB in all
    "container opcodes": lambda path: path.write_bytes(b"\x80\x04(" + b"\x8f" * (1 << 20) + b"l."),
    # the same in a torch file's data.pkl: 2 MiB of empty dicts, 150 MB
    "container opcodes in data.pkl": lambda path: write(path, {"x": Raw(b"(" + b"}" * (1 << 21) + b"l")}, "pth"),
    # OrderedDict copying a 20,000-pair list from the memo, over and over
    "copies from the memo": lambda path: path.write_bytes(pickled(PAIRS + b"(" + COPY * 5_000 + b"l")),
}


def _many_small_objects(path: Path) -> None:
    """Plain data in quantity (a training log): it loads, and within the bound."""
    path.write_bytes(pickle.dumps({"log": [{"step": n, "loss": n / 7, "tag": f"t{n}"} for n in range(60_000)]}, 2))


LOADS = {"small objects": _many_small_objects, "pdparams": lambda path: path.write_bytes(PDPARAMS.read_bytes())}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, tuple[Path, str, int]]:
    """name -> (file, outcome, peak memory growth) for every bomb and every file that should load."""
    directory = tmp_path_factory.mktemp("measured")
    paths = {}
    for index, (name, make) in enumerate({**BOMBS, **LOADS}.items()):
        paths[name] = directory / f"{index}.pt"
        make(paths[name])
    reports = load_in_children(list(paths.values()))
    return {name: (path, *reports[path]) for name, path in paths.items()}


@pytest.mark.parametrize("bomb", BOMBS)
def test_allocation_bombs_are_refused_within_the_bound(bomb: str, measured):
    path, outcome, grown = measured[bomb]
    assert outcome.startswith(("UnsafeCheckpointError: refused to load", "CheckpointError: refused to load")), outcome
    assert str(path) in outcome
    assert grown <= memory_budget(path.stat().st_size), f"{grown / 2**20:.0f} MiB for {path.stat().st_size} bytes"


@pytest.mark.parametrize("name", LOADS)
def test_files_that_load_stay_within_the_bound(name: str, measured):
    path, outcome, grown = measured[name]
    assert outcome == "loaded"
    assert grown <= memory_budget(path.stat().st_size), f"{grown / 2**20:.0f} MiB for {path.stat().st_size} bytes"


# -------------------------------------------------------------------------------- tensors and storage


def _stride_zero(path: Path) -> None:  # 8192 x 8192 floats (256 MiB) from one stored float
    torch.save({"w": torch.zeros(1).expand(8192, 8192)}, path)


def _overlapping(path: Path) -> None:  # 4096 x 4096 from 8191 stored floats: rows share their elements
    torch.save({"w": torch.zeros(8191).as_strided((4096, 4096), (1, 1))}, path)


def _many_views(path: Path) -> None:  # one 256 KiB storage named 64 times: 16 MiB once converted
    base = torch.zeros(1 << 16)
    torch.save({f"w{n}": base[: (1 << 16) - n] for n in range(64)}, path)


@pytest.mark.parametrize(
    ("make", "says"),
    [(_stride_zero, "stride 0"), (_overlapping, "overlaps itself"), (_many_views, "repeat the same stored data")],
    ids=["stride 0", "overlapping", "many views"],
)
def test_tensors_repeating_their_storage_are_refused(make, says: str, tmp_path: Path):
    path = tmp_path / "model.pt"
    make(path)
    assert path.stat().st_size < 300_000
    with pytest.raises(CheckpointError, match=says) as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)


def test_views_and_shared_storage_still_load(tmp_path: Path):
    """Tied weights (two names, one storage), transposes and slices are ordinary checkpoints."""
    weight = torch.arange(12.0).reshape(3, 4)
    content = {"embed": weight, "decoder": weight, "t": weight.t(), "row": weight[1], "col": weight[:, 2]}
    torch.save(content, tmp_path / "model.pt")
    loaded = load_checkpoint(tmp_path / "model.pt")
    for key, value in content.items():
        assert torch.equal(loaded[key], value) and loaded[key].stride() == value.stride(), key


# ---------------------------------------------------------------------------------------- safetensors


EMPTY_TENSOR = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}


def _safetensors_with_header(path: Path, header: dict, padding: int = 0) -> None:
    text = json.dumps(header).encode() + b" " * padding
    path.write_bytes(struct.pack("<Q", len(text)) + text)


def test_safetensors_header_declaring_too_many_tensors(tmp_path: Path):
    path = tmp_path / "model.safetensors"
    _safetensors_with_header(path, {f"t{n}": EMPTY_TENSOR for n in range(SAFETENSORS_MAX_TENSORS + 1)})
    with pytest.raises(CheckpointError, match=f"more than {SAFETENSORS_MAX_TENSORS} tensors") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)
    _safetensors_with_header(path, {f"t{n}": EMPTY_TENSOR for n in range(100)})
    assert len(load_checkpoint(path)) == 100


def test_safetensors_header_too_long(tmp_path: Path):
    path = tmp_path / "model.safetensors"
    _safetensors_with_header(path, {"w": EMPTY_TENSOR}, padding=SAFETENSORS_MAX_HEADER)
    with pytest.raises(CheckpointError, match=r"safetensors header is \d+ bytes; at most") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)


def test_safetensors_still_load(tmp_path: Path):
    save_file({"w": torch.ones(2, 3), "b": torch.zeros(3)}, tmp_path / "model.safetensors", {"format": "pt"})
    loaded = load_checkpoint(tmp_path / "model.safetensors")
    assert torch.equal(loaded["w"], torch.ones(2, 3)) and torch.equal(loaded["b"], torch.zeros(3))


def test_argparse_namespace_still_loads(tmp_path: Path):
    torch.save({"args": argparse.Namespace(layers=2, arch="roberta")}, tmp_path / "model.pt")
    assert vars(load_checkpoint(tmp_path / "model.pt")["args"]) == {"layers": 2, "arch": "roberta"}
