"""The dynamic batcher: gathers concurrent images into batches, keeps order, refuses past its queue."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from paddlex_feat.serving.batcher import DynamicBatcher, Overloaded


class RecordingModel:
    """Returns each input's first pixel as its 'feature' and records the batch sizes it saw."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = gate

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            self.gate.wait(10)
        self.sizes.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :1].copy()


def test_concurrent_requests_share_batches_and_get_their_own_rows() -> None:
    model = RecordingModel()
    batcher = DynamicBatcher(model, max_batch_size=8, max_wait_ms=50, max_queue=64)

    async def main() -> list[np.ndarray]:
        batcher.admit(16)
        return await asyncio.gather(
            *(batcher.embed_async([np.full((3, 2, 2), i, np.float32)]) for i in range(16))
        )

    try:
        rows = asyncio.run(main())
    finally:
        batcher.close()
    assert [float(r[0, 0]) for r in rows] == [float(i) for i in range(16)]
    assert max(model.sizes) > 1 and all(s <= 8 for s in model.sizes)
    assert sum(model.sizes) == 16


def test_full_queue_is_refused_at_once_and_nothing_is_admitted() -> None:
    batcher = DynamicBatcher(RecordingModel(), max_batch_size=1, max_wait_ms=0, max_queue=3)
    try:
        batcher.admit(3)
        with pytest.raises(Overloaded) as err:
            batcher.admit(2)
        assert err.value.retry_after >= 1
        assert batcher.depth == 3  # the refused request reserved nothing
        batcher.release(3)
        batcher.admit(3)  # room again once answered
    finally:
        batcher.close()


def test_model_error_reaches_every_waiting_request() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    batcher = DynamicBatcher(broken, max_batch_size=4, max_wait_ms=1)
    try:
        futures = batcher.submit([np.zeros((3, 1, 1), np.float32)] * 2)
        for future in futures:
            with pytest.raises(RuntimeError, match="boom"):
                future.result(timeout=10)
    finally:
        batcher.close()


def test_images_of_different_shapes_run_in_separate_calls() -> None:
    model = RecordingModel()
    batcher = DynamicBatcher(model, max_batch_size=8, max_wait_ms=50)
    try:
        futures = batcher.submit([np.ones((3, 2, 2), np.float32), 2 * np.ones((3, 4, 2), np.float32)])
        assert [float(f.result(timeout=10)[0]) for f in futures] == [1.0, 2.0]
    finally:
        batcher.close()
