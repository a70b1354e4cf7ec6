"""Atomic writes: content replaced in one step, permissions as a plain write would leave them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from paddlex_feat.utils.io import atomic_write_text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "result.json", "{}")
    finally:
        os.umask(old)
    assert mode(tmp_path / "result.json") == 0o644
    assert (tmp_path / "result.json").read_text() == "{}"


def test_rewritten_file_keeps_its_own_permissions(tmp_path: Path) -> None:
    # check_dataset's split rewrites the user's list files: their mode must survive
    lst = tmp_path / "train.txt"
    lst.write_text("a.jpg 0\n")
    lst.chmod(0o664)
    atomic_write_text(lst, "b.jpg 1\n")
    assert mode(lst) == 0o664 and lst.read_text() == "b.jpg 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["train.txt"]  # no temp file left behind
