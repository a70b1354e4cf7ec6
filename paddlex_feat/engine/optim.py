"""Optimiser and schedule of the PP-ShiTuV2 recipe: Momentum 0.9, L2 1e-5 (none on BatchNorm),
cosine decay per iteration after a linear warm-up over ``Train.warmup_steps`` epochs."""

from __future__ import annotations

import paddle

from ..utils.logger import logger

MOMENTUM = 0.9
WEIGHT_DECAY = 1e-5


def split_decay_params(model: paddle.nn.Layer) -> tuple[list, list]:
    """Trainable parameters with and without weight decay (BatchNorm scales and shifts have none)."""
    no_decay_ids = set()
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (paddle.nn.layer.norm._BatchNormBase, paddle.nn.LayerNorm)):
            no_decay_ids.update(id(p) for p in layer.parameters(include_sublayers=False))
    decay, no_decay = [], []
    for param in model.parameters():
        if param.stop_gradient:
            continue
        (no_decay if id(param) in no_decay_ids else decay).append(param)
    return decay, no_decay


def build_schedule(
    base_lr: float, epochs: int, iters_per_epoch: int, warmup_epochs: int
) -> paddle.optimizer.lr.LRScheduler:
    """Linear warm-up from 0 over ``warmup_epochs`` epochs, then cosine to 0, stepped every iteration."""
    if warmup_epochs >= epochs:
        capped = max(0, epochs - 1)
        logger.warning(
            f"Train.warmup_steps={warmup_epochs} warm-up epochs leave no epoch for the cosine decay of a "
            f"{epochs}-epoch run; using {capped} warm-up epoch(s)."
        )
        warmup_epochs = capped
    warmup_iters = warmup_epochs * iters_per_epoch
    cosine = paddle.optimizer.lr.CosineAnnealingDecay(
        learning_rate=base_lr, T_max=max(1, (epochs - warmup_epochs) * iters_per_epoch), eta_min=0.0
    )
    if warmup_iters == 0:
        return cosine
    return paddle.optimizer.lr.LinearWarmup(cosine, warmup_steps=warmup_iters, start_lr=0.0, end_lr=base_lr)


def build_optimizer(
    model: paddle.nn.Layer, schedule: paddle.optimizer.lr.LRScheduler
) -> paddle.optimizer.Optimizer:
    """Momentum with L2 decay on every trainable parameter except normalisation layers'."""
    decay, no_decay = split_decay_params(model)
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return paddle.optimizer.Momentum(learning_rate=schedule, momentum=MOMENTUM, parameters=groups)
