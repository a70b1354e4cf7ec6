"""Global.mode=predict: print each image's feature and save ``<stem>_res.json`` into Global.output."""

from __future__ import annotations

from typing import Any

from ..inference.predictor import check_batch_size
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
    )


def run(cfg: dict) -> dict[str, Any]:
    """Run the predict mode; returns the content of ``predict_result.json``."""
    pred = cfg["Predict"]
    if pred["input"] is None:
        raise ConfigError(
            "Predict.input is not set; pass an image, folder or URL, e.g. -o Predict.input=photos/."
        )
    model = model_from_config(cfg)
    output = cfg["Global"]["output"]
    stream = model.predict(pred["input"])
    records, errors = [], 0
    for res in progress(stream, total=len(stream), desc="predict", unit="img"):
        res.print()
        record: dict[str, Any] = {"input_path": res["input_path"]}
        if pred["save_json"]:
            record["json"] = str(res.save_to_json(output))
        if not res.ok:
            errors += 1
            record["error"] = res.error
        records.append(record)
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
