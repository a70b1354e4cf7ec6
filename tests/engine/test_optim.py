"""The optimiser and schedule: warm-up, cosine decay, no decay on BatchNorm."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from paddlex_feat.engine.optim import build_optimizer, build_schedule


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
