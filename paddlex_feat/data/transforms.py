"""Eval/inference preprocessing (numpy + cv2): resize to the input size, normalise, HWC -> CHW.

Training augmentations live in ``augment.py``; this is the deterministic path shared by
evaluation, training's per-epoch eval and (in the same form) exported inference configs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


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
        # (x / 255 - mean) / std == x * scale - shift, folded into one multiply-add per pixel.
        std_arr = np.asarray(std, dtype=np.float32)
        self.scale = (1.0 / (255.0 * std_arr)).astype(np.float32)
        self.shift = (np.asarray(mean, dtype=np.float32) / std_arr).astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != (self.size, self.size):
            image = cv2.resize(
                image, (self.size, self.size), interpolation=INTERPOLATIONS[self.interpolation]
            )
        normalised = image.astype(np.float32) * self.scale - self.shift
        return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def eval_transform(model_name: str, input_size: int | None = None) -> EvalTransform:
    """The model's eval transform (interpolation, mean/std from its registry entry)."""
    from ..models.registry import get_model_info

    info = get_model_info(model_name)
    return EvalTransform(input_size or info.input_size, info.mean, info.std, info.interpolation)
