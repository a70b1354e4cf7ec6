"""Global.mode=export, and ``export_inference`` which train calls for every ``inference/`` folder.

An inference folder holds ``inference.json`` (Paddle 3 program), ``inference.pdiparams`` and
``inference.yml`` in the reference's format, so PaddleX's ``create_model(name, model_dir=...)``
loads it as it loads an official model. The program outputs the raw 512-d neck feature;
L2 normalisation is the ``NormalizeFeatures`` post-process named in ``inference.yml``.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import paddle
import yaml

from ..inference.spec import INFERENCE_YML, build_inference_yml
from ..models import get_model_info
from ..utils.errors import ModelError
from ..utils.io import atomic_write_text
from ..utils.logger import logger
from . import quantize

WEIGHT_KEY = "Export.weight_path"

PREFIX = "inference"


def save_feature_program(model: paddle.nn.Layer, prefix: Path, size: int) -> Path:
    """``jit.save`` a frozen, re-parameterised copy of ``model`` (whose forward is the feature); returns the program.

    The copy is taken before the rep blocks are fused, so a model still in training is left as is.
    """
    frozen = copy.deepcopy(model)
    frozen.eval()
    if hasattr(frozen, "re_parameterize"):
        frozen.re_parameterize()
    spec = [paddle.static.InputSpec(shape=[None, 3, size, size], dtype="float32", name="x")]
    try:
        paddle.jit.save(frozen, str(prefix), input_spec=spec)
    except Exception as err:  # dy2st raises many types; name the model and the way out
        raise ModelError(
            f"Could not convert {type(model).__name__} to a static graph ({type(err).__name__}: {err}). "
            "This is a bug in the model code."
        ) from err
    # Paddle 3 writes a PIR .json program; without PIR it writes the older .pdmodel
    program = next(
        (prefix.with_suffix(e) for e in (".json", ".pdmodel") if prefix.with_suffix(e).is_file()), None
    )
    if program is None:
        raise ModelError(
            f"paddle.jit.save wrote no program file in {prefix.parent}; files: {sorted(os.listdir(prefix.parent))}."
        )
    return program


def export_inference(
    model: paddle.nn.Layer, model_name: str, save_dir: str | os.PathLike, input_size: int | None = None
) -> dict[str, str]:
    """Save ``model`` as an inference folder; returns {inference_config, pdmodel, pdiparams} paths.

    Files are written in a temp folder and moved in, so a crash never leaves a half-written folder.
    """
    info = get_model_info(model_name)
    size = int(input_size or info.input_size)
    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=save_dir, prefix=".export."))
    try:
        program = save_feature_program(model, tmp / PREFIX, size)
        yml = build_inference_yml(model_name, size, info.mean, info.std, info.interpolation)
        atomic_write_text(tmp / INFERENCE_YML, yaml.safe_dump(yml, sort_keys=False))
        written = {}
        for file in sorted(tmp.iterdir()):
            os.replace(file, save_dir / file.name)
            written[file.name] = save_dir / file.name
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # a stale legacy program next to a new one would be ambiguous for loaders that prefer .pdmodel
    for stale in (".pdmodel", ".json"):
        old = save_dir / f"{PREFIX}{stale}"
        if old.name not in written and old.exists():
            old.unlink()
    logger.info(f"Exported {model_name} ({size}x{size}) to {save_dir}")
    return {
        "inference_config": str(save_dir / INFERENCE_YML),
        "pdmodel": str(save_dir / program.name),
        "pdiparams": str(save_dir / f"{PREFIX}.pdiparams"),
    }


def run(cfg: dict) -> dict[str, Any]:
    """Run the export mode; returns the content of ``export_result.json``."""
    from ..utils.device import set_device
    from .checkpoint import TrainedCheckpoint

    set_device(cfg["Global"]["device"])
    export_cfg = cfg["Export"]
    int8_plan = quantize.check_int8_request(cfg) if export_cfg["precision"] == "int8" else None
    # the size and model are the checkpoint's (a model trained at 64 exports at 64) unless a key overrides
    model, facts = TrainedCheckpoint.load(export_cfg["weight_path"], cfg, WEIGHT_KEY)
    save_dir = export_cfg.get("save_dir") or cfg["Global"]["output"]
    files = export_inference(model, facts.model_name, save_dir, input_size=facts.input_size)
    result = {
        "done_flag": True,
        "model_name": facts.model_name,
        "weight_path": str(facts.weights),
        "save_dir": str(save_dir),
        **files,
    }
    if int8_plan is not None:  # Export.precision=int8: a checked int8 model beside the fp32 files
        program, params = Path(files["pdmodel"]), Path(files["pdiparams"])
        result["int8"] = quantize.export_int8(
            cfg, int8_plan, Path(save_dir), program, params, str(facts.weights)
        )
    return result
