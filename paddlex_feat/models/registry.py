"""One model registry: each model name maps to a builder and its facts (the one table).

Train, evaluate, export (inference.yml) and predict read input size, interpolation,
mean/std and feature dim from here, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..utils.errors import ModelError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_BUCKET = "https://paddle-model-ecology.bj.bcebos.com/paddlex"
PRETRAINED_URL_BASE = f"{_BUCKET}/official_pretrained_model"  # .pdparams, as PaddleX's configs name them
INFERENCE_URL_BASE = f"{_BUCKET}/official_inference_model/paddle3.0.0"  # where PaddleX 3.7.2 gets _infer.tar


@dataclass(frozen=True)
class ModelInfo:
    """Per-model facts shared by every stage."""

    name: str
    input_size: int = 224
    interpolation: str = "bilinear"  # resize for eval/inference: bilinear or bicubic
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    feature_dim: int = 512
    pretrained_url: str | None = None  # full model, as PaddleX's Export.weight_path
    backbone_url: str | None = None  # what PaddleX's Train.pretrain_weight_path points at
    loss: str = "ce_triplet"  # the recipe: "ce_triplet" (FC head) or "arcmargin" (ArcMargin head alone)
    paddleclas_arch: tuple[str, str, str] = ("", "", "")  # PaddleClas's Backbone, Neck, Head names


_BUILDERS: dict[str, Callable[..., Any]] = {}
_INFOS: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``builder(num_classes, **overrides)`` under ``info.name``; duplicates fail."""

    def wrap(builder: Callable[..., Any]) -> Callable[..., Any]:
        if info.name in _BUILDERS:
            raise ValueError(f"model {info.name!r} is registered twice")
        _BUILDERS[info.name] = builder
        _INFOS[info.name] = info
        return builder

    return wrap


def list_models() -> list[str]:
    """Registered model names, sorted."""
    _import_families()
    return sorted(_BUILDERS)


def get_model_info(name: str) -> ModelInfo:
    """The facts of a registered model; an unknown name lists the known ones."""
    _import_families()
    if name not in _INFOS:
        raise ModelError(f"Unknown model {name!r}. Known models: {', '.join(sorted(_INFOS))}.")
    return _INFOS[name]


def build_model(model_name: str, num_classes: int, **overrides: Any):
    """Build a registered model; in eval mode ``model(x)`` gives the [N, 512] feature."""
    get_model_info(model_name)
    return _BUILDERS[model_name](num_classes=num_classes, **overrides)


def _import_families() -> None:
    """Import the family modules, whose decorators fill the registry."""
    from . import families  # noqa: F401
