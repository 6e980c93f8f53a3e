"""Hostile and broken checkpoint files: nothing in them runs, and every failure is a clear `CheckpointError`.

Checkpoints come from Google Drive, Zenodo and personal servers, and a pickle can run anything when it is
loaded. For every format the converters read (torch zip, torch legacy, plain pickle, Lightning `.ckpt`,
fairseq, PaddlePaddle `.pdparams`) a file whose pickle would run a command is refused before the command
runs, and the refusal names what the file asked for and the file. The benign twin of each file loads, so
the refusal is not "everything fails". Broken files (empty, truncated, damaged, not a checkpoint at all, a
directory, nothing there) raise `CheckpointError` naming the file and what was expected, never another
exception, and so does the converter given them. A checkpoint of another family or variant is an error that
lists the keys or names the vocabulary mismatch, never a partial load.
"""

from __future__ import annotations

import argparse
import builtins
import copy
import os
import pickle
import random
import shlex
import struct
import subprocess
import tracemalloc
import types
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import zip_record_ranges
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multimolecule.converters import get_converter
from safetensors.torch import save_file

from multimolecule.convert.checkpoint import load_checkpoint
from multimolecule.convert.errors import (
    CheckpointError,
    ConversionError,
    KeyMismatchError,
    UnsafeCheckpointError,
)

GOLDEN = Path(__file__).parent / "golden" / "rnafm"
RNAFM = GOLDEN / "rnafm" / "RNA-FM_pretrained.pth"
MRNAFM = GOLDEN / "mrnafm" / "mRNA-FM_pretrained.pth"
RNAFM_SS = GOLDEN / "rnafm-ss" / "RNA-FM-ResNet_bpRNA.pth"
EXPECTED = "expected a PyTorch checkpoint (zip or legacy), a pickle or a safetensors file"

WEIGHT = torch.arange(12, dtype=torch.float32).reshape(3, 4)
BIAS = torch.linspace(-1, 1, 4)


# --------------------------------------------------------------------------------------------- payloads


class Payload:
    """Pickles as a call of `function(*args)`: what unpickling a hostile file would run."""

    def __init__(self, function: Callable, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _qualified(function: Callable) -> str:
    return f"{function.__module__}.{function.__name__}"


# name -> (payload writing `marker`, the global the file asks for)
PAYLOADS: dict[str, Callable[[Path], tuple[Payload, str]]] = {
    "os.system": lambda marker: (Payload(os.system, f"touch {shlex.quote(str(marker))}"), _qualified(os.system)),
    "builtins.exec": lambda marker: (Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"), "builtins.exec"),
    "subprocess.call": lambda marker: (Payload(subprocess.call, ["touch", str(marker)]), "subprocess.call"),
}


# ---------------------------------------------------------------------------------------------- formats
# Each writer stores `extra` (None for the benign file, a payload for the hostile one) nested inside
# otherwise valid content of its format, and returns what the benign file must load as.


def _golden_fairseq() -> dict:
    return load_checkpoint(RNAFM)


def write_torch_zip(path: Path, extra) -> dict:
    content = {"weight": WEIGHT, "layer": {"bias": BIAS, "extra": [1, 2, extra]}}
    torch.save(content, path)
    return content


def write_torch_legacy(path: Path, extra) -> dict:
    content = {"weight": WEIGHT, "layer": OrderedDict(bias=BIAS, extra=(extra, "tail"))}
    torch.save(content, path, _use_new_zipfile_serialization=False)
    return content


def write_pickle(path: Path, extra) -> dict:
    # protocol 5: Python 3.14's default, numpy arrays then pickle through numpy's _frombuffer
    content = {"weight": WEIGHT.numpy(), "meta": {"names": ["weight"], "extra": [extra]}}
    with path.open("wb") as file:
        pickle.dump(content, file, protocol=5)
    return content


def write_lightning(path: Path, extra) -> dict:
    content = {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": OrderedDict([("model.weight", WEIGHT), ("model.bias", BIAS)]),
        "hyper_parameters": {"lr": 1e-3, "hidden_size": 4, "extra": extra},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}],
    }
    torch.save(content, path)
    return content


