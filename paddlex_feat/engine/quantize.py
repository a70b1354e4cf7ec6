"""Export.precision=int8: post-training static quantization of the exported model, its accuracy measured.

Why NNCF (not ONNX Runtime's ``quantize_static``): NNCF quantizes the ONNX model to a portable QDQ
file that ONNX Runtime and OpenVINO both run, and it places the quantizers the way OpenVINO's CPU
plugin fuses them into int8 kernels (OpenVINO is our fastest CPU backend), with per-channel weights
and a fast bias correction that ONNX Runtime's quantizer lacks. On PP-ShiTuV2_rec it kept a mean
cosine of 0.996 to the fp32 features with 200 calibration images.

The steps, read top to bottom:

1. ``check_int8_request`` (before the fp32 export): the libraries import, the calibration list or
   folder exists and lists images; ``Export.calibration_size`` of them are sampled across classes.
2. ``export_int8`` (after it): the fp32 ONNX (the same cached file ``use_hpip`` runs), the calibration
   images decoded with the folder's own ``inference.yml``, ``nncf.quantize``, then recall@1 and mAP of
   fp32 and int8 on the dataset's gallery/query lists, on the same runtime. When recall@1 drops by more
   than ``Export.max_recall_drop``, ``nncf.quantize_with_accuracy_control`` finds the layers whose int8
   costs the recall (ranked by feature error, reverted one group at a time until recall@1 is back
   within the limit), and it is quantized once more with those in fp32; past the limit, export fails
   unless ``Export.allow_accuracy_drop=True``. The layers are chosen on the same gallery/query lists
   the check reports, so the metadata says so (``accuracy.fp32_layers_chosen_on``).
3. ``inference.int8.onnx`` and ``inference.int8.json`` (hashes, calibration, accuracy) are written
   atomically beside the untouched fp32 files, so PaddleX still loads the folder.

Steps 2 and 3 run in a spawned child process (``utils.child.run_in_child``); its log comes back here.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.lists import ListEntry, format_problems, parse_list, read_list
from ..inference.backends.base import PIP_EXTRA, import_optional, is_installed, pip_command
from ..inference.backends.int8 import INT8_META, INT8_ONNX, export_command
from ..inference.backends.onnx_cache import file_sha256, onnx_model_path
from ..inference.spec import InferenceSpec, load_inference_spec
from ..metrics.retrieval import retrieval_metrics
from ..utils.arrays import l2_normalize
from ..utils.child import run_in_child
from ..utils.device import CPU, default_cpu_threads
from ..utils.errors import ConfigError, DatasetError, ModelError
from ..utils.image import IMAGE_EXTENSIONS, read_bgr
from ..utils.io import atomic_target, atomic_write_json
from ..utils.logger import logger

MIN_USEFUL_CALIBRATION = 32  # fewer images give noisy activation ranges (NNCF's own examples use 300)
CALIBRATION_BATCH = 25  # NNCF collects statistics per dataset item: batches are ~3x faster than single images
EVAL_CHUNK = 64  # gallery/query images decoded at a time (both models run on each chunk: memory stays flat)
ACCURACY_CONTROL_STEPS = 12  # groups of quantizers NNCF may revert to fp32, one validation each
RANKING_QUERIES = 100  # queries NNCF ranks the quantizer groups on (a gallery pass per group)
# QuantizeLinear takes a per-channel axis from opset 13; paddle2onnx writes 11, where NNCF falls back to
# one scale per weight tensor (on the demo model: recall@1 -4.9 points per-tensor)
PER_CHANNEL_OPSET = 13


@dataclass(frozen=True)
class CalibrationPlan:
    """The calibration images chosen before any work: where from, which, and how they were picked."""

    source: Path
    paths: list[Path]
    listed: int  # images the list or folder holds
    classes: int  # distinct labels (sub-folders for a folder) among them
    seed: int
    size: int  # Export.calibration_size


@dataclass
class Attempt:
    """One quantization: the layers left in fp32, the model written to a temp file, its accuracy."""

    fp32_layers: list[dict[str, str]]
    onnx_path: Path
    seconds: float  # NNCF's time for this try
    accuracy: dict[str, Any] = field(default_factory=dict)

    @property
    def drop(self) -> float:
        return float(self.accuracy.get("recall1_drop", 0.0))


# -- 1. before any work ----------------------------------------------------------------------


def check_int8_request(cfg: dict) -> CalibrationPlan:
    """The libraries are installed and the calibration set is usable; raises before any export work."""
    for module in ("nncf", "onnx", "paddle2onnx"):
        if not is_installed(module):
            raise ModelError(
                f"Export.precision=int8 needs the Python package {module!r}, which is not installed. "
                f"Install the high-performance extra with `{PIP_EXTRA}` (or `{pip_command()} nncf onnx`).",
                details={"missing_package": module, "pip_command": PIP_EXTRA},
            )
    if not (is_installed("openvino") or is_installed("onnxruntime")):
        raise ModelError(
            f"Export.precision=int8 checks the int8 model on OpenVINO or ONNX Runtime; neither is installed. "
            f"Install the high-performance extra with `{PIP_EXTRA}`.",
            details={"pip_command": PIP_EXTRA},
        )
    export = cfg["Export"]
    if export["calibration_size"] < 1:
        raise ConfigError(f"Export.calibration_size must be 1 or more; got {export['calibration_size']}.")
    if export["max_recall_drop"] < 0:
        raise ConfigError(
            f"Export.max_recall_drop must be 0 or more (e.g. 0.01); got {export['max_recall_drop']}."
        )
    return plan_calibration(
        export["calibration"], cfg["Global"]["dataset_dir"], export["calibration_size"], cfg["Global"]["seed"]
    )


def plan_calibration(calibration: str | None, dataset_dir: str, size: int, seed: int) -> CalibrationPlan:
    """Resolve ``Export.calibration`` (null: the training list) and sample ``size`` images across classes."""
    source = Path(calibration) if calibration else Path(dataset_dir) / "train.txt"
    key = (
        f"Export.calibration={calibration!r}"
        if calibration
        else f"the training list (Global.dataset_dir={dataset_dir!r})"
    )
    if not source.exists():
        raise DatasetError(
            f"Calibration set {source} ({key}) does not exist. Pass a list file ('images/xxx.jpg label' lines, "
            "paths relative to the list's folder) or a folder of images: -o Export.calibration=PATH."
        )
    paths, labels = _folder_images(source) if source.is_dir() else _list_images(source)
    if not paths:
        what = (
            f"holds no images ({', '.join(IMAGE_EXTENSIONS)})"
            if source.is_dir()
            else "is empty: it lists no images"
        )
        raise DatasetError(
            f"Calibration set {source} ({key}) {what}. Point Export.calibration at images to calibrate on."
        )
    chosen = sample_across_classes(labels, size, seed)
    return CalibrationPlan(source, [paths[i] for i in chosen], len(paths), len(set(labels)), seed, size)


def _list_images(list_path: Path) -> tuple[list[Path], list[Hashable]]:
    """Image paths (relative to the list's folder, as in a dataset) and labels of a list file."""
    entries, problems = parse_list(list_path)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DatasetError(f"Calibration list {list_path} has {format_problems(errors)}")
    return [list_path.parent / e.path for e in entries], [e.label for e in entries]


def _folder_images(folder: Path) -> tuple[list[Path], list[Hashable]]:
    """Every image under ``folder``, its sub-folder standing for its class."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(IMAGE_EXTENSIONS))
    return paths, [str(p.parent.relative_to(folder)) for p in paths]


def sample_across_classes(labels: Sequence[Hashable], size: int, seed: int) -> list[int]:
    """Indices of up to ``size`` items: one per class per round, classes and items in a seeded order."""
    rng = random.Random(seed)
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    pools = [rng.sample(idx, len(idx)) for _, idx in sorted(by_class.items(), key=lambda kv: str(kv[0]))]
    rng.shuffle(pools)
    picked: list[int] = []
    while len(picked) < size and any(pools):
        for pool in pools:
            if pool and len(picked) < size:
                picked.append(pool.pop())
    return sorted(picked)


# -- 2. quantize and check -------------------------------------------------------------------


def export_int8(
    cfg: dict, plan: CalibrationPlan, save_dir: Path, program: Path, params: Path, weight_path: str
) -> dict[str, Any]:
    """Quantize the exported folder, check it, write the int8 model and metadata; returns the summary.

    It runs in a spawned child process: NNCF and OpenVINO leave native state behind that, in a
    process that also holds Paddle, crashed it later (seen in the test suite), and the child gives
    back the gigabytes accuracy control holds.
    """
    return run_in_child(_quantize_and_check, cfg, plan, save_dir, program, params, weight_path)


def _quantize_and_check(
    cfg: dict, plan: CalibrationPlan, save_dir: Path, program: Path, params: Path, weight_path: str
) -> dict[str, Any]:
    """:func:`export_int8`'s work, in the child process."""
    save_dir = Path(save_dir)
    spec = load_inference_spec(save_dir)
    model_name = spec.model_name or cfg["Global"]["model"]  # the exported folder's own name
    fp32_onnx = onnx_model_path(save_dir, program, params)
    start = time.perf_counter()
    calib = load_calibration(plan, spec)
    decode_s = time.perf_counter() - start
    check = AccuracyCheck(cfg, spec, fp32_onnx, calib)
    attempts: list[Attempt] = []
    try:
        best = quantize_until_accurate(
            fp32_onnx, calib, check, cfg["Export"]["max_recall_drop"], save_dir, attempts
        )
        gate(best, cfg["Export"], len(attempts))
        calib_s = decode_s + sum(a.seconds for a in attempts)
        meta = _metadata(cfg, model_name, plan, calib, best, program, params, weight_path, calib_s)
        _install(best.onnx_path, save_dir / INT8_ONNX)
        meta["onnx_sha256"] = file_sha256(save_dir / INT8_ONNX)  # the hash of the file as it lies there
        atomic_write_json(save_dir / INT8_META, meta)
    finally:
        for attempt in attempts:
            attempt.onnx_path.unlink(missing_ok=True)
    _log_summary(model_name, save_dir, meta)
    return {
        "int8_model": str(save_dir / INT8_ONNX),
        "int8_meta": str(save_dir / INT8_META),
        **{k: meta[k] for k in ("onnx_sha256", "calibration", "fp32_layers", "accuracy")},
    }


def quantize_until_accurate(
    fp32_onnx: Path, calib: np.ndarray, check: AccuracyCheck, max_drop: float, save_dir: Path, attempts: list
) -> Attempt:
    """Quantize everything; past ``max_drop``, again under NNCF's accuracy control; the better one.

    ``attempts`` collects every try (its temp file is the caller's to remove).
    """
    attempt = _quantize_attempt(fp32_onnx, calib, save_dir, len(attempts))
    attempts.append(attempt)
    attempt.accuracy = check.measure(attempt.onnx_path)
    if attempt.drop > max_drop and attempt.accuracy["checked"]:
        logger.warning(
            f"int8 recall@1 dropped by {attempt.drop:.4f} (> Export.max_recall_drop={max_drop}) with every "
            "layer quantized; finding the layers that cost it (NNCF accuracy control) to keep them in fp32"
        )
        retry = quantize_with_accuracy_control(fp32_onnx, calib, check, max_drop, save_dir, len(attempts))
        attempts.append(retry)
        retry.accuracy = check.measure(retry.onnx_path)
        # the check is not independent of the choice: say so where the figures are
        retry.accuracy["fp32_layers_chosen_on"] = "the same gallery/query lists (NNCF accuracy control)"
    best = min(attempts, key=lambda a: a.drop)  # ties: the first, fully quantized (fastest) one
    passed = best.drop <= max_drop or not best.accuracy["checked"]
    best.accuracy.update(max_recall_drop=max_drop, passed=passed)
    return best


def gate(best: Attempt, export: dict, tries: int) -> None:
    """Fail export when int8 costs more recall than allowed, unless ``Export.allow_accuracy_drop``."""
    if best.accuracy["passed"]:
        return
    if not export["allow_accuracy_drop"]:
        raise ModelError(
            f"int8 quantization costs too much accuracy: recall@1 {best.accuracy['int8']['recall1']:.4f} vs "
            f"{best.accuracy['fp32']['recall1']:.4f} in fp32 (drop {best.drop:.4f} > Export.max_recall_drop="
            f"{export['max_recall_drop']}); best of {tries} tries, with "
            f"{_names(best.fp32_layers) or 'every layer quantized'} in fp32. "
            "No int8 model was written; the fp32 export is complete. Calibrate on more or more typical images "
            "(Export.calibration, Export.calibration_size), or accept the loss with "
            "-o Export.allow_accuracy_drop=True.",
            details={"accuracy": best.accuracy, "fp32_layers": best.fp32_layers},
        )
    logger.warning(
        f"Writing the int8 model anyway (Export.allow_accuracy_drop=True): recall@1 drop {best.drop:.4f}"
    )


def load_calibration(plan: CalibrationPlan, spec: InferenceSpec) -> np.ndarray:
    """The sampled images pre-processed as the predictor does; all unreadable is an error, few a warning."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda p: _prepare(p, spec), plan.paths))
    arrays = [a for a, _ in results if a is not None]
    failed = [f"{p}: {why}" for p, (a, why) in zip(plan.paths, results) if a is None]
    if not arrays:
        raise DatasetError(
            f"None of the {len(plan.paths)} calibration images from {plan.source} could be read; e.g.\n  "
            + "\n  ".join(failed[:5])
            + "\nFix the list or point Export.calibration at readable images."
        )
    if failed:
        logger.warning(
            f"{len(failed)} calibration image(s) could not be read and were left out; e.g. {failed[0]}"
        )
    if len(arrays) < MIN_USEFUL_CALIBRATION:
        logger.warning(
            f"Only {len(arrays)} calibration image(s) (fewer than {MIN_USEFUL_CALIBRATION}): the activation "
            "ranges may be noisy and int8 less accurate. Use Export.calibration_size=300 on a larger list."
        )
    return np.stack(arrays)


def _prepare(path: Path, spec: InferenceSpec) -> tuple[np.ndarray | None, str | None]:
    """One image as the model's input, or why it could not be read."""
    bgr, why = read_bgr(path)
    if bgr is None:
        return None, why
    return spec.preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), None


