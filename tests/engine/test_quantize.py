"""Export.precision=int8: calibration set, NNCF quantization, the accuracy check, metadata and bad input.

A small conv net (exported like the real models, at 32x32) on a synthetic 8-class dataset keeps these
tests to seconds; the real PP-ShiTuV2_rec runs through the same code in bench/model_table.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
from test_export import run_export  # the one export command line of the tests

from paddlex_feat.cli import main
from paddlex_feat.config.loader import load_config
from paddlex_feat.engine import quantize
from paddlex_feat.engine.export import export_inference
from paddlex_feat.inference.backends.int8 import INT8_META, INT8_ONNX
from paddlex_feat.inference.backends.onnx_cache import file_sha256
from paddlex_feat.models import build_model
from paddlex_feat.utils.errors import DatasetError, ModelError
from paddlex_feat.utils.logger import logger

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
SIZE = 32
CLASSES, PER_CLASS = 8, 6


class SmallNet(paddle.nn.Layer):
    """conv-bn-relu, conv-relu, pooling, linear to 512: the layer kinds of the real models, small."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(3, 16, 3, stride=2, padding=1)
        self.bn = paddle.nn.BatchNorm2D(16)
        self.conv2 = paddle.nn.Conv2D(16, 32, 3, stride=2, padding=1)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(32, 512)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.nn.functional.relu(self.bn(self.conv1(x)))
        x = paddle.nn.functional.relu(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


def class_image(label: int, i: int) -> np.ndarray:
    """An image of class ``label``: the class's colour pattern plus per-image noise."""
    base = np.random.default_rng(label).integers(0, 256, (4, 4, 3)).astype(np.float32)
    noise = np.random.default_rng(1000 * label + i).normal(0, 12, (4, 4, 3))
    return cv2.resize(
        np.clip(base + noise, 0, 255).astype(np.uint8), (40, 40), interpolation=cv2.INTER_LINEAR
    )


def make_dataset(root: Path) -> Path:
    """A ShiTuRecDataset: train lists every image, gallery/query split each class's images."""
    (root / "images").mkdir(parents=True)
    lines: dict[str, list[str]] = {"train": [], "gallery": [], "query": []}
    for label in range(CLASSES):
        for i in range(PER_CLASS):
            rel = f"images/c{label}_{i}.png"
            assert cv2.imwrite(str(root / rel), class_image(label, i))
            lines["train"].append(f"{rel} {label}")
            lines["gallery" if i % 2 else "query"].append(f"{rel} {label}")
    for name, rows in lines.items():
        (root / f"{name}.txt").write_text("\n".join(rows) + "\n")
    return root


def int8_cfg(dataset: Path, *overrides: str) -> dict:
    """The shipped config with the dataset and int8 export overrides applied."""
    return load_config(
        CONFIG, [f"Global.dataset_dir={dataset}", "Export.precision=int8", "Global.seed=3", *overrides]
    )


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("int8_data"))