def write_fairseq(path: Path, extra) -> dict:
    content = _golden_fairseq()
    args = copy.copy(content["args"])
    args.extra = extra  # inside the argparse.Namespace, after the allowed class itself
    content = {"args": args, "model": content["model"], "extra_state": {"epoch": 1}}
    torch.save(content, path)
    return content


def _write_paddle(path: Path, extra, protocol: int) -> dict:
    content = {
        "embeddings.word_embeddings.weight": WEIGHT.numpy(),
        "encoder.layers.0.norm1.bias": BIAS.numpy().astype(np.float16),
        "encoder.layers.0.step": np.int64(7),
        "StructuredToParameterName@@": {"embeddings.word_embeddings.weight": "embedding_0.w_0"},
    }
    if extra is not None:
        content["encoder.layers.0.extra"] = [extra]
    with path.open("wb") as file:
        pickle.dump(content, file, protocol=protocol)
    return content


def write_paddle(path: Path, extra) -> dict:
    """paddle.save (PaddlePaddle 2.x): a pickle of {name: numpy array}, protocol 4."""
    return _write_paddle(path, extra, protocol=4)


def write_paddle_fluid(path: Path, extra) -> dict:
    """fluid.save (PaddlePaddle 1.x): the same with protocol 2, whose bytes go through _codecs.encode."""
    return _write_paddle(path, extra, protocol=2)


FORMATS: dict[str, tuple[str, Callable[[Path, object], dict]]] = {
    "torch-zip": (".pt", write_torch_zip),
    "torch-legacy": (".pt", write_torch_legacy),
    "pickle": (".pkl", write_pickle),
    "lightning": (".ckpt", write_lightning),
    "fairseq": (".pth", write_fairseq),
    "paddle": (".pdparams", write_paddle),
    "paddle-fluid": (".pdparams", write_paddle_fluid),
}
UNSAFE_LOADERS = {  # what upstream code does: run whatever the file holds
    "torch-zip": lambda path: torch.load(path, weights_only=False),
    "torch-legacy": lambda path: torch.load(path, weights_only=False),
    "lightning": lambda path: torch.load(path, weights_only=False),
    "fairseq": lambda path: torch.load(path, weights_only=False),
    "pickle": lambda path: pickle.loads(path.read_bytes()),
    "paddle": lambda path: pickle.loads(path.read_bytes()),
    "paddle-fluid": lambda path: pickle.loads(path.read_bytes()),
}