def quantize_with_accuracy_control(
    fp32_onnx: Path, calib: np.ndarray, check: AccuracyCheck, max_drop: float, save_dir: Path, n: int
) -> Attempt:
    """``nncf.quantize_with_accuracy_control``: the layers whose int8 costs recall@1 are left in fp32.

    NNCF quantizes the model as ``quantize_onnx`` does, ranks each group of quantizers by how much
    recall@1 comes back on up to ``RANKING_QUERIES`` of the queries NNCF picks (those int8 changed
    most) when the group is reverted, then reverts the worst group, one per step, until recall@1 on
    all the gallery/query lists (``AccuracyCheck.validation_fn``) is within ``max_drop`` or
    ``ACCURACY_CONTROL_STEPS`` steps are spent. Its result is the artefact; which operations it left
    in fp32 is read from the graph (quantized before, not after) and the step from NNCF's log.
    """
    onnx = import_optional("onnx", "Export.precision=int8")
    nncf = import_optional("nncf", "Export.precision=int8")
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    model = with_opset(onnx.load(str(fp32_onnx)), PER_CHANNEL_OPSET)
    name = model.graph.input[0].name
    batches = [calib[i : i + CALIBRATION_BATCH] for i in range(0, len(calib), CALIBRATION_BATCH)]
    queries = len(check.query)
    logger.info(
        f"Quantizing {fp32_onnx.name} to int8 with NNCF accuracy control on {len(calib)} calibration images "
        f"and {queries} queries x {len(check.gallery)} gallery images"
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, _reverted_steps() as steps:
        restored = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(batches, lambda batch: {name: batch}),
            nncf.Dataset(list(range(queries))),  # query indices: the validation function reads them
            check.validation_fn(),
            max_drop=max_drop,
            subset_size=len(batches),  # NNCF counts dataset items: use every batch
            model_type=_model_type(model),
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=ACCURACY_CONTROL_STEPS,
                ranking_subset_size=min(RANKING_QUERIES, queries),
                intermediate_model_dir=tmp,  # NNCF saves the fully quantized model there: what was quantized
            ),
        )
        quantized = _quantized_ops(onnx.load(str(Path(tmp) / "intermediate_model.onnx")))
    reverted = quantized - _quantized_ops(restored)
    behind = _layers_behind(model)
    order = {layer: step for step, group in enumerate(steps, 1) for op in group for layer in behind(op)}
    op_types = {node.name: node.op_type for node in model.graph.node}
    keep = [
        {
            "node": op,
            "op": op_types.get(op, "?"),
            "why": f"its int8 cost recall@1 (NNCF accuracy control, step {order[op]})"
            if op in order
            else "reads a tensor whose quantizer NNCF accuracy control removed for another layer",
        }
        for op in sorted(reverted, key=lambda op: (order.get(op, 0), op))
    ]
    target = save_dir / f".{INT8_ONNX}.attempt{n}.{os.getpid()}"
    with atomic_target(target) as tmp_file:
        onnx.save(restored, str(tmp_file))
    seconds = time.perf_counter() - start
    logger.info(
        f"NNCF accuracy control in {seconds:.0f} s: {len(keep)} of {len(quantized)} quantized operations "
        f"left in fp32: {', '.join(k['node'] for k in keep) or 'none'}"
    )
    return Attempt(keep, target, seconds)


