"""HTTP serving (``Global.mode=serve``): PaddleX-compatible and native endpoints, a search page.

Needs the ``[serve]`` extra (FastAPI, uvicorn, python-multipart, prometheus-client);
``require_serve_deps()`` says how to install it when it is missing.
"""

from __future__ import annotations

import importlib.util

from ..utils.errors import PaddlexFeatError

SERVE_DEPS = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "multipart": "python-multipart",
    "prometheus_client": "prometheus-client",
    "orjson": "orjson",
}


def require_serve_deps() -> None:
    """Raise a clear error with the pip command when a serving dependency is not installed."""
    missing = [pkg for module, pkg in SERVE_DEPS.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise PaddlexFeatError(
            f"Serving needs {', '.join(missing)}, which is not installed. Install the serving extra: "
            "pip install -e \".[serve]\" (or pip install 'paddlex_feat[serve]')."
        )
