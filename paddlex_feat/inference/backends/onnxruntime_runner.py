"""The 'onnxruntime' backend: the converted ONNX model on ONNX Runtime's CPU or CUDA provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.device import CPU, Device
from ...utils.logger import logger
from .base import import_optional

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def cuda_provider_available() -> bool:
    """Whether the installed ONNX Runtime can run on an NVIDIA GPU (onnxruntime-gpu)."""
    ort = import_optional("onnxruntime", "The 'onnxruntime' backend")
    return CUDA_PROVIDER in ort.get_available_providers()


class OnnxRuntimeRunner:
    """Runs an ONNX file with ONNX Runtime: full graph optimisation; fp32, or the int8 QDQ file."""

    backend = "onnxruntime"

    def __init__(
        self, onnx_path: Path, num_threads: int, device: Device = CPU, precision: str = "fp32"
    ) -> None:
        self.precision = precision  # "int8" only for the QDQ file, which ORT fuses into int8 kernels
        ort = import_optional("onnxruntime", "The 'onnxruntime' backend")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1  # one image-feature graph: no parallel branches to feed
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # paddle2onnx leaves unused initialisers; ORT warns for each
        # idle workers that spin steal the core the decode threads and the caller need (2-core p90: 12.4 -> 8.4 ms)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = [CPU_PROVIDER]
        if device.is_gpu:
            if CUDA_PROVIDER in ort.get_available_providers():
                providers = [(CUDA_PROVIDER, {"device_id": device.gpu_id}), CPU_PROVIDER]
            else:
                logger.warning(
                    f"device={device} but this ONNX Runtime has no CUDA provider (install onnxruntime-gpu); "
                    "running on the CPU"
                )
        self._session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name
        self.device = "gpu" if self._session.get_providers()[0] == CUDA_PROVIDER else "cpu"
        logger.info(
            f"ONNX Runtime {ort.__version__} on {self._session.get_providers()[0]}: precision {precision}, "
            f"{num_threads} threads"
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass: ``[N, 3, H, W]`` float32 in, ``[N, D]`` float32 out."""
        feed = {self._input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        return self._session.run([self._output_name], feed)[0]
