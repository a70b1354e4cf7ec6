"""The CLI: exit codes, result files and messages for usage errors and runner failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paddlex_feat.cli import main
from paddlex_feat.config import MODES
from paddlex_feat.engine import get_runner

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def run_cli(tmp_path: Path, *overrides: str, extra: tuple[str, ...] = ()) -> int:
    return main(
        [
            "-c",
            str(CONFIG),
            "-o",
            f"Global.output={tmp_path / 'out'}",
            *sum((["-o", o] for o in overrides), []),
            *extra,
        ]
    )


def test_every_mode_has_a_runner_module() -> None:
    # every mode of the schema has paddlex_feat/engine/<mode>.py with a run(cfg), and every engine
    # module with a run(cfg) is a mode: neither side can gain an entry the other lacks
    engine = ROOT / "paddlex_feat" / "engine"
    with_run = sorted(p.stem for p in engine.glob("*.py") if "\ndef run(cfg: dict" in p.read_text())
    assert with_run == sorted(MODES)
    for mode in MODES:
        runner = get_runner(mode)
        assert callable(runner) and runner.__module__ == f"paddlex_feat.engine.{mode}"
    with pytest.raises(ValueError, match="unknown mode 'recognise'"):
        get_runner("recognise")


def test_typo_key_exits_2_and_names_valid_key(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "out").mkdir()
    rc = run_cli(tmp_path, "Global.mode=train", "Train.epoch_iters=3")
    assert rc == 2
    err = capsys.readouterr().err
    assert "usage: main.py" in err and "Train.epochs_iters" in err
    assert not (tmp_path / "out" / "train_result.json").exists()  # nothing ran, so no result


def test_usage_error_never_touches_result_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "out" / "train_result.json"
    good.parent.mkdir()
    good.write_text('{"done_flag": true, "models": {}}')
    assert run_cli(tmp_path, "Global.mode=train", "Train.epoch_iters=3") == 2  # a typo in the config
    from paddlex_feat.utils.errors import ConfigError

    def refusing_runner(cfg: dict) -> dict:
        raise ConfigError("Train.input_size must be positive")  # a usage error found by the runner

    monkeypatch.setattr("paddlex_feat.cli.get_runner", lambda mode: refusing_runner)
    assert run_cli(tmp_path, "Global.mode=train") == 2
    assert good.read_text() == '{"done_flag": true, "models": {}}'
    assert sorted(p.name for p in good.parent.glob("*.json")) == ["train_result.json"]


def test_failed_run_keeps_the_last_successful_result_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from paddlex_feat.utils.errors import DatasetError

    runs = iter([{"done_flag": True, "metrics": {"recall1": 0.5}}, DatasetError("query.txt is empty")] * 2)

    def runner(cfg: dict) -> dict:
        outcome = next(runs)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr("paddlex_feat.cli.get_runner", lambda mode: runner)
    out = tmp_path / "out"
    assert run_cli(tmp_path, "Global.mode=evaluate") == 0
    assert run_cli(tmp_path, "Global.mode=evaluate") == 1
    assert json.loads((out / "evaluate_result.json").read_text())["done_flag"] is False
    kept = out / "evaluate_result.last_success.json"
    assert json.loads(kept.read_text()) == {"done_flag": True, "metrics": {"recall1": 0.5}}
    assert f"The last successful result is kept in {kept}" in capsys.readouterr().err
    assert run_cli(tmp_path, "Global.mode=evaluate") == 0
    assert run_cli(tmp_path, "Global.mode=evaluate") == 1  # a second failure keeps the newest success
    assert json.loads(kept.read_text()) == {"done_flag": True, "metrics": {"recall1": 0.5}}


def test_full_disk_names_the_file_and_errno(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import errno

    from paddlex_feat.utils.io import atomic_target

    def runner(cfg: dict) -> dict:
        with atomic_target(tmp_path / "out" / "epoch_1" / "epoch_1.pdparams") as tmp, open(tmp, "wb"):
            raise OSError(errno.ENOSPC, "No space left on device")  # what a write on a full disk raises

    monkeypatch.setattr("paddlex_feat.cli.get_runner", lambda mode: runner)
    assert run_cli(tmp_path, "Global.mode=train") == 1
    err = capsys.readouterr().err
    assert f"could not write {tmp_path / 'out' / 'epoch_1' / 'epoch_1.pdparams'}" in err
    assert "errno 28 ENOSPC" in err and "disk is full" in err
    assert "bug" not in err and "Traceback" not in err


def test_read_only_output_folder_is_one_paragraph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import errno
    import logging

    def refuse(self):  # what opening a file in a read-only folder raises (tests may run as root)
        raise PermissionError(errno.EACCES, "Permission denied", self.baseFilename)

    monkeypatch.setattr(logging.FileHandler, "_open", refuse)
    assert run_cli(tmp_path, "Global.mode=train") == 1
    err = capsys.readouterr().err
    assert f"could not write {tmp_path / 'out' / 'train.log'}: Permission denied (errno 13 EACCES)" in err
    assert "Traceback" not in err


def test_missing_config_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["-c", "does/not/exist.yaml"]) == 2
    assert "Config file not found" in capsys.readouterr().err


def test_missing_c_argument_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_runner_failure_writes_done_flag_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from paddlex_feat.utils.errors import DatasetError

    def failing_runner(cfg: dict) -> dict:
        raise DatasetError("train.txt:3: label 'x' is not an integer", details={"check_pass": False})

    monkeypatch.setattr("paddlex_feat.cli.get_runner", lambda mode: failing_runner)
    rc = run_cli(tmp_path, "Global.mode=check_dataset")
    assert rc == 1
    result = json.loads((tmp_path / "out" / "check_dataset_result.json").read_text())
    assert result == {
        "done_flag": False,
        "err_type": "DatasetError",
        "err_msg": "train.txt:3: label 'x' is not an integer",
        "check_pass": False,
    }
    err = capsys.readouterr().err
    assert "Traceback" not in err and "label 'x' is not an integer" in err
    assert (tmp_path / "out" / "check_dataset.log").read_text().count("not an integer") == 1


def test_unexpected_error_shows_traceback_only_with_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def buggy_runner(cfg: dict) -> dict:
        raise KeyError("oops")

    monkeypatch.setattr("paddlex_feat.cli.get_runner", lambda mode: buggy_runner)
    assert run_cli(tmp_path, "Global.mode=train") == 1
    assert "Traceback" not in capsys.readouterr().err
    assert run_cli(tmp_path, "Global.mode=train", extra=("--debug",)) == 1
    assert "Traceback" in capsys.readouterr().err
    assert run_cli(tmp_path, "Global.mode=train", "Global.debug=True") == 1
    assert "Traceback" in capsys.readouterr().err


def test_success_writes_result_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("paddlex_feat.cli.get_runner", lambda mode: lambda cfg: {"done_flag": True, "x": 1})
    assert run_cli(tmp_path, "Global.mode=export") == 0
    assert json.loads((tmp_path / "out" / "export_result.json").read_text()) == {"done_flag": True, "x": 1}


def test_output_that_cannot_be_created(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc = main(["-c", str(CONFIG), "-o", f"Global.output={blocker / 'out'}"])
    assert rc == 1
    assert "Cannot create Global.output" in capsys.readouterr().err


def test_main_py_runs_as_a_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "-c", str(CONFIG), "-o", "Train.epoch_iters=3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Did you mean 'Train.epochs_iters'" in proc.stderr
