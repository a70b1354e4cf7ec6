"""Global.mode=predict: one JSON per image, printed results, and clear config errors."""

from __future__ import annotations

import json
from pathlib import Path

import paddle
import pytest

from paddlex_feat.cli import main
from paddlex_feat.engine.export import export_inference

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
DEMO_IMAGES = ROOT / "dataset" / "demo" / "images"


class PoolNet(paddle.nn.Layer):
    """A stand-in feature network: one conv, pooling, a linear layer to 512."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 3, stride=2, padding=1)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(8, 512)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(self.pool(paddle.nn.functional.relu(self.conv(x))).flatten(1))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inference")
    paddle.seed(3)
    export_inference(PoolNet(), "PP-ShiTuV2_rec", folder, input_size=32)
    return folder


def run_predict(tmp_path: Path, model_dir: Path, *overrides: str) -> tuple[int, dict, Path]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)  # so that even a config error leaves its result file
    args = [
        "-c",
        str(CONFIG),
        "-o",
        "Global.mode=predict",
        "-o",
        f"Global.output={out}",
        "-o",
        "Global.device=cpu",
    ]
    args += ["-o", f"Predict.model_dir={model_dir}", "-o", "Predict.cpu_threads=1"]
    rc = main(args + sum((["-o", o] for o in overrides), []))
    return rc, json.loads((out / "predict_result.json").read_text()), out


def test_demo_images_give_one_json_per_image(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    rc, result, out = run_predict(tmp_path, model_dir, f"Predict.input={DEMO_IMAGES}", "Predict.batch_size=8")
    n_images = sum(1 for p in DEMO_IMAGES.rglob("*.jpg"))
    assert rc == 0 and result["done_flag"] is True and result["num_images"] == n_images
    saved = sorted(out.glob("*_res.json"))
    assert len(saved) == n_images  # google/x.jpg and twitter/x.jpg share stems, yet none is overwritten
    assert {json.loads(p.read_text())["input_path"] for p in saved} == {
        str(p) for p in DEMO_IMAGES.rglob("*.jpg")
    }
    assert capsys.readouterr().out.count('"res": {') == n_images


def test_skip_errors_from_the_config(tmp_path: Path, model_dir: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "good.jpg").write_bytes((DEMO_IMAGES / "google" / "1f600.jpg").read_bytes())
    (images / "bad.jpg").write_text("not a jpeg")
    rc, result, _ = run_predict(tmp_path, model_dir, f"Predict.input={images}", "Predict.skip_errors=True")
    assert rc == 0 and result["num_errors"] == 1
    assert [r["input_path"].endswith("bad.jpg") for r in result["results"] if "error" in r] == [True]


def test_unreadable_image_fails_naming_it(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "bad.jpg").write_text("not a jpeg")
    rc, result, _ = run_predict(tmp_path, model_dir, f"Predict.input={tmp_path / 'bad.jpg'}")
    assert rc == 1 and "bad.jpg" in result["err_msg"] and "Predict.skip_errors=True" in result["err_msg"]


def test_missing_input(tmp_path: Path, model_dir: Path) -> None:
    rc, result, _ = run_predict(tmp_path, model_dir, "Predict.input=None")
    assert rc == 1 and "Predict.input is not set" in result["err_msg"]


@pytest.mark.parametrize("batch_size", ["0", "-2"])
def test_batch_size_zero_or_negative(tmp_path: Path, model_dir: Path, batch_size: str) -> None:
    rc, result, _ = run_predict(
        tmp_path, model_dir, f"Predict.input={DEMO_IMAGES}", f"Predict.batch_size={batch_size}"
    )
    assert rc == 2 and "Predict.batch_size" in result["err_msg"] and "positive integer" in result["err_msg"]


def test_missing_model_dir(tmp_path: Path) -> None:
    rc, result, _ = run_predict(tmp_path, tmp_path / "no_model", f"Predict.input={DEMO_IMAGES}")
    assert rc == 1 and result["err_type"] == "ModelError" and "no_model does not exist" in result["err_msg"]


def test_unsupported_run_mode(tmp_path: Path, model_dir: Path) -> None:
    rc, result, _ = run_predict(
        tmp_path, model_dir, f"Predict.input={DEMO_IMAGES}", "Predict.kernel_option.run_mode=trt_fp16"
    )
    assert rc == 1 and "run_mode='trt_fp16' is not available yet" in result["err_msg"]
