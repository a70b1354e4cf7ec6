"""The P x K batch sampler: batch shape, determinism, small class counts."""

from __future__ import annotations

import pytest

from paddlex_feat.data.sampler import PKBatchSampler
from paddlex_feat.utils.errors import ConfigError


def test_pk_sampler_batches_are_p_classes_times_k() -> None:
    labels = [c for c in range(10) for _ in range(3)]  # 10 classes of 3 images: K=4 needs replacement
    sampler = PKBatchSampler(labels, batch_size=16, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 30 // 16
    for batch in batches:
        assert len(batch) == 16
        classes = [labels[i] for i in batch]
        assert all(classes.count(c) == 4 for c in set(classes)) and len(set(classes)) == 4


def test_pk_sampler_is_deterministic_per_seed_and_epoch() -> None:
    labels = [c for c in range(20) for _ in range(4)]
    a, b = PKBatchSampler(labels, 8, seed=3), PKBatchSampler(labels, 8, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_pk_sampler_shrinks_p_when_too_few_classes() -> None:
    # The reference dies with an AssertionError when classes x K < batch size.
    sampler = PKBatchSampler([0, 0, 1, 1, 2, 2], batch_size=64)
    assert sampler.batch_size == 12
    assert all(len(b) == 12 for b in sampler)


def test_batch_smaller_than_k_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="Train.batch_size=2 is smaller than the 4 images per class"):
        PKBatchSampler([0, 1], batch_size=2)
