"""Training losses: CE with label smoothing, TripletAngularMarginLoss, and their PP-ShiTuV2 mix."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F


def smoothed_cross_entropy(
    logits: paddle.Tensor, labels: paddle.Tensor, epsilon: float = 0.1
) -> paddle.Tensor:
    """Mean CE against (1 - eps) * one_hot + eps / C, as PaddleClas's CELoss(epsilon)."""
    num_classes = logits.shape[-1]
    log_probs = F.log_softmax(logits.astype("float32"), axis=-1)
    target = F.one_hot(labels.reshape([-1]), num_classes) * (1.0 - epsilon) + epsilon / num_classes
    return -(target * log_probs).sum(axis=-1).mean()


def triplet_angular_margin_loss(
    features: paddle.Tensor,
    labels: paddle.Tensor,
    margin: float = 0.5,
    ap_value: float = 0.8,
    an_value: float = 0.4,
    absolute_weight: float = 0.1,
) -> paddle.Tensor:
    """Hardest-positive/hardest-negative hinge on cosine similarity, plus absolute terms.

    loss = mean(max(0, s_an - s_ap + margin))
         + absolute_weight * (mean(max(0, ap_value - s_ap)) + mean(max(0, s_an - an_value)))
    where s_ap is each anchor's lowest same-class similarity and s_an its highest other-class one.
    PaddleClas writes the last term with 1 instead of 0 below the threshold: a constant, so the
    gradients are the same; we use the hinge so the logged value means what it says.
    """
    feats = F.normalize(features.astype("float32"), axis=-1)
    sim = paddle.matmul(feats, feats, transpose_y=True)
    labels = labels.reshape([-1, 1])
    same = labels == labels.t()
    big = paddle.full_like(sim, 4.0)  # cosine lies in [-1, 1]
    hardest_pos = paddle.where(same, sim, big).min(axis=1)
    hardest_neg = paddle.where(same, -big, sim).max(axis=1)
    ranking = F.relu(hardest_neg - hardest_pos + margin).mean()
    absolute = F.relu(ap_value - hardest_pos).mean() + F.relu(hardest_neg - an_value).mean()
    return ranking + absolute_weight * absolute


def arcmargin_cross_entropy(logits: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
    """CE on ArcMargin logits (the margin is applied inside the head)."""
    return F.cross_entropy(logits.astype("float32"), labels.reshape([-1, 1])).mean()
