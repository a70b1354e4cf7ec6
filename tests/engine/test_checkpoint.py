"""The one reader of a trained model (TrainedCheckpoint / read_facts) and the checkpoint files train writes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml
from test_export import run_export  # the one export command line of the tests

from paddlex_feat.config import load_config
from paddlex_feat.engine.checkpoint import (
    RESUME_KEY,
    TrainedCheckpoint,
    copy_checkpoint,
    facts_states,
    find_train_config,
    read_facts,
    save_checkpoint,
)
from paddlex_feat.engine.optim import build_optimizer, build_schedule
from paddlex_feat.inference.spec import load_inference_spec
from paddlex_feat.models import build_model
from paddlex_feat.utils.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
MODEL = "PP-ShiTuV2_rec"
CLASSES = 3


def write_run(output: Path, states: dict, config: dict | None = None) -> Path:
    """A run's layout as train writes it: best_model/ and latest/ with the three files each."""
    paddle.seed(3)
    model = build_model(MODEL, CLASSES)
    optimizer = build_optimizer(model, build_schedule(0.01, 1, 1, 0))
    save_checkpoint(output, "best_model", model, optimizer, {"epoch": 1, **states})
    copy_checkpoint(output, "best_model", "latest")
    if config is not None:
        (output / "config.yaml").write_text(yaml.safe_dump(config))
    return output / "best_model" / "best_model.pdparams"


def new_states(input_size: int) -> dict:
    """The facts the current train writes into .pdstates."""
    cfg = {"Global": {"model": MODEL}, "Train": {"input_size": input_size, "num_classes": CLASSES}}
    return facts_states(
        model_name=MODEL, num_classes=CLASSES, input_size=input_size, label_dict={7: 0}, train_config=cfg
    )


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """caplog that sees the package's records even after the CLI turned their propagation off."""
    from paddlex_feat.utils.logger import logger

    monkeypatch.setattr(logger, "propagate", True)
    caplog.set_level(logging.INFO, logger="paddlex_feat")
    return caplog


def cli_config(*overrides: str):
    return load_config(CONFIG, overrides)


def test_export_of_a_model_trained_at_64_is_64_pixels(tmp_path: Path) -> None:
    # the bug: export took the size from Export.input_size or the model table (224), never the checkpoint
    write_run(tmp_path / "run", new_states(64))
    rc, _ = run_export(
        tmp_path, f"Export.weight_path={tmp_path / 'run' / 'best_model' / 'best_model.pdparams'}"
    )
    assert rc == 0
    out = tmp_path / "out"
    assert load_inference_spec(out).input_size == (64, 64)
    assert "Exported PP-ShiTuV2_rec (64x64)" in (out / "export.log").read_text()


def test_export_input_size_still_overrides_the_checkpoint(tmp_path: Path, caplog) -> None:
    write_run(tmp_path / "run", new_states(64))
    facts = read_facts(tmp_path / "run", cli_config("Export.input_size=96"), "Export.weight_path")
    assert facts.input_size == 96
    assert [r.message for r in caplog.records if "overrides" in r.message] == [
        "Export.input_size=96 from the config overrides the checkpoint's 64."
    ]


def test_a_command_line_key_overrides_a_saved_fact_with_one_log_line(tmp_path: Path, caplog) -> None:
    write_run(tmp_path / "run", new_states(64))
    assert read_facts(tmp_path / "run", cli_config(), "Evaluate.weight_path").input_size == 64
    assert not [r for r in caplog.records if "overrides" in r.message]
    facts = read_facts(tmp_path / "run", cli_config("Train.input_size=48"), "Evaluate.weight_path")
    assert facts.input_size == 48 and facts.preprocess["input_size"] == 48
    assert [r.message for r in caplog.records if "overrides" in r.message] == [
        "Train.input_size=48 from the command line overrides the checkpoint's 64."
    ]


def test_a_key_from_the_yaml_file_does_not_override(tmp_path: Path) -> None:
    # the shipped config says Train.num_classes=300; only a key typed on the command line wins
    write_run(tmp_path / "run", new_states(64))
    assert read_facts(tmp_path / "run", cli_config(), "Export.weight_path").num_classes == CLASSES


