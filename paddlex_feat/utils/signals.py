"""Stopping cleanly: SIGTERM handled like Ctrl-C, and child processes that die with their parent.

Job schedulers and ``timeout`` send SIGTERM (then SIGKILL). Without a handler Python dies at once,
skipping every ``finally``; with it the run stops as on Ctrl-C and says how to resume. Data-loader
workers are forked processes of ~300 MB each; if the parent is killed (SIGKILL cannot be caught)
they would live on, re-parented to PID 1, so each asks the kernel to kill it when its parent dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so it unwinds like Ctrl-C; exit code 128 + 15."""

    exit_code = 143


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (as Ctrl-C raises KeyboardInterrupt)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated("SIGTERM")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux); elsewhere, do nothing.

    ``parent_pid``: the parent expected; if it already died before the request was made (a race
    at start), exit now.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


class worker_init_for:  # noqa: N801 - used like a function: worker_init_fn=worker_init_for(pid)
    """A DataLoader ``worker_init_fn`` making each worker die with the process that started it.

    A class, not a closure: Paddle pickles it into the workers of spawned training processes.
    """

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid

    def __call__(self, worker_id: int) -> None:
        die_with_parent(self.parent_pid)
