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
    auto_precision,
    bf16_slower_reason,
    cpu_has_amx_bf16,
    cpu_has_bf16,
    import_optional,
    is_installed,
    pip_command,
)
from .config import BACKENDS, PRECISIONS, HpiConfig, parse_hpi_config
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
    "auto_precision",
    "bf16_slower_reason",
    "cpu_has_amx_bf16",
    "cpu_has_bf16",
    "create_runner",
    "parse_hpi_config",
]

_ONNX_BACKENDS = ("openvino", "onnxruntime")
# what each backend computes in; OpenVINO's bf16/fp16 also need the CPU to have them (checked there)
BACKEND_PRECISIONS = {"paddle": ("fp32",), "onnxruntime": ("fp32",), "openvino": PRECISIONS}


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
    if hpi.precision != "fp32" and "openvino" not in installed:
        raise BackendUnavailableError(
            f"hpi_config.precision={hpi.precision!r} on the CPU needs OpenVINO; `{pip_command('openvino')}`."
        )
    if "openvino" in installed:
        # measured on a 2-core AVX-512 Xeon, PP-ShiTuV2_rec fp32: OpenVINO at least as fast as ONNX
        # Runtime and 2x Paddle Inference, and the only CPU backend here with bf16/fp16
        return "openvino", "device cpu: OpenVINO is the fastest installed CPU backend"
    return "onnxruntime", "device cpu: ONNX Runtime is the only installed ONNX backend (OpenVINO is faster)"


def create_runner(
    model_dir: Path,
    program: Path,
    params: Path,
    device: Device,
    num_threads: int,
    use_hpip: bool = False,
    hpi_config: dict[str, Any] | HpiConfig | None = None,
) -> ModelRunner:
    """The runner for an inference folder: Paddle Inference unless ``use_hpip``."""
    if not use_hpip:
        return PaddleRunner(program, params, device, num_threads)
    hpi = parse_hpi_config(hpi_config)
    backend, reason = choose_backend(hpi, device)
    if hpi.precision not in BACKEND_PRECISIONS[backend]:  # before any conversion work
        raise BackendUnavailableError(
            f"hpi_config.precision={hpi.precision!r} is not available with the {backend!r} backend, which runs "
            f"fp32 here; use hpi_config={{'backend': 'openvino', 'precision': {hpi.precision!r}}}."
        )
    if hpi.precision == "bf16" and not device.startswith("gpu") and (reason_slow := bf16_slower_reason()):
        logger.warning(f"hpi_config.precision='bf16': {reason_slow}")
    threads = hpi.num_threads or num_threads
    logger.info(f"High-performance inference: backend {backend} ({reason}), precision {hpi.precision}")
    if backend == "paddle":
        return PaddleRunner(program, params, device, threads)
    from .onnx_cache import onnx_model_path

    onnx_path = onnx_model_path(model_dir, program, params, hpi.cache_dir)
    if backend == "openvino":
        from .openvino_runner import OpenVINORunner

        if device.is_gpu:
            logger.warning(f"The 'openvino' backend runs on the CPU here; device={device} is not used")
        return OpenVINORunner(onnx_path, hpi.precision, threads)
    from .onnxruntime_runner import OnnxRuntimeRunner

    return OnnxRuntimeRunner(onnx_path, threads, device)
