"""Index.score_threshold: a number, null, or ``auto`` = the threshold evaluate calibrated for the model.

``auto`` reads ``recommended_threshold`` from the ``evaluate_result.json`` of the model folder: the
inference folder itself or up to two folders above it, since training writes the model to
``output/best_model/inference`` and evaluate (default ``Global.output=output``) writes
``output/evaluate_result.json``. The index meta records the number and where it came from, so a
later search uses the number even if the evaluation is rerun.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from ..utils.logger import logger

RESULT_FILE = "evaluate_result.json"
KEY = "Index.score_threshold"


def resolve_score_threshold(
    value: float | str | None, model_dir: str | None
) -> tuple[float | None, dict | None]:
    """(threshold, where it came from) for a configured value; ``auto`` is read from the evaluate result."""
    if value is None:
        return None, None
    if value != "auto":
        return float(value), {"from": KEY}
    path = find_evaluate_result(model_dir)
    result = _read_result(path)
    threshold = result.get("recommended_threshold")
    calibration = result.get("calibration") or {}
    if "recommended_threshold" not in result:
        raise ConfigError(
            f"{KEY}=auto: {path} has no recommended_threshold (written by an evaluate before calibration "
            "existed); rerun -o Global.mode=evaluate, or set a number."
        )
    if threshold is None:
        raise ConfigError(
            f"{KEY}=auto: {path} says the threshold could not be calibrated: "
            f"{calibration.get('reason', 'no reason given')}. Set a number, e.g. -o {KEY}=0.5."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ConfigError(
            f"{KEY}=auto: recommended_threshold in {path} is {threshold!r}, not a number; rerun evaluate."
        )
    _warn_if_older_than_model(path, model_dir)
    source: dict[str, Any] = {"from": "auto", "evaluate_result": str(path.resolve())}
    source.update({k: calibration[k] for k in ("rule", "false_accept", "false_reject") if k in calibration})
    logger.info(f"{KEY}=auto: {threshold} ({calibration.get('rule', '?')}) from {path}")
    return float(threshold), source


def find_evaluate_result(model_dir: str | None) -> Path:
    """The evaluate_result.json in the model folder or up to two folders above it."""
    if not model_dir:
        raise ConfigError(
            f"{KEY}=auto needs a model folder (Index.model_dir or Predict.model_dir) to find {RESULT_FILE}."
        )
    folder = Path(model_dir).resolve()
    candidates = [folder / RESULT_FILE, folder.parent / RESULT_FILE, folder.parent.parent / RESULT_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"{KEY}=auto found no {RESULT_FILE} for the model {model_dir} (looked at {looked}). Run "
        f"-o Global.mode=evaluate with -o Global.output=<the training output folder> first, or set a number."
    )


def _read_result(path: Path) -> dict:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{KEY}=auto: {path} is not readable JSON ({err}); rerun evaluate.") from err
    if not isinstance(result, dict):
        raise ConfigError(
            f"{KEY}=auto: {path} is not an evaluate result (not a JSON object); rerun evaluate."
        )
    if result.get("done_flag") is not True:
        raise ConfigError(
            f"{KEY}=auto: {path} records a failed evaluate ({result.get('err_msg', 'done_flag is not true')}); "
            "fix that and rerun evaluate, or set a number."
        )
    return result


def _warn_if_older_than_model(path: Path, model_dir: str) -> None:
    params = sorted(Path(model_dir).glob("*.pdiparams"))
    if params and path.stat().st_mtime < params[0].stat().st_mtime:
        logger.warning(
            f"{path} is older than {params[0]}: the threshold was calibrated on an earlier model. "
            "Rerun evaluate for this one."
        )
