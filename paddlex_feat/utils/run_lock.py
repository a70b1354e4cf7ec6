"""One run per output folder: a lock file naming its holder (host, pid, mode, start time).

Two runs writing into one folder would mix their files (one's best_model with the other's
config.yaml). The lock is an ``flock`` on ``{output}/.paddlex_feat.lock``: the kernel releases it
when its process dies, even by kill -9, so a dead run's lock is taken over (with a log line)
rather than blocking the folder forever. The file's text names the holder for the message.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import PaddlexFeatError
from .logger import logger

LOCK_NAME = ".paddlex_feat.lock"


class OutputLockedError(PaddlexFeatError):
    """Another live run holds the output folder."""


def _holder_text(mode: str) -> str:
    return json.dumps(
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "mode": mode,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    )


def _describe(raw: str) -> str:
    try:
        h = json.loads(raw)
        return f"a {h['mode']} run, pid {h['pid']} on host {h['host']}, started {h['since']}"
    except (ValueError, KeyError, TypeError):
        return "another run (its lock file is unreadable)"


@contextmanager
def output_lock(output: str | os.PathLike, mode: str) -> Iterator[None]:
    """Hold ``{output}``'s lock for the block; OutputLockedError at once if a live run holds it."""
    path = Path(output) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            raise OutputLockedError(
                f"Global.output={os.fspath(output)!r} is in use by {holder}; two runs in one folder would mix "
                f"their files. Wait for it to finish, or choose another folder with -o Global.output=PATH."
            ) from None
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        if previous:  # left by a run that died without releasing it (the kernel released the flock)
            logger.info(
                f"Taking over the stale lock of {path.parent} left by {_describe(previous)}, which is gone."
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_text(mode).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released cleanly: an empty file is not a stale lock
    finally:
        os.close(fd)  # closing releases the flock