def _quantized_ops(model: Any) -> set[str]:
    """Names of the layers of a QDQ ONNX model that read an input through a DequantizeLinear."""
    behind = _layers_behind(model)
    dequantized = {
        out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output
    }
    return {
        name
        for node in model.graph.node
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") and dequantized.intersection(node.input)
        for name in behind(node.name)
    }


def _layers_behind(model: Any) -> Callable[[str], list[str]]:
    """node name -> the layers it stands for: itself, or for an Identity (paddle2onnx puts them in front
    of some layers, and NNCF names them) the layers reading its output."""
    nodes = {node.name: node for node in model.graph.node}
    readers: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            readers[name].append(node.name)

    def behind(name: str) -> list[str]:
        node = nodes.get(name)
        if node is None or node.op_type != "Identity":
            return [name]
        return [layer for out in node.output for reader in readers[out] for layer in behind(reader)]

    return behind


@contextlib.contextmanager
def _reverted_steps() -> Iterator[list[list[str]]]:
    """The operation names of each "Reverted N operations" step NNCF logs, in order (for the metadata's why)."""
    steps: list[list[str]] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if text.startswith("Reverted ") and ":" in text:
                steps.append([line.strip() for line in text.split(":", 1)[1].splitlines() if line.strip()])

    handler = Catch(logging.INFO)
    nncf_log = logging.getLogger("nncf")
    nncf_log.addHandler(handler)
    try:
        yield steps
    finally:
        nncf_log.removeHandler(handler)


