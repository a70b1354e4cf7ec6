"""The 'openvino' backend: the converted ONNX model compiled by OpenVINO for the CPU.

The precision is always set explicitly: on a CPU with bf16 (AVX512_BF16/AMX) OpenVINO's default
is bf16, which would silently change the features; fp32 is the default here, as in PaddleX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.logger import logger
from .base import BackendUnavailableError, import_optional

# our precision names -> OpenVINO's INFERENCE_PRECISION_HINT values and capability names
# int8: the QDQ file's quantized layers run in int8 whatever the hint; f32 keeps the layers left in
# fp32 in fp32 (OpenVINO's default on a bf16 CPU would silently run them in bf16)
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


class OpenVINORunner:
    """Runs an ONNX file with OpenVINO on the CPU, in latency mode, one infer request."""

    backend = "openvino"

    def __init__(self, onnx_path: Path, precision: str, num_threads: int) -> None:
        ov = import_optional("openvino", "The 'openvino' backend")
        core = ov.Core()
        capabilities = tuple(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        needed = _CAPABILITY.get(precision)
        if needed and needed not in capabilities:
            raise BackendUnavailableError(
                f"hpi_config.precision={precision!r} needs a CPU that computes in {precision} natively; "
                f"OpenVINO reports only {', '.join(capabilities)} here. Use precision 'fp32'."
            )
        config = {
            "INFERENCE_PRECISION_HINT": _HINTS[precision],
            "INFERENCE_NUM_THREADS": int(num_threads),
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        self._compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        in_use = self._compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # e.g. "f32"
        logger.info(
            f"OpenVINO {ov.get_version().split('-')[0]} on CPU: precision {precision}, INFERENCE_PRECISION_HINT={in_use} "
            f"(asked {_HINTS[precision]}), {num_threads} threads"
        )
        self.precision = precision
        self._request = self._compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass: ``[N, 3, H, W]`` float32 in, ``[N, D]`` float32 out."""
        self._request.infer([np.ascontiguousarray(batch, dtype=np.float32)])
        # the output tensor's buffer is reused by the next infer: hand out a copy
        return np.array(self._request.get_output_tensor(0).data, dtype=np.float32, copy=True)
