"""Model runners: Paddle Inference (normal mode) and, with ``use_hpip=True``, OpenVINO or ONNX Runtime.

``create_runner`` is the one entry point: it checks ``hpi_config``, picks the backend (logging which
and why), converts the model to ONNX once (cached by hash) and returns an object with
``run(batch) -> features``, ``backend`` and ``precision``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...utils.device import Device
from ...utils.logger import logger
from .base import (
    HPI_PACKAGES,
    PIP_EXTRA,
    BackendUnavailableError,
    ModelRunner,
    cpu_has_bf16,
    import_optional,
    is_installed,
    pip_command,
)
from .config import BACKENDS, PRECISIONS, HpiConfig, parse_hpi_config
from .int8 import int8_model_path, log_int8_hint, warn_if_no_int8_instructions
from .paddle_runner import PaddleRunner

__all__ = [
    "BACKENDS",
    "HPI_PACKAGES",
    "PIP_EXTRA",
    "PRECISIONS",
    "BackendUnavailableError",
    "HpiConfig",
    "ModelRunner",
    "PaddleRunner",
    "choose_backend",
    "cpu_has_bf16",
    "create_runner",
    "parse_hpi_config",
]

_ONNX_BACKENDS = ("openvino", "onnxruntime")
# what each backend computes in; OpenVINO's bf16/fp16 also need the CPU to have them (checked there).
# Both ONNX runtimes run the int8 QDQ file; OpenVINO first: on a 2-core AVX2 EPYC it ran the int8
# PP-ShiTuV2_rec at ~0.55x its fp32 time, where ONNX Runtime's int8 convolutions were slower than its fp32.
BACKEND_PRECISIONS = {"paddle": ("fp32",), "onnxruntime": ("fp32", "int8"), "openvino": PRECISIONS}


def choose_backend(hpi: HpiConfig, device: Device) -> tuple[str, str]:
    """The backend to use and why; an explicit one must be installed (else the pip command)."""
    if hpi.backend is not None:
        if hpi.backend in _ONNX_BACKENDS:
            import_optional(hpi.backend, f"hpi_config.backend={hpi.backend!r}")
            import_optional("paddle2onnx", f"hpi_config.backend={hpi.backend!r} (model conversion to ONNX)")
        return hpi.backend, "asked for in hpi_config.backend"
    if device.is_gpu:
        from .onnxruntime_runner import cuda_provider_available

        if is_installed("onnxruntime") and is_installed("paddle2onnx") and cuda_provider_available():
            return "onnxruntime", f"device {device}: ONNX Runtime's CUDA provider is installed"
        return "paddle", f"device {device}: no CUDA-enabled ONNX Runtime, so Paddle Inference on the GPU"
    installed = [b for b in _ONNX_BACKENDS if is_installed(b)]
    if not installed or not is_installed("paddle2onnx"):
        missing = [m for m in ("paddle2onnx", *_ONNX_BACKENDS) if not is_installed(m)]
        raise BackendUnavailableError(
            f"use_hpip=True needs paddle2onnx and OpenVINO or ONNX Runtime; missing: {', '.join(missing)}. "
            f"Install the high-performance extra with `{PIP_EXTRA}` (or `{pip_command()}`), "
            "or use normal mode: use_hpip=False.",
            details={"missing_packages": missing, "pip_command": pip_command()},
        )
    if "openvino" in installed:
        # measured on a 2-core AVX-512 Xeon, PP-ShiTuV2_rec fp32: OpenVINO at least as fast as ONNX
        # Runtime and 2x Paddle Inference, and the only CPU backend here with bf16/fp16
        return "openvino", "device cpu: OpenVINO is the fastest installed CPU backend"
    if hpi.precision not in BACKEND_PRECISIONS["onnxruntime"]:
        raise BackendUnavailableError(
            f"hpi_config.precision={hpi.precision!r} on the CPU needs OpenVINO; `{pip_command('openvino')}`."
        )
    return "onnxruntime", "device cpu: ONNX Runtime is the only installed ONNX backend (OpenVINO is faster)"


def create_runner(
    model_dir: Path,
    program: Path,
    params: Path,
    device: Device,
    num_threads: int,
    use_hpip: bool = False,
    hpi_config: dict[str, Any] | HpiConfig | None = None,
    model_name: str | None = None,
) -> ModelRunner:
    """The runner for an inference folder: Paddle Inference unless ``use_hpip``."""
    if not use_hpip:
        log_int8_hint(model_dir, "fp32", use_hpip)
        return PaddleRunner(program, params, device, num_threads)
    hpi = parse_hpi_config(hpi_config)
    log_int8_hint(model_dir, hpi.precision, use_hpip)
    backend, reason = choose_backend(hpi, device)
    if hpi.precision not in BACKEND_PRECISIONS[backend]:  # before any conversion work
        raise BackendUnavailableError(
            f"hpi_config.precision={hpi.precision!r} is not available with the {backend!r} backend, which runs "
            f"{'/'.join(BACKEND_PRECISIONS[backend])} here; use hpi_config={{'backend': 'openvino', 'precision': {hpi.precision!r}}}."
        )
    threads = hpi.num_threads or num_threads
    logger.info(f"High-performance inference: backend {backend} ({reason}), precision {hpi.precision}")
    if backend == "paddle":
        return PaddleRunner(program, params, device, threads)
    if hpi.precision == "int8":
        onnx_path = int8_model_path(model_dir, program, params, model_name)
        warn_if_no_int8_instructions()
    else:
        from .onnx_cache import onnx_model_path

        onnx_path = onnx_model_path(model_dir, program, params, hpi.cache_dir)
    if backend == "openvino":
        from .openvino_runner import OpenVINORunner

        if device.is_gpu:
            logger.warning(f"The 'openvino' backend runs on the CPU here; device={device} is not used")
        return OpenVINORunner(onnx_path, hpi.precision, threads)
    from .onnxruntime_runner import OnnxRuntimeRunner

    return OnnxRuntimeRunner(onnx_path, threads, device, hpi.precision)
