"""Predictor: an exported inference folder run with Paddle Inference (or, with ``use_hpip``, OpenVINO
or ONNX Runtime; see ``backends``), streaming one result per image.

Reading and decoding run in a small thread pool ahead of the model, so disk, JPEG decoding and
inference overlap; results come back in input order, one ``[512]`` row each, and never pile up
in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..utils.arrays import l2_normalize
from ..utils.checks import check_batch_size
from ..utils.device import Device, default_cpu_threads
from ..utils.errors import ModelError
from ..utils.logger import logger
from .backends import ModelRunner, create_runner
from .inputs import ImageReadError, InputItem, expand_inputs, input_stem, load_rgb
from .results import FeatureResult
from .spec import InferenceSpec, load_inference_spec

MODEL_FILES = ("inference.json", "inference.pdmodel")  # Paddle 3 program first, then the legacy one
PARAMS_FILE = "inference.pdiparams"


def find_model_files(model_dir: str | Path) -> tuple[Path, Path]:
    """The program and parameter files of an inference folder; a clear error lists what is missing."""
    folder = Path(model_dir)
    if not folder.exists():
        raise ModelError(
            f"model_dir {folder} does not exist. Export a model first (-o Global.mode=export) or pass the "
            "folder that holds inference.yml, inference.json and inference.pdiparams."
        )
    if not folder.is_dir():
        raise ModelError(
            f"model_dir {folder} is a file; pass the folder that holds inference.json and inference.pdiparams."
        )
    program = next((folder / name for name in MODEL_FILES if (folder / name).is_file()), None)
    params = folder / PARAMS_FILE
    missing = ([] if program else [" or ".join(MODEL_FILES)]) + ([] if params.is_file() else [PARAMS_FILE])
    if missing:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise ModelError(
            f"model_dir {folder} is not an inference folder: {' and '.join(missing)} missing (it holds: {present}). "
            "Re-export the model with -o Global.mode=export."
        )
    return program, params


class Predictor:
    """Runs an inference folder (ours, PaddleX's or PaddleClas's) on images; see ``predict``."""

    def __init__(
        self,
        model_dir: str | Path,
        model_name: str | None = None,
        device: str | None = None,
        batch_size: int = 1,
        cpu_threads: int | None = None,
        decode_workers: int | None = None,
        skip_errors: bool = False,
        url_timeout: float = 10.0,
        use_hpip: bool = False,
        hpi_config: dict[str, Any] | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        program, params = find_model_files(self.model_dir)
        self.spec: InferenceSpec = load_inference_spec(self.model_dir)
        self.model_name = self._check_model_name(model_name)
        self.batch_size = check_batch_size(batch_size)
        self.skip_errors = skip_errors
        self.url_timeout = url_timeout
        self.cpu_threads = cpu_threads or default_cpu_threads()
        self.decode_workers = decode_workers or min(4, max(2, self.cpu_threads))
        self.device = self._resolve(device)
        self._pool: ThreadPoolExecutor | None = None
        # the model runs through a pluggable runner: Paddle Inference, or OpenVINO/ONNX Runtime (use_hpip)
        self.runner: ModelRunner = create_runner(
            self.model_dir,
            program,
            params,
            self.device,
            self.cpu_threads,
            use_hpip,
            hpi_config,
            self.model_name,
        )

    def _check_model_name(self, model_name: str | None) -> str:
        """The folder's model name; asking for another model is an error naming both."""
        found = self.spec.model_name
        if found is None:
            if model_name is None:
                raise ModelError(
                    f"{self.spec.path} has no Global.model_name; pass model_name=... or add it to the file."
                )
            logger.warning(f"{self.spec.path} has no Global.model_name; assuming {model_name!r} as asked.")
            return model_name
        if model_name is not None and model_name != found:
            raise ModelError(
                f"{self.spec.path} says Global.model_name={found!r}, but the model asked for is {model_name!r}. "
                f"Ask for {found!r}, or pass the inference folder exported for {model_name!r}."
            )
        return found

    @staticmethod
    def _resolve(device: str | None) -> Device:
        """``None`` means the CPU; a GPU spec falls back to the CPU with a warning."""
        from ..utils.device import resolve_device

        return resolve_device(device or "cpu")

    # -- model ---------------------------------------------------------------------------------

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        """Model only: ``[N, 3, H, W]`` float32 in, the raw ``[N, D]`` features out (not normalised)."""
        out = self.runner.run(batch)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise ModelError(
                f"The model in {self.model_dir} returned shape {list(out.shape)} for a batch of {batch.shape[0]}; "
                "an image-feature model returns [N, D]."
            )
        return out

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """Model plus post-processing: L2-normalised ``[N, D]`` float32 rows."""
        feats = self.run_batch(batch).astype(np.float32, copy=False)
        if self.spec.normalize_features:
            feats = l2_normalize(feats)
        return feats

    # -- images --------------------------------------------------------------------------------

    def prepare(self, item: InputItem) -> np.ndarray:
        """Read, decode and pre-process one item to float32 CHW (runs in a worker thread)."""
        rgb = load_rgb(item, self.url_timeout)
        try:
            return self.spec.preprocess(rgb)
        except (ValueError, OSError, cv2.error) as e:
            where = item.input_path or f"array input #{item.index}"
            raise ImageReadError(f"Cannot pre-process {where}: {e}.") from e

    def predict(
        self, input: Any, batch_size: int | None = None, skip_errors: bool | None = None
    ) -> ResultStream:
        """Stream one FeatureResult per image, in input order (``len()`` gives the image count).

        ``input``: an image path, a folder (recursive, sorted), an http(s) URL, a uint8 numpy array
        (BGR, gray or BGRA) or a list of these. Bad inputs raise here, before any inference.
        """
        batch_size = self.batch_size if batch_size is None else check_batch_size(batch_size)
        skip = self.skip_errors if skip_errors is None else skip_errors
        items = expand_inputs(input, skip_errors=skip)
        return ResultStream(self._stream(items, batch_size, skip), len(items))

    __call__ = predict

    def _stream(self, items: list[InputItem], batch_size: int, skip_errors: bool) -> Iterator[FeatureResult]:
        """Decode ahead in threads, run full batches, yield results in order."""
        stems = _UniqueStems()
        prefetch = max(2 * batch_size, 2 * self.decode_workers)  # bounded: memory stays flat on huge folders
        pool = self._decode_pool() if len(items) > 1 else None  # one image: nothing to overlap
        pending: deque[tuple[InputItem, Future]] = deque()
        todo = iter(items)
        try:
            ready: list[tuple[InputItem, np.ndarray]] = []
            while True:
                while len(pending) < prefetch:
                    item = next(todo, None)
                    if item is None:
                        break
                    pending.append((item, self._submit(pool, item)))
                if not pending:
                    break
                item, future = pending.popleft()
                try:
                    ready.append((item, future.result()))
                except ImageReadError as e:
                    yield from self._emit(ready, stems)  # keep the order: earlier images first
                    ready = []
                    if not skip_errors:
                        raise
                    logger.warning(f"Skipped: {e}")
                    yield FeatureResult(
                        item.input_path, None, index=item.index, save_stem=stems.take(item), error=str(e)
                    )
                    continue
                if len(ready) == batch_size:
                    yield from self._emit(ready, stems)
                    ready = []
            yield from self._emit(ready, stems)
        finally:
            for _, future in pending:  # stopped early: drop the decodes not started yet
                future.cancel()

    def _submit(self, pool: ThreadPoolExecutor | None, item: InputItem) -> Future:
        """Start decoding ``item`` on ``pool``; without a pool, decode it here (no thread hand-off)."""
        if pool is not None:
            return pool.submit(self.prepare, item)
        future: Future = Future()
        try:
            future.set_result(self.prepare(item))
        except ImageReadError as e:
            future.set_exception(e)
        return future

    def _decode_pool(self) -> ThreadPoolExecutor:
        """The decode threads, started on first use and kept for later calls."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.decode_workers, thread_name_prefix="pxf-decode")
        return self._pool

    def _emit(
        self, ready: list[tuple[InputItem, np.ndarray]], stems: _UniqueStems
    ) -> Iterator[FeatureResult]:
        """Run one batch and yield a result per image, each with its own row."""
        if not ready:
            return
        arrays = [a for _, a in ready]
        if len(arrays) == 1:
            feats = self.embed(arrays[0][None])  # a view: no copy
        elif all(a.shape == arrays[0].shape for a in arrays):
            feats = self.embed(np.stack(arrays))
        else:  # resize_short without a crop: sizes differ, so run the images one by one
            feats = np.concatenate([self.embed(a[None]) for a in arrays])
        for row, (item, _) in enumerate(ready):
            yield FeatureResult(
                item.input_path, feats[row].copy(), index=item.index, save_stem=stems.take(item)
            )


class ResultStream:
    """A generator of results that also knows how many images it will yield (for progress bars)."""

    def __init__(self, results: Iterator[FeatureResult], total: int) -> None:
        self._results = results
        self.total = total

    def __iter__(self) -> ResultStream:
        return self

    def __next__(self) -> FeatureResult:
        return next(self._results)

    def __len__(self) -> int:
        return self.total

    def close(self) -> None:
        """Stop early: pending decodes are cancelled."""
        self._results.close()


class _UniqueStems:
    """Hands out file stems so that inputs sharing a name (a/x.jpg, b/x.jpg) save to distinct files."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, item: InputItem) -> str:
        stem = base = input_stem(item)
        n = 1
        while stem in self._used:
            stem = f"{base}_{n}"
            n += 1
        self._used.add(stem)
        return stem
