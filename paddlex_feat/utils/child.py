"""Run one function in a fresh (spawned) process: its own memory and threads, the parent's log.

Why: some libraries keep native state (thread pools, allocators) after they return. NNCF and
OpenVINO, run inside a process that also holds Paddle and has run many other models (the test
suite), corrupted memory that crashed it later. A spawned child starts clean, gives every byte back
when it ends, and a crash in it is an error in the parent, not a dead parent.

The child's log records travel back through a queue and are handled by the parent's
``paddlex_feat`` logger, so console, ``*.log`` files and tests see them as if logged here. An
exception in the child (one of ours: message and details) is raised again in the parent; a child
that dies without one (a signal, a native crash) is a :class:`PaddlexFeatError` saying so.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .errors import PaddlexFeatError
from .logger import logger
from .signals import die_with_parent

T = TypeVar("T")


class _ToParentLogger(logging.Handler):
    """Hands each record from the child to the parent's logger, whose handlers decide where it goes."""

    def emit(self, record: logging.LogRecord) -> None:
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def _child_setup(queue: Any, level: int, parent_pid: int) -> None:
    """In the child: die with the parent, and log only through the queue."""
    die_with_parent(parent_pid)
    logger.handlers[:] = [logging.handlers.QueueHandler(queue)]
    logger.setLevel(level)
    logger.propagate = False


def run_in_child(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a spawned process; its result or its exception here, its log records here."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy Paddle's threads and locks mid-use
    queue = ctx.Queue()
    listener = logging.handlers.QueueListener(queue, _ToParentLogger())
    listener.start()
    try:
        with ProcessPoolExecutor(
            max_workers=1,
            mp_context=ctx,
            initializer=_child_setup,
            initargs=(queue, logger.getEffectiveLevel(), os.getpid()),
        ) as pool:
            return pool.submit(fn, *args).result()
    except BrokenProcessPool as e:
        raise PaddlexFeatError(
            f"The child process running {fn.__qualname__} died without an answer (killed, out of memory, "
            "or a crash in native code); nothing it was writing was put in place."
        ) from e
    finally:
        listener.stop()
        queue.close()
