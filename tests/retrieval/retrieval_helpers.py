"""Test helpers: distinct synthetic gallery images."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from infer_helpers import random_bgr  # noqa: E402

LABELS = ["Coca-Cola 330 ml", "Fanta orange", "Sprite", "Pepsi max 1.5 l"]


def write_image(path: Path, seed: int) -> Path:
    """A distinct synthetic image: smooth random colours plus a seed-dependent block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = random_bgr(seed, 40, 48)
    img[(seed % 4) * 8 : (seed % 4) * 8 + 8, :] = np.uint8((seed * 37) % 256)
    assert cv2.imwrite(str(path), img)
    return path
