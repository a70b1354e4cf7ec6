"""Global.mode=predict: save each image's feature as ``{Global.output}/predict/<relative path>_res.json``.

The JSON files mirror the input folder (``images/google/1f600.jpg`` -> ``predict/google/1f600_res.json``),
so names never collide, within a run or across runs. One image prints its JSON, as PaddleX does; a
folder prints one line per image.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from ..utils.checks import check_batch_size
from ..utils.errors import ConfigError, NotImplementedYetError
from ..utils.logger import logger, progress

PADDLE_RUN_MODES = ("paddle", "mkldnn")  # both mean Paddle Inference, with oneDNN on the CPU
HPI_RUN_MODES = ("openvino", "onnxruntime")  # shorthands for use_hpip with that hpi_config.backend
RUN_MODES = PADDLE_RUN_MODES + HPI_RUN_MODES


def hpi_options(pred: dict) -> tuple[bool, dict[str, Any] | None]:
    """``use_hpip`` and ``hpi_config`` from Predict.use_hpip, .hpi_config and .kernel_option.run_mode."""
    run_mode = pred["kernel_option"]["run_mode"]
    if run_mode not in RUN_MODES:
        raise NotImplementedYetError(
            f"Predict.kernel_option.run_mode={run_mode!r} is not available yet; use one of {', '.join(RUN_MODES)}."
        )
    hpi = dict(pred.get("hpi_config") or {})
    if run_mode in HPI_RUN_MODES:
        if hpi.get("backend") not in (None, run_mode):
            raise ConfigError(
                f"Predict.kernel_option.run_mode={run_mode!r} but Predict.hpi_config.backend={hpi['backend']!r}; "
                "set only one of them, or make them agree."
            )
        hpi["backend"] = run_mode
        return True, hpi
    if not pred["use_hpip"]:
        return False, None
    return True, hpi


def model_from_config(cfg: dict, model_dir: str | None = None, batch_size: int | None = None) -> Any:
    """The Predictor that the Predict section describes (predict, build_index and search share it)."""
    from ..api import create_model

    pred = cfg["Predict"]
    batch_size = check_batch_size(
        pred["batch_size"] if batch_size is None else batch_size, key="Predict.batch_size"
    )
    use_hpip, hpi_config = hpi_options(pred)
    return create_model(
        cfg["Global"]["model"],
        model_dir=model_dir or pred["model_dir"],
        device=cfg["Global"]["device"],
        use_hpip=use_hpip,
        hpi_config=hpi_config,
        batch_size=batch_size,
        cpu_threads=pred["cpu_threads"],
        skip_errors=pred["skip_errors"],
        url_timeout=pred["url_timeout"],
        max_image_bytes=pred["max_image_bytes"],
    )


def run(cfg: dict) -> dict[str, Any]:
    """Run the predict mode; returns the content of ``predict_result.json``."""
    pred = cfg["Predict"]
    if pred["input"] is None:
        raise ConfigError(
            "Predict.input is not set; pass an image, folder or URL, e.g. -o Predict.input=photos/."
        )
    model = model_from_config(cfg)
    folder = Path(cfg["Global"]["output"]) / "predict"
    stream = model.predict(pred["input"])
    name_of = _json_names(pred["input"])
    records, errors = [], 0
    for res in progress(stream, total=len(stream), desc="predict", unit="img"):
        record: dict[str, Any] = {"input_path": res["input_path"]}
        if pred["save_json"]:
            record["json"] = str(res.save_to_json(folder / name_of(res["input_path"])))
        if not res.ok:
            errors += 1
            record["error"] = res.error
        records.append(record)
        if len(stream) == 1:
            res.print()
        else:
            print(_one_line(len(records), len(stream), res, record.get("json")), flush=True)
    logger.info(
        f"Predicted {len(records) - errors} of {len(records)} images"
        + (f"; {errors} skipped" if errors else "")
    )
    return {
        "done_flag": errors < len(records),
        "model_name": model.model_name,
        "model_dir": str(model.model_dir),
        "num_images": len(records),
        "num_errors": errors,
        "backend": model.runner.backend,
        "precision": model.runner.precision,
        "results": records,
    }


def _one_line(i: int, total: int, res: Any, json_path: str | None) -> str:
    """``[3/1440] images/a.jpg -> output/predict/a_res.json``, or the error, for a folder's images."""
    outcome = f"ERROR {res.error}" if not res.ok else (f"-> {json_path}" if json_path else "ok")
    return f"[{i}/{total}] {res['input_path']} {outcome}"


def _json_names(inputs: Any):
    """A function from an input path to its JSON file name relative to ``predict/``.

    An image under a folder given as input keeps its path below that folder; a file given by
    itself keeps its name; a URL its last path part. The image's extension is replaced by
    ``_res.json`` (PaddleX's suffix).
    """
    entries = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    folders = [Path(os.fspath(e)).expanduser().resolve() for e in entries if Path(os.fspath(e)).is_dir()]
    taken: dict[Path, str] = {}

    def name_of(input_path: str | None) -> Path:
        if input_path is None:
            rel = Path("array")
        elif input_path.lower().startswith(("http://", "https://")):
            rel = Path(PurePosixPath(unquote(urlparse(input_path).path)).name or "url")
        else:
            path = Path(input_path).expanduser().resolve()
            root = next((f for f in folders if path.is_relative_to(f)), None)
            rel = path.relative_to(root) if root else Path(path.name)
        name = rel.with_name(f"{rel.stem}_res.json")
        if taken.setdefault(name, input_path or "") != (input_path or ""):  # a.jpg and a.png in one folder
            name = rel.with_name(f"{rel.name}_res.json")
        return name

    return name_of
