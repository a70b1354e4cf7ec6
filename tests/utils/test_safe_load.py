"""Checkpoint files are read without running code: hostile pickles are refused, real ones load."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlex_feat.engine.checkpoint import (
    RESUME_KEY,
    read_facts,
    read_optimizer_state,
    read_weights,
    restore_optimizer_state,
    save_checkpoint,
)
from paddlex_feat.models import build_model
from paddlex_feat.models.weights import load_checkpoint, load_weights
from paddlex_feat.utils.errors import ModelError
from paddlex_feat.utils.safe_load import safe_load


def load_training_state(path: Path) -> tuple[dict, dict, dict]:
    """What resume reads: weights, optimiser state and .pdstates."""
    facts = read_facts(path, None, RESUME_KEY)
    return read_weights(facts, RESUME_KEY), read_optimizer_state(facts), facts.states


class _RunsCode:
    """What an attacker pickles: unpickling calls os.system (here: creates a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile(path: Path, marker: Path) -> Path:
    """A .pdparams that looks like a state dict, with one entry that runs a command when loaded."""
    state = {"backbone.stem.0.conv.weight": np.zeros((2, 2), np.float32), "x": _RunsCode(marker)}
    path.write_bytes(pickle.dumps(state, protocol=2))
    return path


def test_hostile_pickle_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _hostile(tmp_path / "evil.pdparams", marker)
    with pytest.raises(ModelError, match=r"evil.pdparams was refused: it names posix.system"):
        safe_load(path)
    with pytest.raises(ModelError, match="Train.pretrain_weight_path.*refused"):
        load_checkpoint(path, config_key="Train.pretrain_weight_path")
    assert not marker.exists()


def test_hostile_resume_state_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "latest"
    folder.mkdir()
    for suffix in ("pdparams", "pdopt"):
        paddle.save({"w": paddle.zeros([2])}, str(folder / f"latest.{suffix}"))
    _hostile(folder / "latest.pdstates", marker)
    with pytest.raises(ModelError, match="latest.pdstates was refused"):
        load_training_state(folder / "latest.pdparams")
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        np.array([object(), 1], dtype=object),  # items of an object array would be arbitrary objects
        {"f": np.zeros(2, dtype=[("a", "O")])},  # ... also through a structured dtype
        Path("a-harmless-class"),  # any class outside the list, however harmless, is refused
    ],
    ids=["object-array", "object-field", "other-type"],
)
def test_anything_but_arrays_numbers_strings_is_refused(tmp_path: Path, payload) -> None:
    path = tmp_path / "odd.pdparams"
    path.write_bytes(pickle.dumps({"w": payload}, protocol=4))
    with pytest.raises(ModelError, match="refused"):
        safe_load(path)


def test_our_checkpoint_round_trips(tmp_path: Path) -> None:
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.BatchNorm1D(3))
    lr = paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10)
    opt = paddle.optimizer.Momentum(lr, parameters=model.parameters())
    model(paddle.randn([5, 4])).mean().backward()
    opt.step()
    states = {
        "model_name": "PP-ShiTuV2_rec",
        "num_classes": 3,
        "epoch": 3,
        "best_score": np.float32(0.5),
        "history": [{"epoch": 1, "recall1": 0.1}],
        "rng": None,
    }
    save_checkpoint(tmp_path, "latest", model, opt, states)
    params, opt_state, loaded_states = load_training_state(tmp_path / "latest")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(params[key], value.numpy())
    assert opt_state["LR_Scheduler"] == opt.state_dict()["LR_Scheduler"]
    assert loaded_states.pop("files_sha256").keys() == {"pdparams", "pdopt"}  # for verify_checkpoint
    assert loaded_states == states
    opt2 = paddle.optimizer.Momentum(
        paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10), parameters=model.parameters()
    )
    restore_optimizer_state(model, opt2, opt_state)  # numpy arrays are accepted by Paddle's optimiser


def _official_format(state: dict, path: Path, paddle21: bool = False) -> Path:
    """The bytes of an official PaddleClas/PaddleX .pdparams: a protocol-2 pickle saved with numpy 1.x
    (module ``numpy.core.multiarray``) and Paddle's name table; Paddle 2.1 stored (name, ndarray) pairs."""
    arrays = {k: v.numpy() for k, v in state.items()}
    if paddle21:
        payload = {k: (f"param_{i}", v) for i, (k, v) in enumerate(arrays.items())}
    else:
        payload = dict(arrays) | {
            "StructuredToParameterName@@": {k: f"param_{i}" for i, k in enumerate(arrays)}
        }
    data = pickle.dumps(payload, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in data and b"_codecs\nencode" in data
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("paddle21", [False, True], ids=["paddle2.x", "paddle2.1"])
def test_official_format_checkpoint_loads_into_the_model(tmp_path: Path, paddle21: bool) -> None:
    paddle.seed(1)
    source = build_model("PP-ShiTuV2_rec", 10)
    path = _official_format(source.state_dict(), tmp_path / "PP-ShiTuV2_rec_pretrained.pdparams", paddle21)
    paddle.seed(2)
    target = build_model("PP-ShiTuV2_rec", 10)
    report = load_weights(target, path, config_key="Train.pretrain_weight_path")
    assert (report.missing, report.unexpected, report.skipped_shape) == ([], [], [])
    for key, value in source.state_dict().items():
        np.testing.assert_array_equal(target.state_dict()[key].numpy(), value.numpy())
