"""paddlex_feat: image feature (embedding) models on PaddlePaddle, with PaddleX's workflow."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "build_index", "create_model", "load_index"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import paddlex_feat` (and the CLI's config errors) never pay for importing paddle.
    if name == "create_model":
        from .api import create_model

        return create_model
    if name in ("build_index", "load_index"):
        from . import retrieval

        return getattr(retrieval, name)
    raise AttributeError(f"module 'paddlex_feat' has no attribute {name!r}")
