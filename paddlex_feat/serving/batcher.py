"""Dynamic batching: images from concurrent requests share model calls.

One thread owns the model (a Paddle or ONNX predictor is not safe to call from several threads
at once, and on a few cores one big call beats several small ones). Requests put pre-processed
images on a bounded queue; the thread takes the first, waits up to ``max_wait_ms`` for more, up
to ``max_batch_size``, runs them as one batch and hands each request its own row. A full queue
is refused at once (``Overloaded`` -> 503 + Retry-After) so that latency stays bounded under
overload instead of growing without limit.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

from ..utils.logger import logger


class Overloaded(Exception):
    """The queue is full; the client should retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the service is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class DynamicBatcher:
    """Gathers single images into batches for ``embed`` ([N,3,H,W] -> [N,D]) on one model thread."""

    def __init__(
        self,
        embed: Callable[[np.ndarray], np.ndarray],
        max_batch_size: int = 8,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.embed = embed
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.max_queue = max(1, max_queue)
        self.on_batch = on_batch or (lambda n: None)
        self._queue: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self._admit = threading.Lock()  # admission of a request's images is all or nothing
        self._waiting = 0  # admitted images not yet answered
        self._batch_seconds = 0.0  # moving average of one model call, for Retry-After
        self._thread = threading.Thread(target=self._run, name="pxf-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Images admitted and not yet answered (decoding, queued or in the model)."""
        return self._waiting

    def admit(self, n: int) -> None:
        """Reserve room for a request's ``n`` images, all or none; Overloaded when they do not fit.

        Called before decoding, so that the bound covers every image the service holds: a flood
        cannot pile up in the decode threads' queue either.
        """
        with self._admit:
            if self._waiting + n > self.max_queue:
                raise Overloaded(self.retry_after())
            self._waiting += n

    def release(self, n: int) -> None:
        """Give back the room of ``n`` answered (or failed) images."""
        with self._admit:
            self._waiting -= n

    def submit(self, arrays: Sequence[np.ndarray]) -> list[Future]:
        """Queue admitted images for the model thread; one future per image."""
        futures = []
        for array in arrays:
            future: Future = Future()
            self._queue.put((array, future))
            futures.append(future)
        return futures

    async def embed_async(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The features of admitted ``arrays``, in order, computed in shared batches."""
        futures = self.submit(arrays)
        if len(futures) == 1:  # the common case under load: no gather, no stacking copy
            return (await asyncio.wrap_future(futures[0]))[None]
        rows = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return np.stack(rows)

    def retry_after(self) -> int:
        """Seconds a refused client should wait: the time to drain the queue at the recent batch time, at least 1."""
        batches = self._waiting / self.max_batch_size + 1
        return max(1, math.ceil(batches * self._batch_seconds))

    def close(self) -> None:
        """Stop the model thread after the images already queued."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    # -- the model thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._fill(batch)
            self._run_batch(batch)
            if stop:
                return

    def _fill(self, batch: list) -> bool:
        """Add queued images to ``batch`` until it is full or ``max_wait`` has passed; True on close."""
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _run_batch(self, batch: list[tuple[np.ndarray, Future]]) -> None:
        live = [(a, f) for a, f in batch if f.set_running_or_notify_cancel()]
        self.on_batch(len(live))
        # images of one shape run together (resize_short without a crop keeps aspect ratios)
        groups: dict[tuple, list[tuple[np.ndarray, Future]]] = {}
        for array, future in live:
            groups.setdefault(array.shape, []).append((array, future))
        for group in groups.values():
            try:
                start = time.perf_counter()
                feats = self.embed(np.stack([a for a, _ in group]))
                self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.perf_counter() - start)
            except Exception as e:  # noqa: BLE001 - the error belongs to the waiting requests
                logger.error(f"Model call failed on a batch of {len(group)}: {e}")
                for _, future in group:
                    future.set_exception(e)
                continue
            for row, (_, future) in enumerate(group):
                future.set_result(feats[row])
