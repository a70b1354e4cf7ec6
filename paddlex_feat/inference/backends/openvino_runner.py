"""The 'openvino' backend: the converted ONNX model compiled by OpenVINO for the CPU.

The precision is always set explicitly: on a CPU with bf16 (AVX512_BF16/AMX) OpenVINO's default
is bf16, which would silently change the features; fp32 is the default here, as in PaddleX.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...utils.logger import logger
from .base import BackendUnavailableError, import_optional

# our precision names -> OpenVINO's INFERENCE_PRECISION_HINT values and capability names
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


def openvino_cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's OPTIMIZATION_CAPABILITIES of the CPU (e.g. FP32, BF16, FP16, INT8)."""
    ov = import_optional("openvino", "The 'openvino' backend")
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


class OpenVINORunner:
    """Runs an ONNX file with OpenVINO on the CPU, in latency mode, one infer request per shape.

    With ``input_hw`` known (a fixed-size ``inference.yml``), the model is compiled for static
    shapes: one compiled model per batch size, made on first use (bf16 at batch 1: 7% faster than a
    dynamic-shape compile). A smaller batch is padded up to a compiled size instead of compiling
    again (images never interact at inference), and at most ``MAX_COMPILED`` sizes are kept.
    """

    backend = "openvino"
    MAX_COMPILED = 3

    def __init__(
        self, onnx_path: Path, precision: str, num_threads: int, input_hw: tuple[int, int] | None = None
    ) -> None:
        ov = import_optional("openvino", "The 'openvino' backend")
        self._core = ov.Core()
        capabilities = tuple(self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        needed = _CAPABILITY.get(precision)
        if needed and needed not in capabilities:
            raise BackendUnavailableError(
                f"hpi_config.precision={precision!r} needs a CPU that computes in {precision} natively; "
                f"OpenVINO reports only {', '.join(capabilities)} here. Use precision 'fp32'."
            )
        self._config = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "INFERENCE_NUM_THREADS": int(num_threads),
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        self._model = self._core.read_model(str(onnx_path))
        self._input_hw = input_hw
        self._requests: dict[int | None, Any] = {}  # batch size (None: dynamic) -> infer request
        # compile now, so that a broken model fails at load and the precision in use can be logged
        first = self._request(1 if input_hw else None)
        in_use = first.get_compiled_model().get_property("INFERENCE_PRECISION_HINT").to_string()
        logger.info(
            f"OpenVINO {ov.get_version().split('-')[0]} on CPU: INFERENCE_PRECISION_HINT={in_use} "
            f"(asked {_HINTS[precision]}), {num_threads} threads, "
            + (f"static {input_hw[0]}x{input_hw[1]} input" if input_hw else "dynamic input shape")
        )
        self.precision = precision

    def _request(self, batch_size: int | None) -> Any:
        """The infer request compiled for ``batch_size`` (None: dynamic shapes), made once."""
        request = self._requests.pop(batch_size, None)
        if request is None:
            model = self._model
            if batch_size is not None:
                model = self._model.clone()
                model.reshape([batch_size, 3, *self._input_hw])
            request = self._core.compile_model(model, "CPU", self._config).create_infer_request()
            static = [size for size in self._requests if size is not None]
            if len(static) >= self.MAX_COMPILED:
                del self._requests[static[0]]  # the least recently used size
        self._requests[batch_size] = request  # re-inserted last: most recently used
        return request

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass: ``[N, 3, H, W]`` float32 in, ``[N, D]`` float32 out."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        n = batch.shape[0]
        if self._input_hw is None or tuple(batch.shape[2:]) != self._input_hw:
            return self._infer(self._request(None), batch)  # other sizes: the dynamic-shape compile
        fits = [size for size in self._requests if size is not None and size >= n]
        size = min(fits) if fits else n
        if size > n:  # pad with zero images; their rows are dropped
            batch = np.concatenate([batch, np.zeros((size - n, *batch.shape[1:]), np.float32)])
        return self._infer(self._request(size), batch)[:n]

    @staticmethod
    def _infer(request: Any, batch: np.ndarray) -> np.ndarray:
        request.infer([batch])
        # the output tensor's buffer is reused by the next infer: hand out a copy
        return np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)
