"""Fixtures: an inference folder of the stand-in network, and a folder of small images."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from infer_helpers import random_bgr, save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inference folder of the stand-in network (built once per session)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """11 images in nested folders, mixed extensions and case (11 = one full batch of 8 plus 3)."""
    root = tmp_path_factory.mktemp("images")
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a").mkdir()
    names = ["a/x.jpg", "a/y.PNG", "b/x.jpeg", "b/deep/z.bmp", "b/deep/w.webp", "c.JPG"]
    names += [f"n{i}.png" for i in range(5)]
    for i, name in enumerate(names):
        assert cv2.imwrite(str(root / name), random_bgr(i))
    (root / "notes.txt").write_text("not an image")
    return root
