"""One run per output folder: a second run fails at once naming the holder; a dead run's lock is taken over."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddlex_feat.cli import main
from paddlex_feat.utils.logger import logger
from paddlex_feat.utils.run_lock import LOCK_NAME, OutputLockedError, output_lock

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"

HOLD = """
import sys, time
from paddlex_feat.utils.run_lock import output_lock
with output_lock(sys.argv[1], "train"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_a_held_folder_fails_at_once_naming_the_holder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        rc = main(
            [
                "-c",
                str(CONFIG),
                "-o",
                f"Global.output={out}",
                "-o",
                f"Global.dataset_dir={ROOT / 'dataset' / 'demo'}",
            ]
        )
        assert rc == 1 and time.monotonic() - start < 5
        err = capsys.readouterr().err
        assert f"is in use by a train run, pid {holder.pid} on host" in err
        assert not (out / "check_dataset_result.json").exists() and not (out / "check_dataset.log").exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_dead_run_is_taken_over_with_a_log_line(tmp_path: Path, caplog) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"host": os.uname().nodename, "pid": pid, "mode": "train", "since": "x"})
    )
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    try:
        with output_lock(tmp_path, "evaluate"):
            held = json.loads((tmp_path / LOCK_NAME).read_text())
            assert held["pid"] == os.getpid() and held["mode"] == "evaluate"
            # another open file description, even in the same process, is refused as well
            with (
                pytest.raises(OutputLockedError, match=f"a evaluate run, pid {os.getpid()}"),
                output_lock(tmp_path, "train"),
            ):
                pass
    finally:
        logger.removeHandler(caplog.handler)
    assert f"Taking over the stale lock of {tmp_path} left by a train run, pid {pid}" in caplog.text
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly
