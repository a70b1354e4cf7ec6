"""Training augmentation of the PP-ShiTuV2 recipe, in numpy/cv2, scaled to the input size.

Reference recipe at 224: resize 224, horizontal flip, pad 10 + random crop 224, random rotation
within +-90 degrees with probability 0.5, ImageNet normalisation. At another input size S the pad
is 10 * S / 224, so that ``Train.input_size=64`` keeps the same geometry.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .transforms import INTERPOLATIONS, fold_normalize, normalize_to_chw


class TrainTransform:
    """RGB uint8 HWC image + a per-sample RNG -> normalised float32 CHW array."""

    def __init__(
        self,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        interpolation: str = "bilinear",
        rotate_prob: float = 0.5,
        max_degrees: float = 90.0,
    ) -> None:
        self.size = size
        self.pad = max(1, round(10 * size / 224))
        self.interp = INTERPOLATIONS[interpolation]
        self.rotate_prob, self.max_degrees = rotate_prob, max_degrees
        self.alpha, self.beta = fold_normalize(mean, std)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        image = cv2.resize(image, (s, s), interpolation=self.interp)
        if rng.random() < 0.5:
            image = image[:, ::-1]
        p = self.pad
        image = cv2.copyMakeBorder(np.ascontiguousarray(image), p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        top, left = rng.integers(0, 2 * p + 1, size=2)
        image = image[top : top + s, left : left + s]
        if rng.random() < self.rotate_prob:
            angle = rng.uniform(-self.max_degrees, self.max_degrees)
            matrix = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), angle, 1.0)
            image = cv2.warpAffine(image, matrix, (s, s), flags=cv2.INTER_LINEAR, borderValue=0)
        return normalize_to_chw(image, self.alpha, self.beta)
