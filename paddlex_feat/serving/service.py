"""The service behind the endpoints: images to features through the batcher, and the indexes.

Small images decode and pre-process on the event loop; big ones (and URLs) on a small thread
pool, so that they decode in parallel; the model runs on the batcher's one thread.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .batcher import DynamicBatcher
from .errors import ApiError
from .images import ImageLimits, bytes_from_text, check_bytes, decode_bgr, is_url
from .metrics import ServiceMetrics

API_KEY_ENV = "PADDLEX_FEAT_API_KEY"
# A request whose images are this small in all (encoded) decodes and pre-processes in about a
# millisecond, on the event loop. A decode thread would cost about as much again in hand-offs (a
# thread wake-up, GIL switches, a call back into the loop) and gain nothing: Paddle Inference holds
# the GIL for a whole forward pass, so the thread could not decode during the model call anyway.
# Bigger requests go to the decode threads, where cv2 decodes without the GIL and several images
# decode at once.
INLINE_DECODE_BYTES = 48 * 1024


def decodes_inline(images: list[str | bytes]) -> bool:
    """Whether a request's images are small enough to decode on the event loop (URLs never: they download)."""
    total = 0
    for image in images:
        if isinstance(image, str) and not is_url(image):
            total += len(image) * 3 // 4
        elif isinstance(image, bytes):
            total += len(image)
        else:
            return False
    return total <= INLINE_DECODE_BYTES


@dataclass
class ServeSettings:
    """The Serve section's knobs that shape request handling (the rest start the server)."""

    max_batch_size: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64
    workers: int = 2
    api_key: str | None = None
    max_request_bytes: int = 256 * 1024 * 1024
    topk: int = 5
    score_threshold: float | None = None
    limits: ImageLimits = field(default_factory=ImageLimits)

    @classmethod
    def from_config(cls, serve: dict[str, Any]) -> ServeSettings:
        """Settings from the ``Serve`` config section (the env variable fills a missing api_key)."""
        return cls(
            max_batch_size=serve["max_batch_size"],
            max_wait_ms=serve["max_wait_ms"],
            max_queue=serve["max_queue"],
            workers=serve["workers"],
            api_key=serve["api_key"] or os.environ.get(API_KEY_ENV) or None,
            max_request_bytes=serve["max_request_bytes"],
            topk=serve["topk"],
            score_threshold=serve["score_threshold"],
            limits=ImageLimits(
                max_bytes=serve["max_image_bytes"],
                max_pixels=serve["max_image_pixels"],
                allow_urls=serve["allow_urls"],
                url_timeout=serve["url_timeout"],
            ),
        )


class Service:
    """A predictor behind a dynamic batcher, an optional index store, settings and metrics."""

    def __init__(self, predictor: Any, settings: ServeSettings, store: Any = None) -> None:
        self.predictor = predictor
        self.settings = settings
        self.store = store
        self.metrics = ServiceMetrics()
        self.batcher = DynamicBatcher(
            predictor.embed,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            on_batch=self.metrics.batch_size.observe,
        )
        self.decoders = ThreadPoolExecutor(
            max_workers=max(1, settings.workers), thread_name_prefix="pxf-serve-decode"
        )
        self.metrics.watch(lambda: self.batcher.depth, self.index_size)

    def warm_up(self) -> None:
        """Run every batch size once, so that no early request pays the backend's per-shape setup."""
        sample = self.predictor.spec.preprocess(np.zeros((64, 64, 3), np.uint8))
        for n in range(1, self.settings.max_batch_size + 1):
            self.predictor.embed(np.stack([sample] * n))

    def close(self) -> None:
        """Stop the model thread and the decode threads."""
        self.batcher.close()
        self.decoders.shutdown(wait=False, cancel_futures=True)

    def index_size(self) -> float:
        """Images in the default index (0 without one), for the metrics gauge."""
        return float(self.store.size(None)) if self.store is not None and self.store.has(None) else 0.0

    # -- images to features --------------------------------------------------------------------

    def prepare(self, image: str | bytes, field: str) -> tuple[np.ndarray, tuple[int, int]]:
        """One image field to the model's float32 CHW input and the image's (height, width)."""
        limits = self.settings.limits
        data = (
            check_bytes(image, field, limits)
            if isinstance(image, bytes)
            else bytes_from_text(image, field, limits)
        )
        bgr = decode_bgr(data, field, limits)
        return self.predictor.spec.preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), bgr.shape[:2]

    async def embed_images(
        self, images: list[str | bytes], names: list[str]
    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """``[N, D]`` L2-normalised features in input order, and each image's (height, width).

        Errors name the image's field (``names[i]``). Small images decode right here on the event
        loop; big ones and URLs on the decode threads, in parallel (see ``decodes_inline``).
        """
        self.batcher.admit(len(images))  # 503 at once when full, before any decoding
        try:
            if decodes_inline(images):
                prepared = [self.prepare(img, name) for img, name in zip(images, names)]
            else:
                loop = asyncio.get_running_loop()
                jobs = [
                    loop.run_in_executor(self.decoders, self.prepare, img, name)
                    for img, name in zip(images, names)
                ]
                prepared = await asyncio.gather(*jobs)
            feats = await self.batcher.embed_async([array for array, _ in prepared])
        finally:
            self.batcher.release(len(images))
        return feats, [size for _, size in prepared]

    async def features(self, images: list[str | bytes], names: list[str]) -> np.ndarray:
        """``[N, D]`` L2-normalised features of the images, in input order."""
        return (await self.embed_images(images, names))[0]

    # -- auth ----------------------------------------------------------------------------------

    def check_key(self, headers: Any) -> None:
        """401 unless the request carries the API key (when one is set); compared in constant time."""
        expected = self.settings.api_key
        if not expected:
            return
        given = headers.get("x-api-key") or ""
        auth = headers.get("authorization") or ""
        if not given and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            raise ApiError(
                401,
                "This endpoint changes the index and needs the API key: send it as 'Authorization: Bearer <key>' "
                "or 'X-API-Key: <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
