"""The 'paddle' backend: Paddle Inference with oneDNN on the CPU (normal mode), or CUDA on a GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...utils.device import Device
from ...utils.errors import ModelError


class PaddleRunner:
    """Runs an exported program with Paddle Inference: the new IR and executor, fp32."""

    backend = "paddle"
    precision = "fp32"

    def __init__(self, program: Path, params: Path, device: Device, num_threads: int) -> None:
        self.device = device
        self._predictor = self._create(program, params, device, num_threads)
        self._input = self._predictor.get_input_handle(self._predictor.get_input_names()[0])
        self._output = self._predictor.get_output_handle(self._predictor.get_output_names()[0])

    @staticmethod
    def _create(program: Path, params: Path, device: Device, num_threads: int) -> Any:
        """Build the predictor: oneDNN on the CPU, the new IR and executor."""
        from paddle import inference as paddle_infer

        config = paddle_infer.Config(str(program), str(params))
        if device.is_gpu:
            config.enable_use_gpu(256, device.gpu_id)
        else:
            config.disable_gpu()
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(10)  # batch shapes vary at the tail; keep a few kernels
            config.set_cpu_math_library_num_threads(num_threads)
        if hasattr(config, "enable_new_ir"):
            config.enable_new_ir(True)
        if hasattr(config, "enable_new_executor"):
            config.enable_new_executor()
        if hasattr(config, "set_optimization_level"):
            config.set_optimization_level(3)  # all PIR fusion passes, as PaddleX's CPU runner
        config.enable_memory_optim()
        config.disable_glog_info()
        try:
            return paddle_infer.create_predictor(config)
        except Exception as e:  # Paddle raises bare RuntimeErrors/ValueErrors for broken files
            raise ModelError(
                f"Paddle Inference could not load {program} with {params.name}: {str(e).strip()[:400]}. "
                "The files may be truncated or from an incompatible Paddle version; re-export the model."
            ) from e

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass: ``[N, 3, H, W]`` float32 in, ``[N, D]`` out."""
        self._input.reshape(list(batch.shape))
        self._input.copy_from_cpu(np.ascontiguousarray(batch, dtype=np.float32))
        self._predictor.run()
        return self._output.copy_to_cpu()
