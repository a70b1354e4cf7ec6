"""The training recipe's parts: losses against hand-computed values, sampler, schedule, augmentation."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from paddlex_feat.data.augment import TrainTransform
from paddlex_feat.data.lists import ListEntry
from paddlex_feat.data.sampler import PKBatchSampler
from paddlex_feat.data.train_data import build_label_dict, check_num_classes
from paddlex_feat.engine.losses import smoothed_cross_entropy, triplet_angular_margin_loss
from paddlex_feat.engine.optim import build_optimizer, build_schedule
from paddlex_feat.utils.errors import ConfigError, DatasetError


def test_triplet_angular_margin_loss_hand_computed() -> None:
    # Unit vectors a, b (class 0) and c, d (class 1). Cosines: ab .8, ac 0, ad .6, bc .6, bd .96, cd .8.
    # Hardest positive of every anchor: .8. Hardest negative: a .6, b .96, c .6, d .96.
    # ranking = mean(.6-.8+.5, .96-.8+.5, .3, .66) = .48; absolute: ap terms 0, an terms .2,.56,.2,.56 -> .38
    feats = paddle.to_tensor([[2.0, 0.0], [0.8, 0.6], [0.0, 3.0], [0.6, 0.8]])  # norms differ: it normalises
    labels = paddle.to_tensor([0, 0, 1, 1])
    loss = triplet_angular_margin_loss(feats, labels)
    assert float(loss) == pytest.approx(0.48 + 0.1 * 0.38, abs=1e-6)


def test_triplet_loss_is_zero_when_classes_are_well_separated() -> None:
    feats = paddle.to_tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])
    loss = triplet_angular_margin_loss(feats, paddle.to_tensor([0, 0, 1, 1]))
    assert float(loss) == pytest.approx(0.0, abs=1e-7)


def test_triplet_loss_gradient_flows_to_features() -> None:
    feats = paddle.to_tensor(
        np.random.default_rng(0).normal(size=(8, 16)).astype("float32"), stop_gradient=False
    )
    loss = triplet_angular_margin_loss(feats, paddle.to_tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    loss.backward()
    assert feats.grad is not None and float(feats.grad.abs().sum()) > 0


def test_smoothed_cross_entropy_hand_computed() -> None:
    logits = paddle.to_tensor([[2.0, 0.0, 0.0]])
    log_p = np.array([2.0, 0.0, 0.0]) - math.log(math.exp(2) + 2)
    target = np.array([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    expected = -(target * log_p).sum()
    assert float(smoothed_cross_entropy(logits, paddle.to_tensor([0]))) == pytest.approx(expected, abs=1e-6)


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


def test_schedule_warms_up_linearly_then_decays_by_cosine() -> None:
    schedule = build_schedule(0.1, epochs=4, iters_per_epoch=10, warmup_epochs=1)
    lrs = []
    for _ in range(40):
        lrs.append(schedule.get_lr())
        schedule.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.05) and lrs[10] == pytest.approx(0.1)
    # cosine over the remaining 30 iterations: half way it is half the base rate
    assert lrs[25] == pytest.approx(0.05, abs=1e-6)
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:]))


def test_warmup_longer_than_the_run_is_capped() -> None:
    schedule = build_schedule(0.1, epochs=2, iters_per_epoch=5, warmup_epochs=5)
    lrs = []
    for _ in range(10):
        lrs.append(schedule.get_lr())
        schedule.step()
    assert max(lrs) == pytest.approx(0.1)  # it reaches the base rate instead of warming up forever


def test_no_weight_decay_on_batchnorm() -> None:
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 4), paddle.nn.BatchNorm1D(4))
    model[0].weight.set_value(paddle.full([4, 4], 8.0))  # large weights: float32 resolves the tiny decay
    w0, bn0 = model[0].weight.numpy().copy(), model[1].weight.numpy().copy()
    optimizer = build_optimizer(model, 0.1)
    (model(paddle.randn([3, 4])) * 0).sum().backward()  # zero gradient: only decay moves weights
    optimizer.step()
    assert np.allclose((w0 - model[0].weight.numpy()) / w0, 0.1 * 1e-5, rtol=0.05)
    assert np.array_equal(bn0, model[1].weight.numpy())


def test_train_transform_shape_range_and_determinism() -> None:
    transform = TrainTransform(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    image = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    a = transform(image, np.random.default_rng([1, 2, 3]))
    b = transform(image, np.random.default_rng([1, 2, 3]))
    c = transform(image, np.random.default_rng([1, 2, 4]))
    assert a.shape == (3, 32, 32) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() > -2.2 and a.max() < 2.7


def test_relabel_and_num_classes_checks() -> None:
    entries = [ListEntry("a.jpg", 7, 1), ListEntry("b.jpg", 3, 2), ListEntry("c.jpg", 7, 3)]
    assert build_label_dict(entries) == {3: 0, 7: 1}
    assert check_num_classes(None, entries, relabel=True) == 2
    with pytest.raises(ConfigError, match="Set -o Train.num_classes=2"):
        check_num_classes(5, entries, relabel=True)
    with pytest.raises(DatasetError, match="train.txt:1: label 7 is outside 0..4"):
        check_num_classes(5, entries, relabel=False)
    assert check_num_classes(8, entries, relabel=False) == 8


def test_copied_checkpoint_is_identical_and_independent_of_later_saves(tmp_path) -> None:
    # latest/ and best_model/ are second names for the epoch's files: same bytes, and saving the
    # next epoch over the source must leave the copy as it was
    from paddlex_feat.engine.checkpoint import SUFFIXES, copy_checkpoint, save_checkpoint

    model = paddle.nn.Linear(3, 2)
    optimizer = paddle.optimizer.Momentum(parameters=model.parameters())
    save_checkpoint(tmp_path, "epoch_1", model, optimizer, {"epoch": 1})
    copy_checkpoint(tmp_path, "epoch_1", "latest")
    first = {s: (tmp_path / "latest" / f"latest.{s}").read_bytes() for s in SUFFIXES}
    assert first == {s: (tmp_path / "epoch_1" / f"epoch_1.{s}").read_bytes() for s in SUFFIXES}
    with paddle.no_grad():
        model.weight.set_value(model.weight + 1.0)
    save_checkpoint(tmp_path, "epoch_1", model, optimizer, {"epoch": 2})
    assert {s: (tmp_path / "latest" / f"latest.{s}").read_bytes() for s in SUFFIXES} == first