def _names(layers: Sequence[dict[str, str]]) -> str:
    return ", ".join(f"{k['node']} ({k['why']})" for k in layers)


def _quantize_attempt(fp32_onnx: Path, calib: np.ndarray, save_dir: Path, n: int) -> Attempt:
    """Run NNCF once on every layer and write the QDQ model to a hidden temp file in ``save_dir``."""
    onnx = import_optional("onnx", "Export.precision=int8")
    logger.info(f"Quantizing {fp32_onnx.name} to int8 with NNCF on {len(calib)} calibration images")
    start = time.perf_counter()
    quantized = quantize_onnx(with_opset(onnx.load(str(fp32_onnx)), PER_CHANNEL_OPSET), calib)
    target = save_dir / f".{INT8_ONNX}.attempt{n}.{os.getpid()}"
    with atomic_target(target) as tmp:
        onnx.save(quantized, str(tmp))
    return Attempt([], target, time.perf_counter() - start)


def with_opset(model: Any, opset: int) -> Any:
    """``model`` converted to at least ``opset`` of the default ONNX domain (unchanged when newer)."""
    import_optional("onnx", "Export.precision=int8")
    current = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), opset)
    if current >= opset:
        return model
    from onnx import version_converter

    return version_converter.convert_version(model, opset)