@pytest.mark.parametrize("key", ["Evaluate.weight_path", "Export.weight_path", RESUME_KEY])
def test_every_key_accepts_the_file_its_folder_and_the_run_folder(tmp_path: Path, key: str) -> None:
    run = tmp_path / "run"
    write_run(run, new_states(40))
    tag = "latest" if key == RESUME_KEY else "best_model"
    expected = run / tag / f"{tag}.pdparams"
    for given in (expected, expected.with_suffix(""), expected.with_suffix(".pdstates"), run / tag, run):
        facts = read_facts(given, None if key == RESUME_KEY else cli_config(), key)
        assert facts.weights == expected, given
        assert (facts.model_name, facts.num_classes, facts.input_size) == (MODEL, CLASSES, 40)
        assert facts.label_dict == {7: 0} and facts.train_config["Train"]["input_size"] == 40


def test_load_returns_the_model_with_the_saved_weights(tmp_path: Path) -> None:
    weights = write_run(tmp_path / "run", new_states(40))
    model, facts = TrainedCheckpoint.load(tmp_path / "run", cli_config(), "Evaluate.weight_path")
    saved = paddle.load(str(weights))
    loaded = model.state_dict()
    assert all(np.array_equal(loaded[k].numpy(), saved[k].numpy()) for k in saved)
    assert facts.preprocess == {
        "input_size": 40,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bilinear",
    }
    assert len(facts.source_sha256) == 64


def test_a_checkpoint_written_before_the_one_description_loads(tmp_path: Path) -> None:
    # what train wrote before this change: facts in .pdstates without preprocess/train_config,
    # and the run's config.yaml next to the weights and one folder up
    old_states = {"model_name": MODEL, "num_classes": CLASSES, "input_size": 56, "label_dict": {4: 0}}
    old_config = {"Global": {"model": MODEL}, "Train": {"input_size": 56, "num_classes": CLASSES}}
    write_run(tmp_path / "run", old_states, old_config)
    model, facts = TrainedCheckpoint.load(tmp_path / "run", cli_config(), "Export.weight_path")
    assert (facts.input_size, facts.num_classes, facts.label_dict) == (56, CLASSES, {4: 0})
    assert facts.train_config == old_config and isinstance(model, paddle.nn.Layer)


def test_weights_without_pdstates_take_the_config_yaml_then_the_current_config(tmp_path: Path) -> None:
    paddle.seed(4)
    weights = tmp_path / "run" / "best_model" / "best_model.pdparams"
    weights.parent.mkdir(parents=True)
    paddle.save(build_model(MODEL, 5).state_dict(), str(weights))
    facts = read_facts(weights, cli_config(), "Evaluate.weight_path")
    assert (facts.num_classes, facts.input_size, facts.train_config) == (300, 224, None)
    (tmp_path / "run" / "config.yaml").write_text(
        yaml.safe_dump({"Train": {"input_size": 32, "num_classes": 5}})
    )
    facts = read_facts(weights, cli_config(), "Evaluate.weight_path")
    assert (facts.num_classes, facts.input_size) == (5, 32)


def test_config_is_found_next_to_the_weights_before_one_folder_up(tmp_path: Path) -> None:
    weights = tmp_path / "run" / "best_model" / "best_model.pdparams"
    weights.parent.mkdir(parents=True)
    weights.touch()
    assert find_train_config(weights) is None
    (tmp_path / "run" / "config.yaml").touch()
    assert find_train_config(weights) == (tmp_path / "run" / "config.yaml").resolve()
    (weights.parent / "config.yaml").touch()
    assert find_train_config(weights) == (weights.parent / "config.yaml").resolve()


def test_a_folder_that_is_no_checkpoint_or_run_names_what_it_accepts(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"Export.weight_path: .*empty is a folder without empty.pdparams or "
                       r"best_model/best_model.pdparams\. Give a .pdparams file, its checkpoint folder"):  # fmt: skip
        read_facts(tmp_path / "empty", cli_config(), "Export.weight_path")
    paddle.save({"w": paddle.zeros([1])}, str(tmp_path / "empty" / "other.pdparams"))
    with pytest.raises(ModelError, match="it holds other.pdparams: point at one of them"):
        read_facts(tmp_path / "empty", None, RESUME_KEY)


def test_resume_needs_the_pdstates(tmp_path: Path) -> None:
    weights = write_run(tmp_path / "run", new_states(40))
    (tmp_path / "run" / "latest" / "latest.pdstates").unlink()
    with pytest.raises(Exception, match="Train.resume_path: missing .*latest.pdstates"):
        read_facts(tmp_path / "run", None, RESUME_KEY)
    assert weights.is_file()


def test_export_result_names_the_resolved_weights(tmp_path: Path) -> None:
    write_run(tmp_path / "run", new_states(64))
    rc, result = run_export(tmp_path, f"Export.weight_path={tmp_path / 'run'}")
    assert rc == 0
    assert result["weight_path"] == str(tmp_path / "run" / "best_model" / "best_model.pdparams")


