"""Mode runners: one module per ``Global.mode``, named after it, each exposing ``run(cfg) -> dict``."""

from __future__ import annotations

import importlib
from typing import Callable

from ..config.schema import MODES


def get_runner(mode: str) -> Callable[[dict], dict]:
    """The ``run`` function of ``paddlex_feat.engine.<mode>``, imported on first use.

    Lazily, so that check_dataset never pays for importing paddle. The module is derived from the
    mode's name (config/schema.py ``MODES``), so there is no second list to keep in step.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
    return importlib.import_module(f"{__name__}.{mode}").run
