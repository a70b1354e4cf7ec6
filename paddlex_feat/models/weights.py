"""Load ``.pdparams`` weights (local path or URL) into a model, tolerating the usual mismatches.

Rules of ``load_weights``:

* ``source`` is a local file, with or without its ``.pdparams`` extension, or an http(s) URL that is
  downloaded once into the cache (see ``paddlex_feat.utils.download``).
* Keys are matched as they are; if that matches fewer keys, the loader tries stripping one leading
  prefix shared by the checkpoint keys (``model.``, ``module.``, ``Student.``, ...) and/or adding
  ``backbone.`` (backbone-only checkpoints), and keeps whichever mapping matches the most keys.
* Tensors whose shape differs from the model's (a head trained for another class count) are
  skipped and listed in one log line; model keys absent from the checkpoint (missing) and
  checkpoint keys the model lacks (unexpected) are listed in one warning line each.
* A file that is not a Paddle checkpoint, or that shares no tensor with the model, is a ``ModelError``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import paddle

from ..utils.download import download_file, is_url
from ..utils.errors import ModelError
from ..utils.logger import logger

PRETRAIN_KEY = "Train.pretrain_weight_path"


@dataclass
class LoadReport:
    """What ``load_weights`` did: every checkpoint and model key ends up in exactly one list."""

    source: str
    path: str
    key_mapping: str
    loaded: list[str] = field(default_factory=list)
    skipped_shape: list[dict[str, Any]] = field(default_factory=list)  # {key, checkpoint, model}
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def _where(config_key: str | None) -> str:
    return f"{config_key}: " if config_key else ""


def _download_hint(config_key: str | None) -> str:
    """What the user can change instead of downloading."""
    key = config_key or PRETRAIN_KEY
    hint = f"Or set {key} to a local .pdparams file."
    if key == PRETRAIN_KEY:
        hint += f" To train without pretrained weights, add -o {PRETRAIN_KEY}=null."
    return hint


def resolve_checkpoint(
    source: str | os.PathLike, *, config_key: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The local ``.pdparams`` file for a path (extension optional) or a URL (downloaded and cached)."""
    if is_url(source):
        return download_file(str(source), cache_dir, hint=_download_hint(config_key))
    path = Path(source).expanduser()
    if path.is_file():
        return path
    with_ext = path.with_name(path.name + ".pdparams")
    if path.suffix != ".pdparams" and with_ext.is_file():
        return with_ext
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.pdparams"))
        inside = f" It holds: {', '.join(found)}." if found else " It holds no .pdparams file."
        raise ModelError(
            f"{_where(config_key)}{path} is a folder; point at the .pdparams file inside.{inside}"
        )
    tried = f"; also tried {with_ext}" if path.suffix != ".pdparams" else ""
    raise ModelError(
        f"{_where(config_key)}{path} does not exist (checkpoint file not found{tried}). "
        "Give the path of a .pdparams file (the extension may be left out) or an http(s) URL."
    )