def quantize_onnx(model: Any, calib: np.ndarray, keep_fp32: Sequence[str] = ()) -> Any:
    """NNCF post-training static quantization of an ONNX model: QDQ out, ``keep_fp32`` nodes untouched."""
    nncf = import_optional("nncf", "Export.precision=int8")
    name = model.graph.input[0].name
    batches = [calib[i : i + CALIBRATION_BATCH] for i in range(0, len(calib), CALIBRATION_BATCH)]
    return nncf.quantize(
        model,
        nncf.Dataset(batches, lambda batch: {name: batch}),
        subset_size=len(batches),  # NNCF counts dataset items: use every batch
        model_type=_model_type(model),
        ignored_scope=nncf.IgnoredScope(names=list(keep_fp32)) if keep_fp32 else None,
    )


def _model_type(model: Any) -> Any:
    """NNCF's transformer scheme (no quantized Softmax/LayerNorm inputs) for the CLIP models, else None."""
    nncf = import_optional("nncf", "Export.precision=int8")
    return nncf.ModelType.TRANSFORMER if any(n.op_type == "Softmax" for n in model.graph.node) else None


def _install(tmp_path: Path, final: Path) -> None:
    """Move the accepted temp model into place (same folder: an atomic rename)."""
    with open(tmp_path, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, final)


