"""Training checkpoints in PaddleX's layout: ``{output}/{tag}/{tag}.pdparams|.pdopt|.pdstates``.

Every file is written to a temp name and renamed, and ``.pdstates`` (which says the checkpoint
is complete) is renamed last, so a kill at any moment leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import paddle

from ..utils.errors import ModelError, PaddlexFeatError
from ..utils.io import atomic_target
from ..utils.logger import logger
from ..utils.safe_load import safe_load

SUFFIXES = ("pdparams", "pdopt", "pdstates")


def _atomic_paddle_save(obj: Any, path: Path) -> None:
    with atomic_target(path) as tmp:
        paddle.save(obj, str(tmp))


def save_checkpoint(
    output: str | os.PathLike,
    tag: str,
    model: paddle.nn.Layer,
    optimizer: paddle.optimizer.Optimizer,
    states: dict,
) -> dict[str, str]:
    """Save model, optimiser and training state under ``{output}/{tag}/``; returns the paths."""
    folder = Path(output) / tag
    folder.mkdir(parents=True, exist_ok=True)
    paths = {suffix: folder / f"{tag}.{suffix}" for suffix in SUFFIXES}
    _atomic_paddle_save(model.state_dict(), paths["pdparams"])
    _atomic_paddle_save(portable_optimizer_state(model, optimizer), paths["pdopt"])
    _atomic_paddle_save(states, paths["pdstates"])  # last: a complete .pdstates marks a complete checkpoint
    return {k: str(v) for k, v in paths.items()}


def copy_checkpoint(output: str | os.PathLike, source_tag: str, tag: str) -> None:
    """Give ``{output}/{source_tag}``'s checkpoint files a second name ``{output}/{tag}`` without re-serialising.

    A hard link where the file system allows it (no extra disk), else a copy; each file is replaced
    atomically, so the old ``tag`` stays whole until its new files are in place.
    """
    src, dst = Path(output) / source_tag, Path(output) / tag
    dst.mkdir(parents=True, exist_ok=True)
    for suffix in SUFFIXES:
        with atomic_target(dst / f"{tag}.{suffix}") as tmp:
            tmp.unlink()
            try:
                os.link(src / f"{source_tag}.{suffix}", tmp)
            except OSError:  # no hard links here (another device, some network file systems)
                shutil.copyfile(src / f"{source_tag}.{suffix}", tmp)


def _rename_keys(state: dict, mapping: dict[str, str]) -> dict:
    """Rename ``{old}_velocity_0``-style keys by the longest matching parameter-name prefix."""
    olds = sorted(mapping, key=len, reverse=True)
    renamed = {}
    for key, value in state.items():
        old = next((o for o in olds if key.startswith(o + "_")), None)
        renamed[mapping[old] + key[len(old) :] if old else key] = value
    return renamed


def portable_optimizer_state(model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer) -> dict:
    """Optimiser state keyed by structured parameter names (``backbone.stem.0.conv.weight_velocity_0``):
    Paddle keys it by generated names (``conv2d_345.w_0``) that differ in the next process."""
    return _rename_keys(optimizer.state_dict(), {p.name: n for n, p in model.named_parameters()})


def restore_optimizer_state(
    model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer, state: dict
) -> None:
    """Load a state saved by :func:`portable_optimizer_state` into ``optimizer``."""
    optimizer.set_state_dict(_rename_keys(state, {n: p.name for n, p in model.named_parameters()}))


def checkpoint_prefix(path: str | os.PathLike) -> Path:
    """``output/latest/latest.pdparams``, ``output/latest/latest`` or ``output/latest`` -> the prefix."""
    path = Path(path)
    if path.is_dir():
        path = path / path.name
    if path.suffix in {f".{s}" for s in SUFFIXES}:
        path = path.with_suffix("")
    return path


def load_training_state(path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """Read (model state, optimiser state, training states) of a checkpoint to resume from."""
    prefix = checkpoint_prefix(path)
    files = {suffix: Path(f"{prefix}.{suffix}") for suffix in SUFFIXES}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise PaddlexFeatError(
            f"Train.resume_path={os.fspath(path)!r}: missing {', '.join(missing)}. Resume from a checkpoint "
            "folder written by train, e.g. -o Train.resume_path=output/latest/latest.pdparams."
        )
    loaded = {}
    for suffix, file in files.items():
        loaded[suffix] = safe_load(file)
        if not isinstance(loaded[suffix], dict):
            raise PaddlexFeatError(f"{file} is not a Paddle checkpoint (expected a dict of tensors).")
    return loaded["pdparams"], loaded["pdopt"], loaded["pdstates"]


def saved_num_classes(weight_path: Path) -> int | None:
    """The class count training recorded in the checkpoint's .pdstates, if there is one."""
    states_path = weight_path.with_suffix(".pdstates")
    if not states_path.is_file():
        return None
    try:
        states = safe_load(states_path)
    except ModelError as err:  # the value is optional: a bad file only loses it
        logger.warning(f"Ignoring unreadable {states_path}: {type(err).__name__}: {err}")
        return None
    value = states.get("num_classes") if isinstance(states, dict) else None
    return int(value) if isinstance(value, int) else None
