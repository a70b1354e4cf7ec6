"""What every model runner honours, the optional-dependency check, and the CPU's precision support."""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Protocol

import numpy as np

from ...utils.errors import PaddlexFeatError

PIP_EXTRA = 'pip install -e ".[hpi]"'  # from a checkout; the packages below are what it installs
# the versions tested here with paddlepaddle 3.3.1 on Python 3.11 (setup.cfg's hpi extra pins the same)
HPI_PACKAGES = {
    "paddle2onnx": "paddle2onnx==2.1.0",
    "onnxruntime": "onnxruntime==1.32.0",
    "openvino": "openvino==2026.4.1",
}


class BackendUnavailableError(PaddlexFeatError):
    """A high-performance backend, or the converter it needs, is not installed or cannot run here."""


class ModelRunner(Protocol):
    """Runs the model only: ``[N, 3, H, W]`` float32 in, ``[N, D]`` features out."""

    backend: str  # "paddle", "openvino" or "onnxruntime"
    precision: str  # "fp32", "bf16", "fp16" or "int8"

    def run(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass on a prepared batch."""
        ...


def pip_command(*modules: str) -> str:
    """The pip command that installs ``modules`` (all the hpi packages when none are named)."""
    names = [HPI_PACKAGES[m] for m in (modules or HPI_PACKAGES)]
    return f"pip install {' '.join(names)}"


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import an optional package, or raise a BackendUnavailableError with the exact pip command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailableError(
            f"{purpose} needs the Python package {module!r}, which is not installed ({e}). "
            f"Install the high-performance extra with `{PIP_EXTRA}` (or `{pip_command(module)}`), "
            "or use normal mode: use_hpip=False / -o Predict.use_hpip=False.",
            details={"missing_package": module, "pip_command": pip_command(module)},
        ) from e


def is_installed(module: str) -> bool:
    """Whether ``module`` imports (a package that is present but broken counts as missing)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty off Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:  # not Linux: "unknown" reads as "no bf16"
        return frozenset()
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX512_BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
