"""Weight loading: local files with/without extension, skip rules, prefixes, and bad files."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlex_feat.models import build_model
from paddlex_feat.models.weights import load_checkpoint, load_weights
from paddlex_feat.utils.errors import ModelError
from paddlex_feat.utils.logger import logger

NAME = "PP-ShiTuV2_rec"


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture):
    """Capture our logger's records; once setup_logging ran it no longer propagates to root."""
    attach = not logger.propagate
    if attach:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield caplog
    if attach:
        logger.removeHandler(caplog.handler)


@pytest.fixture(scope="module")
def source_model() -> paddle.nn.Layer:
    paddle.seed(10)
    return build_model(NAME, 10)


def save_state(state: dict, path: Path) -> Path:
    paddle.save(state, str(path))
    return path


def features(model: paddle.nn.Layer, x: paddle.Tensor) -> np.ndarray:
    model.eval()
    with paddle.no_grad():
        return model(x).numpy()


def fresh(num_classes: int = 10) -> paddle.nn.Layer:
    paddle.seed(99)  # different weights from source_model
    return build_model(NAME, num_classes)


def test_full_checkpoint_round_trip_with_and_without_extension(source_model, tmp_path: Path) -> None:
    path = save_state(source_model.state_dict(), tmp_path / "model.pdparams")
    x = paddle.randn([2, 3, 32, 32])
    for given in (path, tmp_path / "model"):
        target = fresh()
        assert not np.allclose(features(target, x), features(source_model, x))
        report = load_weights(target, given)
        assert report.path == str(path)
        assert (report.missing, report.unexpected, report.skipped_shape) == ([], [], [])
        assert len(report.loaded) == len(source_model.state_dict())
        np.testing.assert_array_equal(features(target, x), features(source_model, x))


def test_head_with_other_class_count_is_skipped_and_logged(source_model, tmp_path, log_records) -> None:
    path = save_state(source_model.state_dict(), tmp_path / "ten_classes.pdparams")
    target = fresh(num_classes=7)
    head_before = target.head.fc.weight.numpy().copy()
    report = load_weights(target, path)
    assert report.skipped_shape == [{"key": "head.fc.weight", "checkpoint": [512, 10], "model": [512, 7]}]
    np.testing.assert_array_equal(target.head.fc.weight.numpy(), head_before)
    x = paddle.randn([1, 3, 32, 32])
    np.testing.assert_array_equal(features(target, x), features(source_model, x))  # all but the head loaded
    skip_lines = [r.getMessage() for r in log_records.records if "Skipped 1 tensors" in r.getMessage()]
    assert len(skip_lines) == 1 and "head.fc.weight [512, 10] vs model [512, 7]" in skip_lines[0]


@pytest.mark.parametrize("prefix", ["model.", "module.", "Student."])
def test_prefixed_keys_are_mapped(source_model, tmp_path: Path, prefix: str) -> None:
    state = {prefix + k: v for k, v in source_model.state_dict().items()}
    report = load_weights(fresh(), save_state(state, tmp_path / "prefixed.pdparams"))
    assert report.key_mapping == f"stripped prefix {prefix!r}"
    assert len(report.loaded) == len(state) and report.missing == [] and report.unexpected == []


def test_backbone_only_checkpoint_loads_and_lists_missing(source_model, tmp_path, log_records) -> None:
    path = save_state(source_model.backbone.state_dict(), tmp_path / "backbone.pdparams")
    target = fresh()
    report = load_weights(target, path)
    assert report.key_mapping == "added prefix 'backbone.'"
    assert sorted(report.missing) == sorted(
        [
            "neck.feat_bn.weight",
            "neck.feat_bn.bias",
            "neck.feat_bn._mean",
            "neck.feat_bn._variance",
            "head.fc.weight",
        ]
    )
    np.testing.assert_array_equal(
        target.backbone.last_conv.weight.numpy(), source_model.backbone.last_conv.weight.numpy()
    )
    missing_lines = [r.getMessage() for r in log_records.records if "not in the checkpoint" in r.getMessage()]
    assert len(missing_lines) == 1 and "head.fc.weight" in missing_lines[0]


def test_unexpected_keys_are_listed(source_model, tmp_path, log_records) -> None:
    state = dict(source_model.state_dict())
    state["backbone.fc.weight"] = paddle.zeros([512, 1000])  # e.g. an ImageNet classifier
    report = load_weights(fresh(), save_state(state, tmp_path / "extra.pdparams"))
    assert report.unexpected == ["backbone.fc.weight"]
    assert any(
        "backbone.fc.weight" in r.getMessage() and r.levelno == logging.WARNING for r in log_records.records
    )


def test_float64_checkpoint_is_cast_to_model_dtype(source_model, tmp_path: Path) -> None:
    state = {k: v.numpy().astype("float64") for k, v in source_model.state_dict().items()}
    target = fresh()
    load_weights(target, save_state(state, tmp_path / "f64.pdparams"))
    assert target.backbone.last_conv.weight.dtype == paddle.float32
    np.testing.assert_allclose(
        target.backbone.last_conv.weight.numpy(), state["backbone.last_conv.weight"], rtol=1e-6
    )


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pdparams"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError) as err:
        load_weights(fresh(), path, config_key="Train.pretrain_weight_path")
    message = str(err.value)
    assert (
        "Train.pretrain_weight_path" in message
        and str(path) in message
        and "not a Paddle checkpoint" in message
    )


def test_non_dict_pickle_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "list.pdparams"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ModelError, match="not a Paddle state dict"):
        load_checkpoint(path)


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path: Path) -> None:
    path = save_state({"encoder.layer.0.weight": paddle.zeros([4, 4])}, tmp_path / "other.pdparams")
    with pytest.raises(ModelError, match="shares no tensor"):
        load_weights(fresh(), path)


def test_missing_file_names_key_and_both_paths_tried(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        load_weights(fresh(), tmp_path / "nowhere", config_key="Evaluate.weight_path")
    message = str(err.value)
    assert message.startswith("Evaluate.weight_path:")
    assert str(tmp_path / "nowhere") in message and str(tmp_path / "nowhere.pdparams") in message


def test_folder_instead_of_file_lists_its_checkpoints(source_model, tmp_path: Path) -> None:
    save_state(source_model.state_dict(), tmp_path / "best_model.pdparams")
    with pytest.raises(ModelError, match="is a folder.*best_model.pdparams"):
        load_weights(fresh(), tmp_path)


def test_load_checkpoint_returns_the_state_dict(source_model, tmp_path: Path) -> None:
    path = save_state(source_model.state_dict(), tmp_path / "resume.pdparams")
    state = load_checkpoint(tmp_path / "resume")
    assert list(state) == list(source_model.state_dict())
    np.testing.assert_array_equal(np.asarray(state["head.fc.weight"]), source_model.head.fc.weight.numpy())
    assert path.exists()