# -- the accuracy check ----------------------------------------------------------------------


def make_runner(onnx_path: Path, precision: str, threads: int) -> Any:
    """The backend ``use_hpip`` would pick on the CPU for this file: OpenVINO, else ONNX Runtime."""
    if is_installed("openvino"):
        from ..inference.backends.openvino_runner import OpenVINORunner

        return OpenVINORunner(onnx_path, precision, threads)
    from ..inference.backends.onnxruntime_runner import OnnxRuntimeRunner

    return OnnxRuntimeRunner(onnx_path, threads, CPU, precision)


class AccuracyCheck:
    """recall@1 and mAP of int8 against fp32 on gallery/query (when the dataset has them), and cosines.

    The fp32 features are computed once; each quantization attempt then costs one int8 pass.
    """

    def __init__(self, cfg: dict, spec: InferenceSpec, fp32_onnx: Path, calib: np.ndarray) -> None:
        self.threads = default_cpu_threads()
        self.spec, self.calib = spec, calib
        fp32 = make_runner(fp32_onnx, "fp32", self.threads)
        self.backend = fp32.backend
        self.calib_fp32 = _features(fp32, calib)
        self.root = cfg["Global"]["dataset_dir"]
        has_dir = os.path.isdir(self.root)
        self.query = read_list(self.root, "query", required=False) if has_dir else []
        self.gallery = read_list(self.root, "gallery", required=False) if has_dir else []
        self.checked = bool(self.query and self.gallery)
        if not self.checked:
            logger.warning(
                f"{self.root} has no query.txt/gallery.txt: recall of the int8 model is NOT checked, only the "
                "cosine to fp32 features on the calibration images."
            )
            return
        self.fp32 = {name: self._features(fp32, name) for name in ("query", "gallery")}
        self.fp32_metrics = self._metrics(self.fp32)

    def measure(self, int8_onnx: Path) -> dict[str, Any]:
        """The int8 model's accuracy next to fp32's, as recorded in the metadata and the export result."""
        int8 = make_runner(int8_onnx, "int8", self.threads)
        cos = _cosines(self.calib_fp32, _features(int8, self.calib))
        result: dict[str, Any] = {
            "backend": self.backend,
            "checked": self.checked,
            "calibration_cosine": {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5)},
        }
        if not self.checked:
            return {**result, "reason": f"no query/gallery lists in {self.root}"}
        feats = {name: self._features(int8, name) for name in ("query", "gallery")}
        metrics = self._metrics(feats)
        qcos = _cosines(self.fp32["query"], feats["query"])
        return {
            **result,
            "dataset_dir": str(self.root),
            "queries": len(self.query),
            "gallery": len(self.gallery),
            "fp32": self.fp32_metrics,
            "int8": metrics,
            "recall1_drop": round(self.fp32_metrics["recall1"] - metrics["recall1"], 5),
            "mAP_drop": round(self.fp32_metrics["mAP"] - metrics["mAP"], 5),
            "query_cosine": {"mean": round(float(qcos.mean()), 5), "min": round(float(qcos.min()), 5)},
        }

    def validation_fn(self) -> Callable[[Any, Iterable[Any]], tuple[float, list[float]]]:
        """NNCF's validation function: recall@1 of the given query indices, and each one's hit (1 or 0).

        The query and gallery images are decoded once and held in memory while NNCF runs (it validates
        dozens of models); each model's features are computed once, for the queries asked about.
        """
        images = {name: np.concatenate(list(_list_arrays(entries, self.root, self.spec, name)))
                  for name, entries in (("query", self.query), ("gallery", self.gallery))}  # fmt: skip
        q_labels = np.array([str(e.label) for e in self.query])
        g_labels = np.array([str(e.label) for e in self.gallery])
        same_id = np.array([[q.uid is not None and q.uid == g.uid for g in self.gallery] for q in self.query])
        current: dict[str, Any] = {}  # the model last asked about (kept referenced: ``is`` stays valid)

        def validate(model: Any, items: Iterable[Any]) -> tuple[float, list[float]]:
            if current.get("model") is not model:
                runner = _ProtoRunner(model, self.threads)
                current.update(
                    model=model, runner=runner, gallery=_features(runner, images["gallery"]), query={}
                )
            idx = [int(i) for i in items]
            todo = [i for i in idx if i not in current["query"]]
            if todo:
                feats = _features(current["runner"], images["query"][todo])
                current["query"].update(zip(todo, feats))
            sims = np.stack([current["query"][i] for i in idx]) @ current["gallery"].T
            sims[same_id[idx]] = -np.inf  # a query never matches itself (the lists' id column)
            hits = (g_labels[sims.argmax(axis=1)] == q_labels[idx]).astype(float)
            return float(hits.mean()), hits.tolist()

        return validate

    def _features(self, runner: Any, list_name: str) -> np.ndarray:
        entries = self.query if list_name == "query" else self.gallery
        return np.concatenate(list(_list_features(runner, entries, self.root, self.spec, list_name)))

    def _metrics(self, feats: dict[str, np.ndarray]) -> dict[str, float]:
        m = retrieval_metrics(
            feats["query"],
            feats["gallery"],
            [e.label for e in self.query],
            [e.label for e in self.gallery],
            topk=[1],
            query_ids=[e.uid for e in self.query],
            gallery_ids=[e.uid for e in self.gallery],
            normalize=False,
        ).metrics
        return {"recall1": round(m["recall1"], 5), "mAP": round(m["mAP"], 5)}


