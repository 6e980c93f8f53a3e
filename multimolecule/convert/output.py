"""Writing a converted model so that no reader ever sees half of one.

Everything is written into a hidden staging directory next to the target (`.<name>.partial-*`), validated
there, and swapped in at the end. On Linux the swap is atomic (renameat2 RENAME_EXCHANGE): a kill at any
moment leaves either no output or the previous one, intact, under the target name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputExistsError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def check_target(target: Path, overwrite: bool) -> None:
    """Fail before any work when the target holds something and overwriting was not asked for."""
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"output {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputExistsError(f"output directory {target} is not empty; pass --overwrite to replace it")


@contextmanager
def staged_directory(target: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces `target`, on any error it is removed."""
    target = target.absolute()
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
        _apply_umask(staging)
        check_target(target, overwrite)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _apply_umask(directory: Path) -> None:
    """mkdtemp (and some writers) create private files; the output gets the user's usual permissions."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
    elif target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        os.rename(staging, target)
    elif _exchange(staging, target):
        pass  # staging now holds the previous output and is removed by the caller
    else:
        previous = staging.with_name(staging.name + "-previous")
        os.rename(target, previous)
        os.rename(staging, target)
        shutil.rmtree(previous, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return result == 0
