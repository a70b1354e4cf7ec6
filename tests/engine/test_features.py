"""extract_features: the backends agree with eager, keep list order, and leave the model untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlex_feat.data.lists import read_list
from paddlex_feat.data.transforms import EvalTransform
from paddlex_feat.engine.features import FeatureExtractor, extract_features
from paddlex_feat.models import build_model
from paddlex_feat.utils.errors import ModelError

DEMO = Path(__file__).resolve().parents[2] / "dataset" / "demo"
SIZE = 32


class TinyNet(paddle.nn.Layer):
    """A tiny model that keeps the models' contract: ``model(x)`` is the [N, D] feature (``flat=False``: not)."""

    def __init__(self, flat: bool = True) -> None:
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 3)
        self.flat = flat

    def forward(self, x):
        pooled = paddle.nn.functional.adaptive_avg_pool2d(self.conv(x), 1)
        return pooled.flatten(1) if self.flat else pooled


@pytest.fixture(scope="module")
def entries():
    return read_list(DEMO, "query")[:11]  # 11 with batch 4: the last batch is partial


@pytest.fixture(scope="module")
def rec_model():
    paddle.seed(0)
    return build_model("PP-ShiTuV2_rec", 5)


def test_backends_agree_with_eager_in_list_order(rec_model, entries):
    common = {"model_name": "PP-ShiTuV2_rec", "input_size": SIZE, "batch_size": 4, "num_workers": 0}
    eager = extract_features(rec_model, entries, DEMO, mode="eager", **common)
    single = np.concatenate(  # one image at a time: the reference for the order
        [extract_features(rec_model, [e], DEMO, mode="eager", **common) for e in entries[:3]]
    )
    np.testing.assert_allclose(eager[:3], single, atol=1e-5)
    assert eager.shape == (11, 512) and eager.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(eager, axis=1), 1.0, rtol=1e-5)
    for mode in ("static", "inference"):
        fast = extract_features(rec_model, entries, DEMO, mode=mode, **common)
        assert np.sum(eager * fast, axis=1).min() > 0.9999, mode


def test_model_state_is_restored_and_weights_untouched(rec_model, entries):
    before = {k: v.numpy().copy() for k, v in rec_model.state_dict().items()}
    rec_model.train()
    extract_features(rec_model, entries[:2], DEMO, SIZE, 2, 0, model_name="PP-ShiTuV2_rec", mode="inference")
    assert rec_model.training
    after = rec_model.state_dict()
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)  # re-parameterised a copy only
    rec_model.eval()


def test_one_extractor_serves_two_lists_and_sees_new_weights(entries):
    net = TinyNet()
    transform = EvalTransform(SIZE, (0.5,) * 3, (0.5,) * 3)
    extractor = FeatureExtractor(net, batch_size=4, num_workers=1, transform=transform, mode="static")
    first = extractor.extract(entries, DEMO, "query.txt")
    with paddle.no_grad():
        net.conv.weight.set_value(net.conv.weight * -1.0)  # as an optimiser step would, in place
    second = extractor.extract(entries, DEMO, "query.txt")
    np.testing.assert_allclose(second, -first, atol=1e-5)


def test_an_output_that_is_not_batch_by_dim_is_a_clear_error(entries):
    transform = EvalTransform(SIZE, (0.5,) * 3, (0.5,) * 3)
    with pytest.raises(ModelError, match=r"must be \[batch, dim\] features, got shape \(2, 8, 1, 1\)"):
        extract_features(
            TinyNet(flat=False), entries[:2], DEMO, num_workers=0, transform=transform, mode="eager"
        )


def test_an_empty_list_is_refused(rec_model):
    with pytest.raises(ValueError, match="query.txt has no entries"):
        extract_features(rec_model, [], DEMO, model_name="PP-ShiTuV2_rec", list_name="query.txt")