def _list_arrays(
    entries: Sequence[ListEntry], root: str, spec: InferenceSpec, list_name: str
) -> Iterator[np.ndarray]:
    """``entries`` as model inputs, a chunk at a time; an unreadable image is an error naming its line."""
    for start in range(0, len(entries), EVAL_CHUNK):
        arrays = []
        for e in entries[start : start + EVAL_CHUNK]:
            array, why = _prepare(Path(root) / e.path, spec)
            if array is None:
                raise DatasetError(
                    f"{Path(root) / f'{list_name}.txt'}:{e.lineno}: {e.path} {why}; the int8 accuracy check needs "
                    "every query/gallery image. Fix it (see -o Global.mode=check_dataset)."
                )
            arrays.append(array)
        yield np.stack(arrays)


def _list_features(
    runner: Any, entries: Sequence[ListEntry], root: str, spec: InferenceSpec, list_name: str
) -> Iterator[np.ndarray]:
    """L2-normalised features of ``entries``, a chunk at a time (memory stays flat on large lists)."""
    for batch in _list_arrays(entries, root, spec, list_name):
        yield _features(runner, batch)


class _ProtoRunner:
    """A runner (``run(batch)``) for the in-memory ONNX models NNCF validates: the check's runtime, fp32 math."""

    def __init__(self, model: Any, threads: int) -> None:
        if is_installed("openvino"):
            import openvino as ov

            core = ov.Core()
            compiled = core.compile_model(
                core.read_model(model.SerializeToString()),
                "CPU",
                {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"},
            )
            self._run = lambda batch: compiled(batch)[0]
        else:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            feed = session.get_inputs()[0].name
            self._run = lambda batch: session.run(None, {feed: batch})[0]

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._run(batch))