# --- a checkpoint folder is replaced as one unit, and resume refuses a mixed one


class _Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing in the code under test handles it."""


def _tiny_training(seed: int):
    paddle.seed(seed)
    model = paddle.nn.Linear(4, 3)
    optimizer = paddle.optimizer.Momentum(0.1, parameters=model.parameters())
    model(paddle.randn([2, 4])).mean().backward()
    optimizer.step()
    return model, optimizer


def _checkpoint_epoch(folder: Path, tag: str | None = None) -> int | None:
    """The epoch of a checkpoint folder whose three files belong together; None if they do not."""
    from paddlex_feat.engine.checkpoint import _sha256
    from paddlex_feat.utils.safe_load import safe_load

    prefix = folder / (tag or folder.name)
    states = safe_load(prefix.with_suffix(".pdstates"))
    sums = states["files_sha256"]
    if all(_sha256(prefix.with_suffix(f".{s}")) == sums[s] for s in ("pdparams", "pdopt")):
        return states["epoch"]
    return None


def test_a_kill_at_any_point_of_a_save_leaves_the_old_or_the_new_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shutil

    from paddlex_feat.engine import checkpoint as ckpt
    from paddlex_feat.utils import io as io_module

    states = {"model_name": "PP-ShiTuV2_rec", "num_classes": 3}
    ckpt.save_checkpoint(tmp_path, "epoch_1", *_tiny_training(1), {**states, "epoch": 1})
    ckpt.copy_checkpoint(tmp_path, "epoch_1", "latest")
    real = {"rename": os.rename, "link": os.link, "save": ckpt.paddle.save, "rmtree": shutil.rmtree}
    kill_at, outcomes = 1, set()
    while True:
        calls = {"n": 0, "kill_at": kill_at}

        def counting(name: str, calls: dict = calls):
            def call(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] == calls["kill_at"]:
                    raise _Killed(name)
                return real[name](*args, **kwargs)

            return call

        for name, target in [("rename", os), ("link", os), ("save", ckpt.paddle)]:
            monkeypatch.setattr(target, name, counting(name))
        monkeypatch.setattr(io_module.shutil, "rmtree", lambda *a, **k: None)  # a kill cleans nothing up
        try:
            ckpt.save_checkpoint(tmp_path, "epoch_2", *_tiny_training(2), {**states, "epoch": 2})
            ckpt.copy_checkpoint(tmp_path, "epoch_2", "latest")
            killed = False
        except _Killed:
            killed = True
        monkeypatch.undo()
        latest = tmp_path / "latest"
        if latest.exists():  # absent only for the instant between two renames (the old one is aside)
            outcomes.add(_checkpoint_epoch(latest))
        else:
            assert _checkpoint_epoch(tmp_path / ".latest.old", "latest") == 1
        if not killed:
            break
        for leftover in [*tmp_path.glob(".*"), tmp_path / "epoch_2"]:  # start the next try from epoch 1
            real["rmtree"](leftover, ignore_errors=True)
        if not latest.exists() or _checkpoint_epoch(latest) == 2:
            ckpt.copy_checkpoint(tmp_path, "epoch_1", "latest")
        kill_at += 1
    assert outcomes == {1, 2} and kill_at > 5  # killed at every step, never a mix (None)


def test_resume_refuses_a_mixed_checkpoint_naming_the_last_good_epoch(tmp_path: Path) -> None:
    import shutil

    from paddlex_feat.engine import checkpoint as ckpt
    from paddlex_feat.engine.checkpoint import RESUME_KEY, read_facts, verify_checkpoint
    from paddlex_feat.utils.errors import PaddlexFeatError

    states = {"model_name": "PP-ShiTuV2_rec", "num_classes": 3}
    for epoch in (1, 2):
        ckpt.save_checkpoint(tmp_path, f"epoch_{epoch}", *_tiny_training(epoch), {**states, "epoch": epoch})
    ckpt.copy_checkpoint(tmp_path, "epoch_1", "latest")
    # what a kill left when files were replaced one by one: .pdparams of epoch 2, the rest of epoch 1
    shutil.copy(tmp_path / "epoch_2" / "epoch_2.pdparams", tmp_path / "latest" / "latest.pdparams")
    facts = read_facts(tmp_path / "latest", None, RESUME_KEY)
    with pytest.raises(PaddlexFeatError) as err:
        verify_checkpoint(facts)
    message = str(err.value)
    assert "latest is a mixed checkpoint: its .pdparams file(s)" in message and "(epoch 1)" in message
    assert f"-o Train.resume_path={tmp_path / 'epoch_2'}" in message


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
