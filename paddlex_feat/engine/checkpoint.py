"""Training checkpoints in PaddleX's layout: ``{output}/{tag}/{tag}.pdparams|.pdopt|.pdstates``,
and the one reader of a trained model: :class:`TrainedCheckpoint`.

Every file is written to a temp name and renamed, and ``.pdstates`` (which says the checkpoint
is complete) is renamed last, so a kill at any moment leaves the previous checkpoint loadable.

Training writes a run's facts (model name, class count, input size, label map, pre-processing,
training config) into ``.pdstates``; evaluate, export, resume and index building read them
back through :meth:`TrainedCheckpoint.load` / :func:`read_facts` and nowhere else. Checkpoints of
older versions (facts in ``.pdstates`` without the config) and of PaddleX (a ``config.yaml`` next to
the weights or one folder up) load too. Every checkpoint file is read by :func:`_read_file`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import paddle
import yaml

from ..config.loader import set_on_command_line
from ..models import build_model, get_model_info
from ..models.weights import load_state, require_loaded, resolve_checkpoint
from ..utils.download import is_url
from ..utils.errors import ConfigError, ModelError, PaddlexFeatError
from ..utils.io import atomic_target
from ..utils.logger import logger

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


# --- reading a trained model: one description, one reader


@dataclass(frozen=True)
class TrainedFacts:
    """One description of a trained model: what evaluate, export, resume and build_index need."""

    weights: Path  # the .pdparams file
    model_name: str
    num_classes: int  # the head's size; the feature does not use the head
    input_size: int
    label_dict: dict[int, int]  # original label -> trained class id ({} when unknown)
    preprocess: dict[str, Any]  # input_size, mean, std, interpolation of the eval transform
    train_config: dict | None  # the training run's config (None for weights without one)
    states: dict = field(default_factory=dict, repr=False)  # the raw .pdstates ({} without one)

    @cached_property
    def source_sha256(self) -> str:
        """sha256 of the .pdparams bytes: which weights an index or export came from (read on first use)."""
        return _sha256(self.weights)

    @property
    def prefix(self) -> Path:
        """``output/latest/latest`` for ``output/latest/latest.pdparams``."""
        return self.weights.with_suffix("")


class TrainedCheckpoint:
    """``TrainedCheckpoint.load(path, cfg, key) -> (model, facts)``: the one way to open a trained model.

    ``path`` may be a ``.pdparams`` file (the extension may be left out, a sibling ``.pdopt`` or
    ``.pdstates`` names the same checkpoint), its folder (``output/best_model``), a run's output
    folder (``output``: its ``best_model/``, or ``latest/`` for ``Train.resume_path``), or an
    http(s) URL of published weights.
    """

    @staticmethod
    def load(path: str | os.PathLike, cfg: dict, config_key: str) -> tuple[paddle.nn.Layer, TrainedFacts]:
        """Build the described model and load its weights (all but the head must fit)."""
        facts = read_facts(path, cfg, config_key)
        model = build_model(facts.model_name, facts.num_classes)
        report = load_state(
            model, _read_file(facts.weights, config_key), facts.weights, config_key=config_key, source=path
        )
        require_loaded(report, config_key, facts.model_name, allow_missing_head=True)
        return model, facts


def locate_weights(path: str | os.PathLike | None, config_key: str) -> Path:
    """The ``.pdparams`` file a ``weight_path``/``resume_path`` setting names, or a clear error naming the key."""
    if not path:
        example = "output/latest" if config_key == RESUME_KEY else "output/best_model/best_model.pdparams"
        raise ConfigError(
            f"{config_key} is not set. Point it at a trained checkpoint, e.g. -o {config_key}={example}."
        )
    if is_url(path):
        return resolve_checkpoint(path, config_key=config_key)
    given = Path(path).expanduser()
    if given.is_dir():
        run_tag = "latest" if config_key == RESUME_KEY else "best_model"
        for folder in (given, given / run_tag):  # a checkpoint folder, or a run's output folder
            if (folder / f"{folder.name}.pdparams").is_file():
                return folder / f"{folder.name}.pdparams"
        found = sorted(p.name for p in given.glob("*.pdparams"))
        raise ModelError(
            f"{config_key}: {given} is a folder without {given.name}.pdparams or {run_tag}/{run_tag}.pdparams"
            + (f"; it holds {', '.join(found)}: point at one of them." if found else ".")
            + " Give a .pdparams file, its checkpoint folder, or a train run's output folder."
        )
    if given.suffix in (".pdopt", ".pdstates"):
        given = given.with_suffix(".pdparams")
    return resolve_checkpoint(given, config_key=config_key)


def read_facts(path: str | os.PathLike, cfg: dict | None, config_key: str) -> TrainedFacts:
    """The facts of the checkpoint at ``path``; a key set on the command line wins (and is logged).

    Where a fact comes from, first found: the checkpoint's ``.pdstates``; a ``config.yaml`` next to
    the weights or one folder up (PaddleX, and checkpoints of older versions); ``cfg``; the model
    table. ``cfg=None`` (resume) reads the saved facts alone.
    """
    weights = locate_weights(path, config_key)
    states = _read_states(weights, required=config_key == RESUME_KEY, config_key=config_key)
    train_config = states.get("train_config") or _read_saved_config(weights)
    model_name, num_classes, input_size = _saved_settings(states, train_config, cfg)
    if model_name is None:
        raise ModelError(
            f"{config_key}={path}: nothing says which model these weights are; set Global.model."
        )
    if cfg is not None:
        model_name = _command_line_wins(cfg, "Global.model", model_name)
        num_classes = _command_line_wins(cfg, "Train.num_classes", num_classes)
        input_size = _command_line_wins(cfg, "Train.input_size", input_size)
        if config_key.startswith("Export.") and cfg.get("Export", {}).get("input_size"):
            input_size = _override(cfg, "Export.input_size", input_size, "the config")
    info = get_model_info(model_name)
    input_size = int(input_size or info.input_size)
    preprocess = states.get("preprocess") or {
        "input_size": input_size,
        "mean": list(info.mean),
        "std": list(info.std),
        "interpolation": info.interpolation,
    }
    return TrainedFacts(
        weights=weights,
        model_name=model_name,
        num_classes=int(num_classes),
        input_size=input_size,
        label_dict=dict(states.get("label_dict") or {}),
        preprocess={**preprocess, "input_size": input_size},
        train_config=train_config,
        states=states,
    )


def read_weights(facts: TrainedFacts, config_key: str) -> dict:
    """The raw state dict of the facts' ``.pdparams`` (resume checks it key by key)."""
    return _read_dict(facts.weights, config_key)