def assert_same(loaded, expected) -> None:
    """Equal structure and values; tensors and arrays compared exactly, a payload slot must be None."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(loaded, torch.Tensor) and loaded.dtype == expected.dtype
        assert torch.equal(loaded, expected)
    elif isinstance(expected, np.ndarray | np.generic):
        assert type(loaded) is type(expected) and loaded.dtype == expected.dtype
        assert np.array_equal(loaded, expected)
    elif isinstance(expected, dict):
        assert type(loaded) is type(expected) and list(loaded) == list(expected)
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, list | tuple):
        assert type(loaded) is type(expected) and len(loaded) == len(expected)
        for item, reference in zip(loaded, expected, strict=True):
            assert_same(item, reference)
    elif isinstance(expected, argparse.Namespace):
        assert isinstance(loaded, argparse.Namespace)
        assert_same(vars(loaded), vars(expected))
    else:
        assert loaded == expected


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists() or path.stat().st_size == 0  # touched at most, never written by the loader


@pytest.fixture
def pristine_namespace():
    """Undo any change a failing test lets a hostile file make to argparse.Namespace (and report it)."""
    before = dict(vars(argparse.Namespace))
    yield
    changed = sorted(set(vars(argparse.Namespace)) ^ set(before))
    for name in changed:
        if name in before:
            setattr(argparse.Namespace, name, before[name])
        else:
            delattr(argparse.Namespace, name)
    assert not changed, f"a hostile file changed argparse.Namespace: {changed}"


# ------------------------------------------------------------------------------- hostile: code execution


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_is_refused_and_never_runs(fmt: str, payload: str, tmp_path: Path, marker: Path):
    suffix, write = FORMATS[fmt]
    path = tmp_path / f"hostile{suffix}"
    hostile, refused = PAYLOADS[payload](marker)
    write(path, hostile)
    with pytest.raises(UnsafeCheckpointError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert refused in message, message
    assert str(path) in message
    assert "Nothing in it was executed" in message
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_is_live(fmt: str, tmp_path: Path, marker: Path):
    """Control: loaded the way upstream code loads it, the same hostile file does run its command."""
    suffix, write = FORMATS[fmt]
    path = tmp_path / f"hostile{suffix}"
    write(path, PAYLOADS["os.system"](marker)[0])
    UNSAFE_LOADERS[fmt](path)
    assert marker.exists()
    marker.unlink()


@pytest.mark.parametrize("fmt", FORMATS)
def test_benign_twin_loads(fmt: str, tmp_path: Path):
    suffix, write = FORMATS[fmt]
    path = tmp_path / f"benign{suffix}"
    expected = write(path, None)
    assert_same(load_checkpoint(path), expected)


def test_benign_numpy_array_at_top_level(tmp_path: Path):
    """A pickle holding one array (not a dict) is read as it is, not mistaken for the legacy torch header."""
    path = tmp_path / "array.pkl"
    path.write_bytes(pickle.dumps(np.arange(6.0).reshape(2, 3), protocol=4))
    assert np.array_equal(load_checkpoint(path), np.arange(6.0).reshape(2, 3))


def test_benign_safetensors(tmp_path: Path):
    path = tmp_path / "model.safetensors"
    save_file({"weight": WEIGHT, "bias": BIAS}, path)
    assert_same(dict(sorted(load_checkpoint(path).items())), {"bias": BIAS, "weight": WEIGHT})


def test_payload_as_the_whole_file(tmp_path: Path, marker: Path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(PAYLOADS["os.system"](marker)[0], protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system|nt\.system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_payload_in_place_of_the_legacy_header(tmp_path: Path, marker: Path):
    """A legacy torch file starts with a pickled magic number, read before torch is involved."""
    benign = tmp_path / "benign.pt"
    write_torch_legacy(benign, None)
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    assert benign.read_bytes().startswith(magic)
    path = tmp_path / "model.pt"
    hostile = pickle.dumps(PAYLOADS["os.system"](marker)[0], protocol=2)
    path.write_bytes(hostile + benign.read_bytes()[len(magic) :])
    with pytest.raises(UnsafeCheckpointError, match="system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_payload_through_inst_opcode(tmp_path: Path, marker: Path):
    """INST names its class in-line (no GLOBAL opcode); it is looked up through the same allow-list."""
    command = f"touch {shlex.quote(str(marker))}".encode()
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x02(X" + struct.pack("<I", len(command)) + command + b"ios\nsystem\n.")
    with pytest.raises(UnsafeCheckpointError, match=r"os\.system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_protocol_0_pickle_is_not_read(tmp_path: Path, marker: Path):
    """A text-protocol pickle is no checkpoint format: it is rejected by its first byte, unread."""
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(PAYLOADS["os.system"](marker)[0], protocol=0))
    with pytest.raises(CheckpointError, match="is not a checkpoint") as raised:
        load_checkpoint(path)
    assert EXPECTED in str(raised.value)
    assert not marker.exists()


def test_numpy_load_is_not_a_way_around(tmp_path: Path, marker: Path):
    """numpy is allowed only for array reconstruction, not e.g. numpy.load(allow_pickle=True) of a second file."""
    inner = tmp_path / "inner.npy"
    inner.write_bytes(pickle.dumps(PAYLOADS["os.system"](marker)[0], protocol=2))
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weight": np.ones(2), "x": Payload(np.load, str(inner), None, True)}, protocol=4))
    with pytest.raises(UnsafeCheckpointError, match=r"numpy\.load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_codec_other_than_latin1_is_refused(tmp_path: Path):
    """Protocol 2 writes bytes as _codecs.encode(text, 'latin1'); that codec only is allowed."""
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"x": Payload(__import__("_codecs").encode, "abc", "rot13")}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"_codecs\.encode.*rot13"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "opcode", [b"\x8e", b"\x8d", b"\x95", b"\x96"], ids=["BINBYTES8", "BINUNICODE8", "FRAME", "BYTEARRAY8"]
)
def test_length_field_cannot_exhaust_memory(opcode: bytes, tmp_path: Path):
    """A 14-byte file claiming a 1 GiB record is refused before anything that size is allocated."""
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x05" + opcode + struct.pack("<Q", 2**30) + b"abc")
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="bytes") as raised:
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert type(raised.value) is CheckpointError and str(path) in str(raised.value)
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB allocated"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_archive_is_refused(tmp_path: Path):
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(UnsafeCheckpointError, match="TorchScript") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value) and "weights_only=False" not in str(raised.value)


# ------------------------------------------------------------------------ hostile: changing a class


class _ChangeNamespace:
    """Pickles as BUILD on the class argparse.Namespace itself, replacing its __repr__ for the whole process."""


class _ChangingPickler(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _ChangeNamespace):
            self.save_global(argparse.Namespace)
            self.save((None, {"__repr__": np.dtype}))
            self.write(pickle.BUILD)
            return
        super().save(obj, save_persistent_id)


def test_changing_an_allowed_class_is_refused_in_a_pickle(tmp_path: Path, pristine_namespace):
    path = tmp_path / "model.pdparams"
    with path.open("wb") as file:
        _ChangingPickler(file, protocol=4).dump({"weight": np.ones(3), "extra": [_ChangeNamespace()]})
    with pytest.raises(UnsafeCheckpointError, match=r"set attributes of argparse\.Namespace") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)
    assert "__repr__" not in vars(argparse.Namespace)


def test_changing_an_allowed_class_is_refused_in_a_torch_file(tmp_path: Path, pristine_namespace):
    path = tmp_path / "model.pt"
    torch.save(
        {"weight": WEIGHT, "extra": [_ChangeNamespace()]},
        path,
        pickle_module=types.SimpleNamespace(__name__="changing_pickle", Pickler=_ChangingPickler),
    )
    with pytest.raises(UnsafeCheckpointError, match="class or function") as raised:
        load_checkpoint(path)
    assert str(path) in str(raised.value)
    assert "__repr__" not in vars(argparse.Namespace)


# ------------------------------------------------------------------------------------------ broken files


def _random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _flip_middle(data: bytes) -> bytes:
    middle = bytearray(data)
    for offset in range(-2, 3):
        middle[len(data) // 2 + offset] ^= 0xFF
    return bytes(middle)


def _truncate(source: Path) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])


def _legacy_golden(path: Path) -> None:
    torch.save(_golden_fairseq(), path, _use_new_zipfile_serialization=False)


def _paddle_golden(path: Path) -> None:
    model = _golden_fairseq()["model"]
    with path.open("wb") as file:
        pickle.dump({key: value.numpy() for key, value in model.items()}, file, protocol=4)


def _truncated_copy(write: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        write(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return make


def _safetensors_golden(path: Path) -> None:
    save_file({key: value.contiguous() for key, value in _golden_fairseq()["model"].items()}, path)


def _npz(path: Path) -> None:
    with path.open("wb") as file:
        np.savez(file, weight=np.ones(3))


def _bad_safetensors_header(path: Path) -> None:
    header = b'{"weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 999]}}'
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 12)


def _legacy_storage_claiming_8_gib(path: Path) -> None:
    torch.save({"weight": torch.zeros(1234567)}, path, _use_new_zipfile_serialization=False)
    numel = b"J" + struct.pack("<i", 1234567)  # BININT in the pickled storage reference
    data = path.read_bytes()
    assert numel in data
    path.write_bytes(data.replace(numel, b"J" + struct.pack("<i", 2**31 - 1)))


def _two_pickles(path: Path) -> None:
    path.write_bytes(pickle.dumps({"weight": np.ones(2)}, protocol=4) * 2)


# name -> (how to make it, what the message must also say)
BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (lambda path: path.write_bytes(b""), "empty (0 bytes)"),
    "truncated golden zip": (_truncate(RNAFM), "truncated or corrupt"),
    "truncated golden legacy": (_truncated_copy(_legacy_golden), "truncated or corrupt"),
    "truncated pdparams": (_truncated_copy(_paddle_golden), "truncated or corrupt"),
    "truncated safetensors": (_truncated_copy(_safetensors_golden), "truncated or corrupt"),
    "bytes flipped in a golden zip": (lambda path: path.write_bytes(_flip_middle(RNAFM.read_bytes())), "CRC-32"),
    "bytes flipped in the mRNA-FM golden": (lambda path: path.write_bytes(_flip_middle(MRNAFM.read_bytes())), "CRC-32"),
    "text file": (lambda path: path.write_text("this is not a checkpoint\n" * 10), "is not a checkpoint"),
    "html error page": (
        lambda path: path.write_text("<!DOCTYPE html><html><body>Google Drive - Virus scan warning</body></html>"),
        "is not a checkpoint",
    ),
    "png header": (lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n" + _random_bytes(200, 1)), r"\x89PNG"),
    "random bytes": (lambda path: path.write_bytes(_random_bytes(4096, 0)), "expected"),
    "random bytes after a pickle header": (
        lambda path: path.write_bytes(b"\x80\x04" + _random_bytes(4096, 2)),
        "expected",
    ),
    "random bytes after a zip header": (
        lambda path: path.write_bytes(b"PK\x03\x04" + _random_bytes(4096, 3)),
        "expected",
    ),
    "zip that is not a torch file": (_npz, "no data.pkl"),
    "bad safetensors header": (_bad_safetensors_header, "truncated or corrupt"),
    "two pickles in one file": (_two_pickles, "more than one pickled object"),
    "legacy storage claiming 8 GiB": (_legacy_storage_claiming_8_gib, "truncated or corrupt"),
    "directory": (lambda path: path.mkdir(), "is a directory"),
    "missing": (lambda path: None, "does not exist"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_file_is_a_clear_checkpoint_error(case: str, tmp_path: Path):
    make, says = BROKEN[case]
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    assert type(raised.value) is CheckpointError  # broken, not refused
    message = str(raised.value)
    assert str(path) in message
    assert EXPECTED in message
    assert says in message, message
    assert "weights_only=False" not in message  # torch's advice to load it unsafely is not passed on


@pytest.mark.parametrize("case", BROKEN)
def test_converter_gives_the_same_clear_error(case: str, tmp_path: Path):
    make, _ = BROKEN[case]
    path = tmp_path / "model.pt"
    make(path)
    with pytest.raises(CheckpointError) as direct:
        load_checkpoint(path)
    with pytest.raises(CheckpointError) as converted:
        get_converter("rnafm").convert(path)
    assert type(converted.value) is CheckpointError
    assert str(path) in str(converted.value)
    if case not in ("directory", "missing"):  # those the engine reports before it reads the file
        assert str(converted.value) == str(direct.value)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("fmt", ["torch-zip", "torch-legacy", "fairseq", "paddle"])
def test_converter_refuses_hostile_files(fmt: str, payload: str, tmp_path: Path, marker: Path):
    suffix, write = FORMATS[fmt]
    path = tmp_path / f"hostile{suffix}"
    hostile, refused = PAYLOADS[payload](marker)
    write(path, hostile)
    with pytest.raises(UnsafeCheckpointError, match=refused.replace(".", r"\.")):
        get_converter("rnafm").convert(path)
    assert not marker.exists()


# --------------------------------------------------------------------------------- fuzzed damage


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("samples")
    made = {"zip": RNAFM.read_bytes()}
    for name, write in [("legacy", _legacy_golden), ("pdparams", _paddle_golden), ("safetensors", _safetensors_golden)]:
        write(directory / name)
        made[name] = (directory / name).read_bytes()
    made["fluid"] = pickle.dumps({"w": np.arange(64.0).reshape(8, 8), "n": np.int32(3)}, protocol=2)
    return made


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sample=st.sampled_from(["zip", "legacy", "pdparams", "safetensors", "fluid"]),
    mutation=st.sampled_from(["flip", "overwrite", "truncate", "insert"]),
    where=st.floats(0, 1, exclude_max=True),
    junk=st.binary(min_size=1, max_size=64),
)
def test_damaged_files_load_or_raise_checkpoint_error(samples, tmp_path, sample, mutation, where, junk):
    data = bytearray(samples[sample])
    at = int(where * len(data))
    if mutation == "flip":
        data[at] ^= junk[0] or 0xFF
    elif mutation == "overwrite":
        data[at : at + len(junk)] = junk
    elif mutation == "truncate":
        del data[at:]
    else:
        data[at:at] = junk
    path = tmp_path / "damaged"
    path.write_bytes(bytes(data))
    try:
        load_checkpoint(path)  # damage inside raw array bytes of a format without checksums is undetectable
    except CheckpointError as error:
        assert str(path) in str(error)


@settings(max_examples=60, deadline=None)
@given(where=st.floats(0, 1, exclude_max=True), xor=st.integers(1, 255))
def test_any_damage_to_zip_record_data_is_detected(tmp_path_factory, where, xor):
    directory = tmp_path_factory.mktemp("crc")
    data = bytearray(RNAFM.read_bytes())
    ranges = zip_record_ranges(RNAFM)
    covered = sum(end - start for start, end in ranges)
    offset = int(where * covered)
    for start, end in ranges:
        if offset < end - start:
            data[start + offset] ^= xor
            break
        offset -= end - start
    path = directory / "damaged.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"CRC-32|truncated or corrupt"):
        load_checkpoint(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    head=st.sampled_from([b"", b"\x80\x02", b"\x80\x04\x95", b"\x80\x05", b"PK\x03\x04", b"\x10\0\0\0\0\0\0\0{"]),
    body=st.binary(max_size=512),
)
def test_arbitrary_bytes_load_or_raise_checkpoint_error(tmp_path, head, body):
    path = tmp_path / "blob"
    path.write_bytes(head + body)
    try:
        load_checkpoint(path)
    except CheckpointError as error:
        assert str(path) in str(error)


# ------------------------------------------------------------------- another family, variant or layout


def _save(path: Path, content) -> Path:
    torch.save(content, path)
    return path


def test_golden_files_convert(tmp_path: Path):
    """The benign side: each golden file converts under its own variant (the errors below are not universal)."""
    get_converter("rnafm").convert(RNAFM)
    get_converter("mrnafm").convert(MRNAFM)
    get_converter("rnafm-ss").convert(RNAFM_SS, {"num_attention_heads": 4})


@pytest.mark.parametrize(
    ("variant", "path", "rows", "vocabulary"),
    [("rnafm", MRNAFM, 73, 25), ("mrnafm", RNAFM, 25, 73)],
    ids=["mrnafm-file-to-rnafm", "rnafm-file-to-mrnafm"],
)
def test_other_vocabulary_is_named(variant: str, path: Path, rows: int, vocabulary: int):
    with pytest.raises(ConversionError) as raised:
        get_converter(variant).convert(path)
    message = str(raised.value)
    assert f"{rows} rows" in message and f"vocabulary of this variant has {vocabulary} tokens" in message
    assert "another variant" in message


def test_secondary_structure_file_given_to_rnafm_lists_unexpected_keys():
    with pytest.raises(KeyMismatchError) as raised:
        get_converter("rnafm").convert(RNAFM_SS, {"num_attention_heads": 4})
    error = raised.value
    assert error.unexpected and all(key.startswith("downstream_modules.") for key in error.unexpected)
    assert "unexpected key(s)" in str(error) and error.unexpected[0] in str(error)


def test_rnafm_file_given_to_secondary_structure_lists_missing_keys():
    with pytest.raises(KeyMismatchError) as raised:
        get_converter("rnafm-ss").convert(RNAFM)
    error = raised.value
    assert error.missing and all(key.startswith("ss_head.") for key in error.missing)
    assert "missing key(s)" in str(error) and error.missing[0] in str(error)


BERT_STATE = {
    "module.embeddings.word_embeddings.weight": torch.zeros(10, 8),
    "module.embeddings.position_embeddings.weight": torch.zeros(16, 8),
    "module.encoder.layer.0.attention.self.query.weight": torch.zeros(8, 8),
}


def test_bert_style_state_dict_is_rejected_with_its_keys(tmp_path: Path):
    path = _save(tmp_path / "rnabert.pth", BERT_STATE)
    with pytest.raises(ConversionError) as raised:
        get_converter("rnafm").convert(path)
    message = str(raised.value)
    assert str(path) in message and "module.embeddings.word_embeddings.weight" in message


@pytest.mark.parametrize("container", ["fairseq", "backbone"])
def test_bert_style_keys_in_an_rnafm_container_list_unexpected_and_missing(container: str, tmp_path: Path):
    if container == "fairseq":
        content = {"args": argparse.Namespace(encoder_layers=1, encoder_attention_heads=2), "model": BERT_STATE}
    else:
        content = {f"backbone.{key}": value for key, value in BERT_STATE.items()}
    path = _save(tmp_path / "model.pth", content)
    with pytest.raises(KeyMismatchError) as raised:
        get_converter("rnafm").convert(path)
    error = raised.value
    assert sorted(error.unexpected) == sorted(BERT_STATE)
    assert error.missing
    assert "unexpected key(s)" in str(error) and "missing key(s)" in str(error)


def test_a_missing_tensor_is_not_a_partial_load(tmp_path: Path):
    content = _golden_fairseq()
    model = OrderedDict(content["model"])
    del model["encoder.encoder.layers.1.fc1.weight"]
    path = _save(tmp_path / "model.pth", {"args": content["args"], "model": model})
    with pytest.raises(KeyMismatchError) as raised:
        get_converter("rnafm").convert(path)
    assert raised.value.missing == ["model.encoder.layers.1.ffn.fc1.weight"]
    assert not raised.value.unexpected


def test_an_extra_tensor_is_not_dropped_silently(tmp_path: Path):
    content = _golden_fairseq()
    model = OrderedDict(content["model"])
    model["encoder.encoder.adapter.weight"] = torch.zeros(2)
    path = _save(tmp_path / "model.pth", {"args": content["args"], "model": model})
    with pytest.raises(KeyMismatchError) as raised:
        get_converter("rnafm").convert(path)
    assert raised.value.unexpected == ["adapter.weight"]


@pytest.mark.parametrize("content", [[1, 2, 3], torch.zeros(3)], ids=["list", "tensor"])
def test_content_that_is_not_a_dict(content, tmp_path: Path):
    path = _save(tmp_path / "model.pth", content)
    with pytest.raises(CheckpointError, match="a rnafm checkpoint is a dict") as raised:
        get_converter("rnafm").convert(path)
    assert str(path) in str(raised.value)