def export_small(folder: Path) -> tuple[Path, Path]:
    """Export SmallNet like a real model; returns (program, params)."""
    paddle.seed(5)
    net = SmallNet()
    net.eval()
    files = export_inference(net, "PP-ShiTuV2_rec", folder, input_size=SIZE)
    return Path(files["pdmodel"]), Path(files["pdiparams"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> tuple[Path, dict, dict, list]:
    """One int8 export (the slow part, once): folder, export summary, fp32 file hashes before quantizing,
    and the log records it sent."""
    folder = tmp_path_factory.mktemp("int8_model")
    program, params = export_small(folder)
    before = {p.name: file_sha256(p) for p in (program, params, folder / "inference.yml")}
    cfg = int8_cfg(dataset)
    plan = quantize.check_int8_request(cfg)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        summary = quantize.export_int8(cfg, plan, folder, program, params, "w.pdparams")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return folder, summary, before, records


@pytest.fixture
def toolkit_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield lambda: "\n".join(r.getMessage() for r in caplog.records)
    logger.removeHandler(caplog.handler)


# -- the artefact and its metadata -----------------------------------------------------------


def test_int8_model_is_written_beside_untouched_fp32_files(exported) -> None:
    folder, summary, before, _ = exported
    assert {p: file_sha256(folder / p) for p in before} == before  # PaddleX still loads the fp32 folder
    meta = json.loads((folder / INT8_META).read_text())
    assert meta["onnx_sha256"] == file_sha256(folder / INT8_ONNX) == summary["onnx_sha256"]
    assert meta["source_sha256"] == file_sha256(folder / "inference.json", folder / "inference.pdiparams")
    assert "Export.precision=int8" in meta["export_command"] and "w.pdparams" in meta["export_command"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no attempt file left behind


def test_nncf_runs_in_a_child_process_whose_log_reaches_ours(exported) -> None:
    # NNCF and OpenVINO left native state behind that crashed a process holding Paddle (the suite, once)
    quantizing = [r for r in exported[3] if "with NNCF on" in r.getMessage()]
    assert quantizing and all(r.process != os.getpid() for r in quantizing)


def test_int8_model_is_a_qdq_onnx_with_int8_weights(exported) -> None:
    import onnx

    model = onnx.load(str(exported[0] / INT8_ONNX))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    assert opset >= quantize.PER_CHANNEL_OPSET  # per-channel weight scales need opset 13


def test_accuracy_is_measured_for_fp32_and_int8(exported) -> None:
    acc = exported[1]["accuracy"]
    assert acc["checked"] and acc["passed"] and acc["queries"] == CLASSES * PER_CLASS // 2
    for precision in ("fp32", "int8"):
        assert 0.0 <= acc[precision]["recall1"] <= 1.0 and 0.0 <= acc[precision]["mAP"] <= 1.0
    assert acc["recall1_drop"] == pytest.approx(acc["fp32"]["recall1"] - acc["int8"]["recall1"], abs=1e-4)
    assert acc["recall1_drop"] <= 0.01 and acc["query_cosine"]["mean"] > 0.99


def test_calibration_is_described(exported) -> None:
    calib = exported[1]["calibration"]
    assert calib["images"] == CLASSES * PER_CLASS and calib["classes"] == CLASSES and calib["seed"] == 3
    assert calib["source"].endswith("train.txt") and calib["unreadable"] == 0 and calib["seconds"] > 0


def test_export_mode_with_int8_reports_it_in_the_result(tmp_path: Path, dataset: Path) -> None:
    paddle.seed(2)
    weights = tmp_path / "best_model.pdparams"
    paddle.save(build_model("PP-ShiTuV2_rec", 7).state_dict(), str(weights))
    rc, result = run_export(
        tmp_path,
        f"Export.weight_path={weights}",
        "Export.input_size=32",
        "Export.precision=int8",
        f"Global.dataset_dir={dataset}",
        "Export.calibration_size=40",
    )
    assert rc == 0
    assert result["done_flag"] and Path(result["int8"]["int8_model"]).is_file()
    assert result["int8"]["accuracy"]["checked"] and result["int8"]["calibration"]["images"] == 40


# -- the calibration set ---------------------------------------------------------------------


def test_sampling_spreads_over_classes_and_is_seeded() -> None:
    labels = [i // 10 for i in range(100)]  # 10 classes of 10
    picked = quantize.sample_across_classes(labels, 20, seed=1)
    counts = np.bincount([labels[i] for i in picked], minlength=10)
    assert len(picked) == 20 and (counts == 2).all()
    assert picked == quantize.sample_across_classes(labels, 20, seed=1)
    assert picked != quantize.sample_across_classes(labels, 20, seed=2)
    assert len(quantize.sample_across_classes(labels, 500, seed=1)) == 100


def test_folder_calibration_uses_subfolders_as_classes(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / cls / f"{i}.jpg"), class_image(i, 0))
    plan = quantize.plan_calibration(str(tmp_path), "unused", 4, seed=0)
    assert plan.listed == 6 and plan.classes == 2 and len(plan.paths) == 4
    assert {p.parent.name for p in plan.paths} == {"a", "b"}


def test_missing_calibration_list_is_an_error_before_any_work(dataset: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.txt.*does not exist.*Export\.calibration="):
        quantize.check_int8_request(int8_cfg(dataset, f"Export.calibration={dataset / 'nope.txt'}"))


def test_empty_calibration_list_is_an_error(dataset: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match="empty: it lists no images"):
        quantize.check_int8_request(int8_cfg(dataset, f"Export.calibration={empty}"))


def test_calibration_images_that_all_fail_to_read_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "list.txt").write_text("images/a.jpg 0\nimages/gone.jpg 1\n")
    plan = quantize.plan_calibration(str(tmp_path / "list.txt"), "unused", 10, seed=0)
    spec = quantize.load_inference_spec(export_dir(tmp_path / "m"))
    with pytest.raises(DatasetError, match=r"(?s)None of the 2 calibration images.*gone\.jpg: not found"):
        quantize.load_calibration(plan, spec)


def export_dir(folder: Path) -> Path:
    export_small(folder)
    return folder


def test_few_calibration_images_warn_with_the_count(dataset: Path, tmp_path: Path, toolkit_log) -> None:
    plan = quantize.plan_calibration(str(dataset / "train.txt"), "unused", 5, seed=0)
    calib = quantize.load_calibration(plan, quantize.load_inference_spec(export_dir(tmp_path)))
    assert calib.shape == (5, 3, SIZE, SIZE)
    assert "Only 5 calibration image(s)" in toolkit_log()


def test_cli_missing_calibration_fails_with_done_flag_false(tmp_path: Path, dataset: Path) -> None:
    weights = tmp_path / "w.pdparams"
    paddle.save(build_model("PP-ShiTuV2_rec", 3).state_dict(), str(weights))
    out = tmp_path / "out"
    args = ["-c", str(CONFIG), "-o", "Global.mode=export", "-o", f"Global.output={out}"]
    for o in (
        f"Export.weight_path={weights}",
        "Export.precision=int8",
        f"Export.calibration={tmp_path / 'x.txt'}",
    ):
        args += ["-o", o]
    assert main(args) == 1
    result = json.loads((out / "export_result.json").read_text())
    assert result["done_flag"] is False and "x.txt" in result["err_msg"]
    assert not (out / "inference.json").exists()  # refused before the fp32 export, too


def test_missing_quantization_library_gives_the_pip_command(dataset: Path, monkeypatch) -> None:
    real = quantize.is_installed
    monkeypatch.setattr(quantize, "is_installed", lambda m: m != "nncf" and real(m))
    with pytest.raises(ModelError, match=r"'nncf'.*pip install -e \"\.\[hpi\]\""):
        quantize.check_int8_request(int8_cfg(dataset))


# -- the accuracy gate -----------------------------------------------------------------------


def fake_drop(*drops: float) -> Callable:
    """A measure() reporting ``drops`` in turn (the real one is tested above): exercises the decision alone."""
    todo = list(drops)

    def measure(self, int8_onnx: Path) -> dict:
        drop = todo.pop(0)
        return {
            "checked": True,
            "fp32": {"recall1": 0.9, "mAP": 0.8},
            "int8": {"recall1": 0.9 - drop, "mAP": 0.7},
            "recall1_drop": drop,
            "calibration_cosine": {"mean": 0.9, "min": 0.8},
            "queries": 1,
        }

    return measure


def copied_attempt(fp32_onnx: Path, calib: np.ndarray, save_dir: Path, n: int) -> quantize.Attempt:
    """A _quantize_attempt without NNCF: the fp32 model copied to the attempt's temp file (the real one is
    tested above, in the child process export_int8 starts): exercises the decision alone."""
    target = save_dir / f".attempt{n}"
    shutil.copyfile(fp32_onnx, target)
    return quantize.Attempt([], target, 0.0)


def kept_in_fp32(kept: list[dict]) -> Callable:
    """A quantize_with_accuracy_control that says ``kept`` stayed fp32 (the real one is tested below)."""

    def fake(fp32_onnx: Path, calib: np.ndarray, check, max_drop: float, save_dir: Path, n: int):
        attempt = copied_attempt(fp32_onnx, calib, save_dir, n)
        attempt.fp32_layers = kept
        return attempt

    return fake


def fake_quantizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decision tests run ``_quantize_and_check`` here, in this process (patches do not reach the
    child ``export_int8`` starts), with the quantizer and the measure faked."""
    monkeypatch.setattr(quantize.AccuracyCheck, "measure", fake_drop(0.06, 0.05))
    monkeypatch.setattr(quantize, "_quantize_attempt", copied_attempt)
    monkeypatch.setattr(quantize, "quantize_with_accuracy_control", kept_in_fp32(KEPT))


KEPT = [{"node": "Conv.1", "op": "Conv", "why": "its int8 cost recall@1 (NNCF accuracy control, step 1)"}]


def test_recall_drop_past_the_limit_fails_after_keeping_layers_in_fp32(
    tmp_path: Path, dataset: Path, monkeypatch, toolkit_log
) -> None:
    program, params = export_small(tmp_path)
    fake_quantizer(monkeypatch)
    cfg = int8_cfg(dataset, "Export.calibration_size=16")
    with pytest.raises(
        ModelError,
        match=r"drop 0\.0500 > Export\.max_recall_drop=0\.01.*Conv\.1 \(its int8 cost.*allow_accuracy_drop",
    ) as err:
        quantize._quantize_and_check(cfg, quantize.check_int8_request(cfg), tmp_path, program, params, "w")
    assert "finding the layers that cost it" in toolkit_log()
    assert err.value.details["accuracy"]["passed"] is False and err.value.details["fp32_layers"] == KEPT
    assert not (tmp_path / INT8_ONNX).exists() and not [
        p for p in tmp_path.iterdir() if p.name.startswith(".")
    ]


def test_allow_accuracy_drop_writes_it_and_names_the_fp32_layers(
    tmp_path: Path, dataset: Path, monkeypatch
) -> None:
    program, params = export_small(tmp_path)
    fake_quantizer(monkeypatch)
    cfg = int8_cfg(dataset, "Export.calibration_size=16", "Export.allow_accuracy_drop=True")
    summary = quantize._quantize_and_check(
        cfg, quantize.check_int8_request(cfg), tmp_path, program, params, "w"
    )
    assert summary["accuracy"]["passed"] is False and (tmp_path / INT8_ONNX).is_file()
    assert summary["fp32_layers"] == KEPT


# -- accuracy control: the layers int8 hurts are found and kept in fp32 -----------------------


class OutlierNet(SmallNet):
    """SmallNet with a constant 1000 channel into conv2 that conv2 ignores: fp32 features as before,
    but conv2's per-tensor int8 input scale (1000/255) rounds every real activation to 0."""

    def __init__(self) -> None:
        super().__init__()
        with paddle.no_grad():
            self.conv1.weight[0] = 0.0
            self.conv1.bias[0] = 1000.0
            self.bn.weight[0], self.bn.bias[0] = 0.0, 1000.0  # the BN passes the constant on
            self.conv2.weight[:, 0] = 0.0


@pytest.fixture(scope="module")
def restored(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> tuple[Path, dict]:
    """An int8 export of OutlierNet (real NNCF accuracy control): folder and export summary."""
    folder = tmp_path_factory.mktemp("int8_outlier")
    paddle.seed(5)
    net = OutlierNet()
    net.eval()
    files = export_inference(net, "PP-ShiTuV2_rec", folder, input_size=SIZE)
    cfg = int8_cfg(dataset)
    plan = quantize.check_int8_request(cfg)
    summary = quantize.export_int8(
        cfg, plan, folder, Path(files["pdmodel"]), Path(files["pdiparams"]), "w.pdparams"
    )
    return folder, summary


def test_accuracy_control_keeps_the_costly_layer_in_fp32_and_passes(restored, toolkit_log) -> None:
    folder, summary = restored
    acc = summary["accuracy"]
    assert acc["passed"] and acc["recall1_drop"] <= 0.01
    kept = summary["fp32_layers"]
    assert kept and all("NNCF accuracy control" in k["why"] for k in kept)
    # a layer reading the constant-1000 channel (the BN after conv1, or conv2 behind the ReLU)
    assert {k["node"] for k in kept} & {"BatchNormalization.0", "Conv.1"}
    meta = json.loads((folder / INT8_META).read_text())
    assert meta["fp32_layers"] == kept


def test_the_fp32_layers_have_no_int8_inputs_in_the_artefact(restored) -> None:
    import onnx

    graph = onnx.load(str(restored[0] / INT8_ONNX)).graph
    made_by = {out: n.op_type for n in graph.node for out in n.output}
    for layer in restored[1]["fp32_layers"]:
        node = next(n for n in graph.node if n.name == layer["node"])
        assert all(made_by.get(i) != "DequantizeLinear" for i in node.input), layer
