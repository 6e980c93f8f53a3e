"""Writing a converted model so that no reader ever sees half of one, and nothing that is not ours is deleted.

Everything is written into a hidden staging directory next to the target (`.<name>.partial-<pid>-<random>`),
validated there, and swapped in at the end. On Linux the swap is atomic (renameat2 RENAME_EXCHANGE): a kill at any
moment leaves either no output or the previous one, intact, under the target name.

The target is checked before any work (`check_target`): it must not be a symbolic link, must not be or contain what
the conversion must not delete (the input checkpoint, the download cache, the current or the home directory), and
its directory must be writable with room for the output. While one conversion writes a target it holds a lock
(`.<name>.lock` beside it, with filelock): a second one to the same target waits, and the clean-up of a killed
run's staging removes only directories of exactly that name whose process is gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import ConversionError, OutputExistsError

logger = logging.getLogger(__name__)

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class OutputError(ConversionError):
    """The output cannot, or must not, be written where it was asked for."""


def check_target(
    target: Path, overwrite: bool, *, protect: Mapping[str, Path | None] | None = None, needed: int = 0
) -> None:
    """Fail before any work, in one line, when the target cannot or must not be written.

    `protect`: what the output must neither be nor contain, by description (the input checkpoint, the download
    cache); the current and the home directory always are. `needed`: bytes the output will take, about.
    """
    if target.is_symlink():
        _refuse_link(target)
    _refuse_protected(target, protect or {})
    if target.exists() and not target.is_dir():
        raise OutputExistsError(f"output {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputExistsError(f"output directory {target} is not empty; pass --overwrite to replace it")
    _check_writable(target, overwrite, needed)


def _refuse_link(target: Path) -> None:
    """A link would be swapped out as a link (its directory left behind, the link kept as staging); refuse it."""
    pointee = os.readlink(target)
    if not target.exists():
        raise OutputError(f"output {target} is a symbolic link to {pointee}, which does not exist; remove the link")
    raise OutputError(f"output {target} is a symbolic link (to {pointee}); give the directory itself as --output")


def _refuse_protected(target: Path, protect: Mapping[str, Path | None]) -> None:
    """Replacing the target deletes all it holds: never a directory holding the input or the user's own."""
    resolved = target.resolve()
    for what, path in {**protect, **_always_protected()}.items():
        if path is None:
            continue
        kept = Path(path).expanduser().resolve()
        if kept == resolved or resolved in kept.parents:
            relation = "is" if kept == resolved else "contains"
            raise OutputError(f"output {target} {relation} {what} ({path}); choose another --output")


def _always_protected() -> dict[str, Path]:
    protected = {"the current directory": Path.cwd()}
    with suppress(RuntimeError, KeyError):  # no home directory to be found
        protected["the home directory"] = Path.home()
    return protected


def _check_writable(target: Path, overwrite: bool, needed: int) -> None:
    """The directory the target goes in (the nearest one that exists; the rest is created) takes a file, and has
    `needed` bytes free; an existing target can have its old content removed."""
    parent = next(path for path in (target.absolute().parent, *target.absolute().parents) if path.exists())
    if not parent.is_dir():
        raise OutputError(f"cannot create output {target}: {parent} is not a directory")
    try:
        descriptor, probe = tempfile.mkstemp(prefix=f".{target.name}.probe-", dir=parent)
        try:
            os.write(descriptor, b"\0")
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
            os.unlink(probe)
    except OSError as error:
        raise OutputError(f"cannot write output {target}: {parent} is not writable ({error.strerror})") from error
    if overwrite and target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
        raise OutputError(f"cannot replace output {target}: its old content could not be removed (read-only)")
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise OutputError(
            f"cannot write output {target}: {_size(free)} free on its disk, and the output needs about {_size(needed)}"
        )


def _size(count: int) -> str:
    """Bytes, in the largest binary unit that keeps the number at least 1."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    power = 0
    while power < len(units) - 1 and count >= 1024 ** (power + 1):
        power += 1
    return f"{count} bytes" if power == 0 else f"{count / 1024**power:.1f} {units[power]}"


@contextmanager
def staged_directory(
    target: Path, overwrite: bool, *, protect: Mapping[str, Path | None] | None = None
) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces `target`, on any error it is removed. The target
    is locked meanwhile: another conversion to it waits."""
    target = target.absolute()
    check_target(target, overwrite, protect=protect)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        _remove_stale_staging(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-{os.getpid()}-", dir=target.parent))
        try:
            yield staging
            _apply_umask(staging)
            check_target(target, overwrite, protect=protect)
            _swap_in(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    """`.<name>.lock` beside the target, held from staging to swap (filelock leaves the file after release)."""
    lock = FileLock(target.parent / f".{target.name}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("another conversion is writing %s; waiting for it to finish (lock %s)", target, lock.lock_file)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _remove_stale_staging(target: Path) -> None:
    """Remove what a killed run left: staging directories of exactly this target's name whose process is gone.
    (Held under the target's lock, so no live run of this target is writing one.)"""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.partial-(\d+)-[a-z0-9_]{{8}}")
    for path in target.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match and path.is_dir() and not path.is_symlink() and not _alive(int(match[1])):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


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
