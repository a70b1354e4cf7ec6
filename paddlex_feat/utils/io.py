"""Atomic, backup-keeping file writes: a crash never leaves a half-written file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask alone must set it)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
    os.umask(umask)
    return umask


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a power cut after rename could otherwise undo it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a folder; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported on this file system
    finally:
        os.close(fd)


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """A temp file beside ``path`` to write; renamed over ``path`` if the block succeeds, else removed.

    A crash never leaves a half-written ``path``. The result has the mode a plain write gives (mkstemp
    alone makes 0600): an existing file keeps its permissions, a new one gets 0666 minus the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:
        if err.filename is None:  # a write on a full disk names no file: say which one it was
            err.filename = str(path)
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, then rename."""
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 4) -> None:
    """Write JSON atomically (non-ASCII kept as is)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_many(files: Mapping[str | os.PathLike, bytes]) -> None:
    """Write several files all or none: each to a synced temp file, renamed only once every one is written.

    A full disk (or any error) while writing leaves every file as it was; only the renames, which
    need no space, come after the point of no return.
    """
    with ExitStack() as stack:
        for path, data in files.items():
            tmp = stack.enter_context(atomic_target(path))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())


def backup_once(path: str | os.PathLike) -> Path | None:
    """Copy ``path`` to ``path.bak`` unless a backup exists; the first backup is never replaced.

    The backup is complete or absent: written to a temp file, synced, read back and compared, then
    renamed; a full disk mid-copy raises and leaves no ``.bak``.
    """
    path = Path(path)
    if not path.exists():
        return None
    bak = path.with_name(path.name + ".bak")
    if bak.exists():
        return bak
    data = path.read_bytes()
    with atomic_target(bak) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if tmp.read_bytes() != data:
            raise OSError(f"the backup copy of {path} does not match it after writing; nothing was changed")
        shutil.copystat(path, tmp)
    return bak


@contextmanager
def staged_folder(output: str | os.PathLike, tag: str) -> Iterator[Path]:
    """A new folder to fill, swapped in for ``{output}/{tag}`` as one unit when the block succeeds.

    The old folder is renamed aside, the new one renamed in, then the old one removed: at every
    moment ``{tag}/`` is either the whole old folder or the whole new one (or, for the instant
    between the two renames, absent), never a mix of the two.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=output, prefix=f".{tag}.", suffix=".tmp"))
    try:
        yield staged
        os.chmod(staged, 0o777 & ~_umask())  # mkdtemp makes 0700
        fsync_dir(staged)
        final, old = output / tag, output / f".{tag}.old"
        if old.exists() and not final.exists():  # a kill between the two renames of an earlier swap
            os.rename(old, final)
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            os.rename(final, old)
        os.rename(staged, final)
        fsync_dir(output)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
