"""Argument checks shared by the Python API and the CLI modes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import UsageError


def check_batch_size(batch_size: Any, key: str = "batch_size") -> int:
    """A positive int, or a UsageError naming ``key``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(
            f"{key} must be a positive integer; got {batch_size!r}. Use 1 or more, e.g. {key}=8."
        )
    return int(batch_size)
