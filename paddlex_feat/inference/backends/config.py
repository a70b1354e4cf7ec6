"""``hpi_config``: the high-performance options, checked once with errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config.schema import HPI_BACKENDS as BACKENDS
from ...config.schema import PRECISIONS
from ...utils.errors import ConfigError

KEYS = ("backend", "precision", "num_threads", "cache_dir")


@dataclass(frozen=True)
class HpiConfig:
    """``backend`` None picks the fastest installed one; ``precision`` is fp32 unless asked otherwise."""

    backend: str | None = None
    precision: str = "fp32"
    num_threads: int | None = None  # None: the predictor's cpu_threads
    cache_dir: Path | None = None  # where converted ONNX files go when the model folder is read-only


def parse_hpi_config(raw: dict[str, Any] | HpiConfig | None, key: str = "hpi_config") -> HpiConfig:
    """Validate a user's ``hpi_config`` dict; unknown keys and bad values name ``key.<name>``."""
    if raw is None:
        return HpiConfig()
    if isinstance(raw, HpiConfig):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{key} must be a mapping such as {{'backend': 'openvino'}}; got {raw!r:.80}.")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]} is not a known key; known keys: {', '.join(KEYS)}.")
    backend = raw.get("backend")
    if backend in ("auto", ""):
        backend = None
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(
            f"{key}.backend={backend!r} is not supported; use one of {', '.join(BACKENDS)}, or leave it "
            "unset to pick the fastest installed backend."
        )
    precision = raw.get("precision") or "fp32"
    if precision not in PRECISIONS:
        raise ConfigError(
            f"{key}.precision={precision!r} is not supported; use one of {', '.join(PRECISIONS)}."
        )
    threads = raw.get("num_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"{key}.num_threads must be a positive integer or null; got {threads!r}.")
    cache_dir = raw.get("cache_dir")
    if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
        raise ConfigError(f"{key}.cache_dir must be a folder path or null; got {cache_dir!r}.")
    return HpiConfig(backend, precision, threads, Path(cache_dir) if cache_dir else None)