def read_optimizer_state(facts: TrainedFacts) -> dict:
    """The ``.pdopt`` beside the facts' weights (resume needs it; a missing one is a clear error)."""
    file = facts.prefix.with_suffix(".pdopt")
    if not file.is_file():
        raise PaddlexFeatError(
            f"{RESUME_KEY}: missing {file}. Resume from a checkpoint folder written by train, "
            "e.g. -o Train.resume_path=output/latest/latest.pdparams."
        )
    return _read_dict(file, RESUME_KEY)


def facts_states(
    *, model_name: str, num_classes: int, input_size: int, label_dict: dict, train_config: dict
) -> dict:
    """The facts part of the ``.pdstates`` that train writes (the loop state is added beside it)."""
    info = get_model_info(model_name)
    return {
        "model_name": model_name,
        "num_classes": num_classes,
        "input_size": input_size,
        "label_dict": label_dict,
        "preprocess": {
            "input_size": input_size,
            "mean": list(info.mean),
            "std": list(info.std),
            "interpolation": info.interpolation,
        },
        "train_config": train_config,
    }


def find_train_config(weight_path: str | os.PathLike) -> Path | None:
    """The ``config.yaml`` next to the weights, else one folder up, else None (older checkpoints, PaddleX)."""
    folder = Path(weight_path).resolve().parent
    for candidate in (folder / "config.yaml", folder.parent / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


RESUME_KEY = "Train.resume_path"


def _read_file(path: Path, config_key: str) -> Any:
    """Every checkpoint file this module reads goes through here (one place to make loading safer)."""
    try:
        return paddle.load(str(path))
    except Exception as err:  # noqa: BLE001 - paddle raises many types for a bad file
        raise ModelError(
            f"{config_key}: {path} is not a Paddle checkpoint (paddle.load failed: {type(err).__name__}: "
            f"{err}). Expected a file saved by train, PaddleX or PaddleClas."
        ) from err


def _read_dict(path: Path, config_key: str) -> dict:
    loaded = _read_file(path, config_key)
    if not isinstance(loaded, dict):
        raise ModelError(
            f"{config_key}: {path} is not a Paddle checkpoint (expected a dict, got {type(loaded).__name__})."
        )
    return loaded


def _read_states(weights: Path, required: bool, config_key: str) -> dict:
    """The ``.pdstates`` beside the weights; {} when there is none (published or PaddleClas weights)."""
    file = weights.with_suffix(".pdstates")
    if not file.is_file():
        if required:
            raise PaddlexFeatError(
                f"{config_key}: missing {file}. Resume from a checkpoint folder written by train, "
                "e.g. -o Train.resume_path=output/latest/latest.pdparams."
            )
        return {}
    if required:
        return _read_dict(file, config_key)
    try:
        return _read_dict(file, config_key)
    except ModelError as err:  # the facts then come from config.yaml or the current config
        logger.warning(f"Ignoring {file}: {err}")
        return {}


def _read_saved_config(weights: Path) -> dict | None:
    """The training config saved as ``config.yaml`` near the weights (checkpoints without it in .pdstates)."""
    found = find_train_config(weights)
    if found is None:
        return None
    try:
        saved = yaml.safe_load(found.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{found} (found next to {weights}) is not readable YAML: {err}") from err
    if not isinstance(saved, dict):
        raise ConfigError(f"{found} (found next to {weights}) is not a config mapping.")
    logger.info(f"Using the model settings of {found}")
    return saved


def _saved_settings(states: dict, train_config: dict | None, cfg: dict | None) -> tuple[Any, Any, Any]:
    """(model name, class count, input size), each from .pdstates, else the saved config, else ``cfg``."""
    saved_global = (train_config or {}).get("Global") or {}
    saved_train = (train_config or {}).get("Train") or {}
    current = cfg or {"Global": {}, "Train": {}}
    return (
        _first(states.get("model_name"), saved_global.get("model"), current["Global"].get("model")),
        _first(
            states.get("num_classes"), saved_train.get("num_classes"), current["Train"].get("num_classes"), 1
        ),
        _first(states.get("input_size"), saved_train.get("input_size"), current["Train"].get("input_size")),
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _command_line_wins(cfg: dict, dotted: str, saved: Any) -> Any:
    """The command line's value of ``dotted`` when it was set there, else the saved fact."""
    if not set_on_command_line(cfg, dotted):
        return saved
    return _override(cfg, dotted, saved, "the command line")


def _override(cfg: dict, dotted: str, saved: Any, where: str) -> Any:
    section, key = dotted.split(".")
    value = cfg[section][key]
    if value is not None and value != saved:
        logger.info(f"{dotted}={value} from {where} overrides the checkpoint's {saved}.")
        return value
    return saved


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
