"""The training augmentation: shape, range, determinism per (seed, epoch, index)."""

from __future__ import annotations

import numpy as np

from paddlex_feat.data.augment import TrainTransform


def test_train_transform_shape_range_and_determinism() -> None:
    transform = TrainTransform(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    image = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    a = transform(image, np.random.default_rng([1, 2, 3]))
    b = transform(image, np.random.default_rng([1, 2, 3]))
    c = transform(image, np.random.default_rng([1, 2, 4]))
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() > -2.2 and a.max() < 2.7
