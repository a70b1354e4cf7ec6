"""ImageListDataset (decode, BGR -> RGB, transform) and the eval transform."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from paddlex_feat.data.dataset import ImageListDataset, decode_rgb
from paddlex_feat.data.lists import ListEntry
from paddlex_feat.data.transforms import EvalTransform, eval_transform
from paddlex_feat.models import get_model_info
from paddlex_feat.utils.errors import DatasetError


def write_png(path: Path, image_rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))


def test_dataset_yields_rgb_chw_label_and_index(tmp_path):
    red = np.zeros((6, 8, 3), np.uint8)
    red[..., 0] = 200  # red in RGB: decoding must undo cv2's BGR order
    write_png(tmp_path / "images" / "a.png", red)
    entries = [ListEntry("images/a.png", 7, 1), ListEntry("images/a.png", 9, 2)]
    dataset = ImageListDataset(entries, tmp_path, lambda im: im.transpose(2, 0, 1).astype(np.float32))
    image, label, index = dataset[1]
    assert image.shape == (3, 6, 8) and image.dtype == np.float32
    assert image[0].min() == 200 and image[1:].max() == 0
    assert (int(label), int(index)) == (9, 1) and label.dtype == np.int64
    assert len(dataset) == 2


def test_unreadable_image_names_the_list_line(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    dataset = ImageListDataset([ListEntry("bad.jpg", 0, 4)], tmp_path, lambda im: im, list_name="query.txt")
    with pytest.raises(DatasetError, match=r"query\.txt:4: cannot read image .*bad\.jpg"):
        dataset[0]
    assert decode_rgb(str(tmp_path / "missing.jpg")) is None


def test_eval_transform_resizes_and_normalises():
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    transform = EvalTransform(4, mean, std, "bilinear")
    image = np.full((10, 6, 3), (255, 0, 51), np.uint8)
    out = transform(image)
    assert out.shape == (3, 4, 4) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = (np.array([1.0, 0.0, 0.2]) - mean) / std
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=1e-5)


def test_eval_transform_uses_the_models_interpolation():
    info = get_model_info("PP-ShiTuV2_rec")
    transform = eval_transform("PP-ShiTuV2_rec", 32)
    assert (transform.size, transform.interpolation) == (32, info.interpolation)
    assert eval_transform("PP-ShiTuV2_rec").size == info.input_size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    nearest = EvalTransform(32, info.mean, info.std, "nearest")(image)
    assert not np.allclose(transform(image), nearest)  # the interpolation really changes the pixels


def test_eval_transform_refuses_an_unknown_interpolation():
    with pytest.raises(ValueError, match="unknown interpolation 'cubicc'"):
        EvalTransform(32, (0, 0, 0), (1, 1, 1), "cubicc")
