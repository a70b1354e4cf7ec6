"""The int8 artefact of an inference folder: ``inference.int8.onnx`` and its metadata, checked before use.

Export (``Export.precision=int8``, see ``engine/quantize.py``) writes a QDQ ONNX file beside the fp32
program, which both OpenVINO and ONNX Runtime run, and ``inference.int8.json`` with the SHA-256 of
that file and of the fp32 program it was quantized from, the calibration set and the accuracy check.
A predictor asking for int8 gets the file only when both hashes still match: an edited file, or an
fp32 model re-exported since, is refused with the command that rebuilds it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...utils.errors import ModelError
from ...utils.logger import logger
from .base import cpu_flags
from .onnx_cache import file_sha256

INT8_ONNX = "inference.int8.onnx"
INT8_META = "inference.int8.json"
# instructions that make int8 dot products faster than fp32 FMAs (without them OpenVINO still runs
# int8 with AVX2 vpmaddubsw, which is correct and usually somewhat faster, but not twice)
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def export_command(model_name: str | None, weight_path: str | None = None) -> str:
    """The command that (re)builds an int8 artefact for ``model_name``."""
    name = model_name or "<model>"
    weights = weight_path or "output/best_model/best_model.pdparams"
    return (
        f"python main.py -c configs/modules/image_feature/{name}.yaml -o Global.mode=export "
        f"-o Export.weight_path={weights} -o Export.precision=int8"
    )


def read_int8_meta(model_dir: Path) -> dict[str, Any] | None:
    """The folder's int8 metadata, or None when there is none or it does not parse."""
    try:
        meta = json.loads((Path(model_dir) / INT8_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _rebuild_hint(meta: dict[str, Any] | None, model_name: str | None) -> str:
    """The export command recorded at export time, else a generic one."""
    if meta and isinstance(meta.get("export_command"), str):
        return meta["export_command"]
    return export_command(model_name)


def int8_model_path(model_dir: Path, program: Path, params: Path, model_name: str | None = None) -> Path:
    """The folder's verified int8 ONNX file; a missing, edited or stale one is a ModelError with the fix."""
    model_dir = Path(model_dir)
    onnx_path, meta_path = model_dir / INT8_ONNX, model_dir / INT8_META
    meta = read_int8_meta(model_dir)
    rebuild = _rebuild_hint(meta, model_name)
    if not onnx_path.is_file():
        raise ModelError(
            f"hpi_config.precision='int8' but {model_dir} has no int8 model ({INT8_ONNX}). "
            f"Quantize it at export: `{rebuild}` (add -o Export.save_dir=... to write into this folder), "
            "or use precision 'fp32'.",
            details={"export_command": rebuild},
        )
    if meta is None:
        raise ModelError(
            f"{meta_path} is missing or unreadable, so {onnx_path} cannot be checked; re-export it: `{rebuild}`.",
            details={"export_command": rebuild},
        )
    actual = file_sha256(onnx_path)
    if actual != meta.get("onnx_sha256"):
        raise ModelError(
            f"{onnx_path} does not match its metadata (SHA-256 {actual[:12]}, {INT8_META} says "
            f"{str(meta.get('onnx_sha256'))[:12]}): the file was edited or replaced after export. "
            f"Refusing to run it; rebuild it with `{rebuild}`.",
            details={"export_command": rebuild},
        )
    if file_sha256(program, params) != meta.get("source_sha256"):
        raise ModelError(
            f"{onnx_path} was quantized from an older export: {program.name}/{params.name} changed since. "
            f"Refusing to run a stale int8 model; rebuild it with `{rebuild}`.",
            details={"export_command": rebuild},
        )
    return onnx_path


def log_int8_hint(model_dir: Path, precision: str, use_hpip: bool) -> None:
    """When the folder has an int8 model that this predictor does not use, say how to use it."""
    meta = read_int8_meta(model_dir)
    if meta is None or precision == "int8" or not (Path(model_dir) / INT8_ONNX).is_file():
        return
    accuracy = meta.get("accuracy") or {}
    fp32, int8 = (accuracy.get(k) or {} for k in ("fp32", "int8"))
    measured = (
        f" (recall@1 {int8['recall1']:.4f} vs {fp32['recall1']:.4f} in fp32, measured at export)"
        if isinstance(int8.get("recall1"), float) and isinstance(fp32.get("recall1"), float)
        else ""
    )
    how = (
        "hpi_config={'precision': 'int8'}"
        if use_hpip
        else "use_hpip=True with hpi_config={'precision': 'int8'}"
    )
    logger.info(
        f"{model_dir} also holds an int8 model{measured}; it is not used (precision {precision}). "
        f"On CPUs with VNNI/AMX it is usually faster; pass {how} (-o Predict.hpi_config.precision=int8)."
    )


def warn_if_no_int8_instructions() -> None:
    """int8 runs everywhere, but pays mostly on CPUs with VNNI/AMX: say so where they are missing."""
    flags = cpu_flags()
    if flags and not set(INT8_CPU_FLAGS) & flags:
        logger.warning(
            f"This CPU has none of {', '.join(INT8_CPU_FLAGS)}: the int8 model runs and stays correct, "
            "but it may not be faster than fp32 here."
        )