def _features(runner: Any, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """Unit-length features of ``images`` in batches."""
    return l2_normalize(
        np.concatenate([runner.run(images[i : i + batch]) for i in range(0, len(images), batch)])
    )


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (l2_normalize(a) * l2_normalize(b)).sum(axis=1)


# -- 3. metadata -----------------------------------------------------------------------------


def _metadata(
    cfg: dict,
    model_name: str,
    plan: CalibrationPlan,
    calib: np.ndarray,
    best: Attempt,
    program: Path,
    params: Path,
    weight_path: str,
    calib_s: float,
) -> dict[str, Any]:
    """What ``inference.int8.json`` records (``onnx_sha256`` is added once the file is in place)."""
    from importlib.metadata import version

    return {
        "format": 1,
        "model_name": model_name,
        "onnx": INT8_ONNX,
        "source_program": program.name,
        "source_sha256": file_sha256(program, params),
        "quantizer": f"nncf {version('nncf')}, post-training static, QDQ ONNX (per-channel int8 weights)",
        "calibration": {
            "source": str(plan.source),
            "images": int(len(calib)),
            "unreadable": len(plan.paths) - int(len(calib)),
            "requested": plan.size,
            "listed": plan.listed,
            "classes": plan.classes,
            "seed": plan.seed,
            "seconds": round(calib_s, 1),
        },
        "fp32_layers": best.fp32_layers,
        "accuracy": best.accuracy,
        "export_command": export_command(model_name, weight_path)
        + (f" -o Export.save_dir={cfg['Export']['save_dir']}" if cfg["Export"].get("save_dir") else ""),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _log_summary(model_name: str, save_dir: Path, meta: dict[str, Any]) -> None:
    """One log line a user can act on: what was written and how good it is."""
    acc = meta["accuracy"]
    if acc.get("checked"):
        quality = (
            f"recall@1 {acc['int8']['recall1']:.4f} (fp32 {acc['fp32']['recall1']:.4f}), "
            f"mAP {acc['int8']['mAP']:.4f} (fp32 {acc['fp32']['mAP']:.4f}) on {acc['queries']} queries"
        )
    else:
        quality = f"recall not checked; feature cosine to fp32 {acc['calibration_cosine']['mean']:.4f}"
    kept = _names(meta["fp32_layers"]) or "none"
    logger.info(
        f"Wrote the int8 {model_name} to {save_dir / INT8_ONNX}: {quality}; layers kept in fp32: {kept}; "
        f"calibrated on {meta['calibration']['images']} images in {meta['calibration']['seconds']} s. "
        "Run it with -o Predict.use_hpip=True -o Predict.hpi_config.precision=int8."
    )