def load_checkpoint(
    source: str | os.PathLike, *, config_key: str | None = None, cache_dir: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Read a ``.pdparams`` file (path or URL) and return its state dict (name -> tensor/array)."""
    return _read_state(resolve_checkpoint(source, config_key=config_key, cache_dir=cache_dir), config_key)


def _read_state(path: Path, config_key: str | None) -> dict[str, Any]:
    """paddle.load with the checks that turn a wrong file into a clear error."""
    return _tensors_of(_load_file(path, config_key), path, config_key)


def _load_file(path: Path, config_key: str | None) -> Any:
    """paddle.load; a file it cannot read is a clear error naming the key."""
    try:
        state = paddle.load(str(path))
    except Exception as err:  # paddle.load raises many types (pickle, EOF, unicode, ...) on bad files
        raise ModelError(
            f"{_where(config_key)}{path} is not a Paddle checkpoint (paddle.load failed: "
            f"{type(err).__name__}: {err}). Expected a .pdparams file saved by Paddle/PaddleX/PaddleClas."
        ) from err
    return state


def _tensors_of(state: Any, path: Path, config_key: str | None) -> dict[str, Any]:
    """The name -> tensor entries of a loaded file; anything else is a clear error."""
    if not isinstance(state, dict):
        raise ModelError(
            f"{_where(config_key)}{path} is not a Paddle state dict (it holds a {type(state).__name__}, "
            "not name -> tensor pairs)."
        )
    tensors = {k: v for k, v in state.items() if hasattr(v, "shape")}
    others = sorted(str(k) for k in state if k not in tensors)
    if not tensors:
        raise ModelError(f"{_where(config_key)}{path} holds no tensors, so it is not a weights file.")
    if others:
        logger.warning(f"{path}: ignoring {len(others)} non-tensor entries: {', '.join(others)}")
    return tensors


def _candidate_mappings(ckpt_keys: list[str]) -> list[tuple[str, Callable[[str], str]]]:
    """Key mappings to try, most literal first."""
    candidates: list[tuple[str, Callable[[str], str]]] = [
        ("as is", lambda k: k),
        ("added prefix 'backbone.'", lambda k: "backbone." + k),
    ]
    prefixes = sorted({k.split(".", 1)[0] + "." for k in ckpt_keys if "." in k})
    for prefix in prefixes:

        def strip(k: str, p: str = prefix) -> str:
            return k[len(p) :] if k.startswith(p) else k

        candidates.append((f"stripped prefix {prefix!r}", strip))
        candidates.append(
            (f"replaced prefix {prefix!r} by 'backbone.'", lambda k, s=strip: "backbone." + s(k))
        )
    return candidates


def _choose_mapping(ckpt_keys: list[str], model_keys: set[str]) -> tuple[str, Callable[[str], str]]:
    """The mapping under which the most checkpoint keys name a model key (ties keep the earlier one)."""
    best = None
    best_hits = -1
    for name, mapping in _candidate_mappings(ckpt_keys):
        hits = sum(mapping(k) in model_keys for k in ckpt_keys)
        if hits > best_hits:
            best, best_hits = (name, mapping), hits
    assert best is not None
    return best


def _as_array(value: Any, like: paddle.Tensor) -> np.ndarray:
    """The checkpoint value as numpy, cast to the model tensor's dtype (e.g. fp16 checkpoints)."""
    array = value.numpy() if isinstance(value, paddle.Tensor) else np.asarray(value)
    dtype_name = str(like.dtype).rsplit(".", 1)[-1]
    return array.astype(dtype_name, copy=False) if dtype_name in np.sctypeDict else array


def load_weights(
    model: paddle.nn.Layer,
    source: str | os.PathLike,
    *,
    config_key: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> LoadReport:
    """Load a checkpoint into ``model`` following the module rules; returns what was loaded/skipped."""
    path = resolve_checkpoint(source, config_key=config_key, cache_dir=cache_dir)
    return load_state(model, _load_file(path, config_key), path, config_key=config_key, source=source)


def load_state(
    model: paddle.nn.Layer,
    state: dict[str, Any],
    path: Path,
    *,
    config_key: str | None = None,
    source: str | os.PathLike | None = None,
) -> LoadReport:
    """Load an already-read state dict of ``path`` into ``model`` (the rules of :func:`load_weights`)."""
    state = _tensors_of(state, path, config_key)
    model_state = model.state_dict()
    ckpt_keys = list(state)
    mapping_name, mapping = _choose_mapping(ckpt_keys, set(model_state))
    report = LoadReport(source=str(source or path), path=str(path), key_mapping=mapping_name)
    to_load: dict[str, np.ndarray] = {}
    claimed: set[str] = set()
    for key in ckpt_keys:
        target = mapping(key)
        if target not in model_state:
            report.unexpected.append(key)
            continue
        claimed.add(target)
        ckpt_shape = [int(d) for d in state[key].shape]
        model_shape = [int(d) for d in model_state[target].shape]
        if ckpt_shape != model_shape:
            report.skipped_shape.append({"key": target, "checkpoint": ckpt_shape, "model": model_shape})
            continue
        to_load[target] = _as_array(state[key], model_state[target])
        report.loaded.append(target)
    report.missing = [k for k in model_state if k not in claimed]
    if not to_load:
        raise ModelError(
            f"{_where(config_key)}{path} shares no tensor with {type(model).__name__}: "
            f"checkpoint keys look like {', '.join(ckpt_keys[:3])}; the model expects keys like "
            f"{', '.join(list(model_state)[:3])}. Is it a checkpoint of another model?"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paddle warns once per absent key; we log them as one line below
        model.set_state_dict(to_load)
    _log_report(report, len(model_state))
    return report


def require_loaded(
    report: LoadReport, config_key: str, model_name: str, allow_missing_head: bool = False
) -> None:
    """Raise ModelError unless every model tensor came from the checkpoint (the head may be exempt)."""

    def counts(key: str) -> bool:
        return not (allow_missing_head and key.startswith("head."))

    missing = [k for k in report.missing if counts(k)]
    reshaped = [s for s in report.skipped_shape if counts(s["key"])]
    if not missing and not reshaped:
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if reshaped:
        shown = "; ".join(f"{s['key']}: file {s['checkpoint']} vs model {s['model']}" for s in reshaped[:3])
        problems.append(f"{len(reshaped)} with other shapes (e.g. {shown})")
    raise ModelError(
        f"{config_key}={report.path} does not fit {model_name}: {', '.join(problems)}. Use a checkpoint "
        f"of {model_name}, or set Global.model to the model it was trained as.",
        details={"not_loaded": missing + [s["key"] for s in reshaped]},
    )


def _log_report(report: LoadReport, n_model_keys: int) -> None:
    """One info line, plus one warning line per kind of mismatch, each naming every key."""
    logger.info(
        f"Loaded {len(report.loaded)}/{n_model_keys} model tensors from {report.path} "
        f"(checkpoint keys {report.key_mapping})"
    )
    if report.skipped_shape:
        items = ", ".join(f"{s['key']} {s['checkpoint']} vs model {s['model']}" for s in report.skipped_shape)
        logger.warning(
            f"Skipped {len(report.skipped_shape)} tensors whose shape differs from the model "
            f"(e.g. a head trained for another class count; they keep their initial values): {items}"
        )
    if report.missing:
        logger.warning(
            f"{len(report.missing)} model tensors are not in the checkpoint and keep their initial values: "
            f"{', '.join(report.missing)}"
        )
    if report.unexpected:
        logger.warning(
            f"{len(report.unexpected)} checkpoint tensors have no place in the model and were not used: "
            f"{', '.join(report.unexpected)}"
        )
