"""Mode runners: one module per ``Global.mode``, each exposing ``run(cfg) -> dict``."""

from __future__ import annotations

import importlib
from typing import Callable

# A fixed table, imported lazily so that check_dataset never pays for importing paddle.
RUNNER_MODULES = {
    "check_dataset": "paddlex_feat.engine.check_dataset",
    "train": "paddlex_feat.engine.train",
    "evaluate": "paddlex_feat.engine.evaluate",
    "export": "paddlex_feat.engine.export",
    "predict": "paddlex_feat.engine.predict",
    "build_index": "paddlex_feat.engine.build_index",
    "search": "paddlex_feat.engine.search",
    "serve": "paddlex_feat.engine.serve",
}


def get_runner(mode: str) -> Callable[[dict], dict]:
    """The ``run`` function of a mode's module."""
    return importlib.import_module(RUNNER_MODULES[mode]).run
