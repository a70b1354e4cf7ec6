"""Eval/inference preprocessing (numpy + cv2): resize to the input size, normalise, HWC -> CHW.

Training augmentations live in ``augment.py``; this is the deterministic path shared by
evaluation, training's per-epoch eval and (in the same form) exported inference configs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# the one interpolation table: registry names, and the aliases found in PaddleX/PaddleClas inference.yml
INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "linear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
    "lanczos4": cv2.INTER_LANCZOS4,
}


def fold_normalize(
    mean: Sequence[float], std: Sequence[float], scale: float = 1.0 / 255.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel float32 ``(alpha, beta)`` with ``x * alpha + beta == (x * scale - mean) / std``."""
    std_arr = np.asarray(std, dtype=np.float32)
    return (scale / std_arr).astype(np.float32), (-np.asarray(mean, dtype=np.float32) / std_arr).astype(
        np.float32
    )


def normalize_to_chw(image: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """HWC (uint8 or float) -> float32 CHW ``image * alpha + beta``, in one pass with no temporaries."""
    out = np.empty((3, *image.shape[:2]), np.float32)
    np.multiply(image.transpose(2, 0, 1), alpha[:, None, None], out=out)  # reads uint8, computes in float32
    out += beta[:, None, None]
    return out


class EvalTransform:
    """RGB uint8 HWC image -> normalised float32 CHW of shape [3, size, size]."""

    def __init__(
        self,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "bilinear",
    ) -> None:
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {interpolation!r}; use one of {sorted(INTERPOLATIONS)}")
        if input_size < 1:
            raise ValueError(f"input size must be >= 1, got {input_size}")
        self.size = int(input_size)
        self.interpolation = interpolation
        self.alpha, self.beta = fold_normalize(mean, std)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != (self.size, self.size):
            image = cv2.resize(
                image, (self.size, self.size), interpolation=INTERPOLATIONS[self.interpolation]
            )
        return normalize_to_chw(image, self.alpha, self.beta)


def eval_transform(model_name: str, input_size: int | None = None) -> EvalTransform:
    """The model's eval transform (interpolation, mean/std from its registry entry)."""
    from ..models.registry import get_model_info

    info = get_model_info(model_name)
    return EvalTransform(input_size or info.input_size, info.mean, info.std, info.interpolation)
