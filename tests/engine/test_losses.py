"""The recipe's losses against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from paddlex_feat.engine.losses import smoothed_cross_entropy, triplet_angular_margin_loss


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
