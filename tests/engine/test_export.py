"""Export: re-parameterised copy, PaddleX's inference.yml, and the export mode's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from paddlex_feat.cli import main
from paddlex_feat.engine.export import export_inference
from paddlex_feat.inference import Predictor
from paddlex_feat.models import get_model_info

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
SIZE = 32


class TwoBranchNet(paddle.nn.Layer):
    """Two parallel convs summed, fused into one by ``re_parameterize``, as the rep blocks are."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_a = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.conv_b = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(8, 512)
        self.fused = False

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.conv_a(x) if self.fused else self.conv_a(x) + self.conv_b(x)
        return self.fc(self.pool(paddle.nn.functional.relu(y)).flatten(1))

    def re_parameterize(self) -> int:
        self.conv_a.weight.set_value(self.conv_a.weight + self.conv_b.weight)
        self.conv_a.bias.set_value(self.conv_a.bias + self.conv_b.bias)
        self.fused = True
        return 1


def test_exported_folder_predicts_the_unfused_model_output(tmp_path: Path) -> None:
    paddle.seed(1)
    net = TwoBranchNet()
    net.eval()
    files = export_inference(net, "PP-ShiTuV2_rec", tmp_path / "inference", input_size=SIZE)
    assert not net.fused  # the model being trained is left alone; a copy was fused
    assert {Path(p).name for p in files.values()} == {
        "inference.yml",
        "inference.json",
        "inference.pdiparams",
    }
    assert all(Path(p).is_file() for p in files.values())
    assert not [p for p in (tmp_path / "inference").iterdir() if p.name.startswith(".")]  # no temp left

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(3)]
    predictor = Predictor(tmp_path / "inference", cpu_threads=1)
    got = np.stack([r.feature for r in predictor.predict(images, batch_size=3)])
    x = np.stack([predictor.spec.preprocess(img[:, :, ::-1]) for img in images])  # BGR in, RGB to the model
    with paddle.no_grad():
        ref = net(paddle.to_tensor(x)).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_inference_yml_reads_the_model_table(tmp_path: Path) -> None:
    files = export_inference(TwoBranchNet(), "PP-ShiTuV2_rec", tmp_path, input_size=SIZE)
    doc = yaml.safe_load(Path(files["inference_config"]).read_text())
    info = get_model_info("PP-ShiTuV2_rec")
    assert doc["Global"]["model_name"] == "PP-ShiTuV2_rec"
    resize, normalize, to_chw = doc["PreProcess"]["transform_ops"]
    assert resize["ResizeImage"]["size"] == [SIZE, SIZE]
    assert resize["ResizeImage"]["interpolation"] == info.interpolation
    assert normalize["NormalizeImage"]["mean"] == pytest.approx(list(info.mean))
    assert normalize["NormalizeImage"]["std"] == pytest.approx(list(info.std))
    assert to_chw == {"ToCHWImage": None}
    assert doc["PostProcess"] == {"NormalizeFeatures": None}


def test_input_spec_is_dynamic_batch_float32(tmp_path: Path) -> None:
    export_inference(TwoBranchNet(), "PP-ShiTuV2_rec", tmp_path, input_size=SIZE)
    program = json.loads((tmp_path / "inference.json").read_text())
    text = json.dumps(program)
    assert "-1,3,32,32" in text.replace(" ", "") or "[-1, 3, 32, 32]" in text


def run_export(tmp_path: Path, *overrides: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    rc = main(
        [
            "-c",
            str(CONFIG),
            "-o",
            "Global.mode=export",
            "-o",
            "Global.device=cpu",
            "-o",
            f"Global.output={out}",
        ]
        + sum((["-o", o] for o in overrides), [])
    )
    return rc, json.loads((out / "export_result.json").read_text())


def test_export_mode_writes_a_loadable_folder(tmp_path: Path) -> None:
    from paddlex_feat.models import build_model

    paddle.seed(2)
    weights = tmp_path / "best_model.pdparams"
    paddle.save(build_model("PP-ShiTuV2_rec", 7).state_dict(), str(weights))
    rc, result = run_export(tmp_path, f"Export.weight_path={weights}", "Export.input_size=64")
    assert rc == 0 and result["done_flag"] is True
    assert Path(result["pdmodel"]).name == "inference.json" and Path(result["pdiparams"]).is_file()
    (res,) = Predictor(result["save_dir"], model_name="PP-ShiTuV2_rec", cpu_threads=1).predict(
        np.zeros((64, 64, 3), np.uint8)
    )
    assert res.feature.shape == (512,)


def test_export_without_weight_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(FileNotFoundError):  # a usage error: exit 2 and no result file
        run_export(tmp_path, "Export.weight_path=None")
    assert "Export.weight_path is not set" in capsys.readouterr().err


def test_export_with_missing_weights_file(tmp_path: Path) -> None:
    rc, result = run_export(tmp_path, f"Export.weight_path={tmp_path / 'nope.pdparams'}")
    assert rc != 0 and "nope.pdparams" in result["err_msg"] and "does not exist" in result["err_msg"]


def test_export_with_weights_of_another_model(tmp_path: Path) -> None:
    weights = tmp_path / "other.pdparams"
    paddle.save({"backbone.stem.0.conv.weight": paddle.zeros([3, 3])}, str(weights))
    rc, result = run_export(tmp_path, f"Export.weight_path={weights}")
    assert rc != 0 and result["err_type"] == "ModelError"
    assert "shares no tensor" in result["err_msg"] and "another model" in result["err_msg"]


def test_export_with_weights_that_only_partly_fit(tmp_path: Path) -> None:
    from paddlex_feat.models import build_model

    state = build_model("PP-ShiTuV2_rec", 4).state_dict()
    state.pop("neck.feat_bn.weight")  # a checkpoint missing a feature tensor must not export
    weights = tmp_path / "partial.pdparams"
    paddle.save(state, str(weights))
    rc, result = run_export(tmp_path, f"Export.weight_path={weights}")
    assert rc != 0 and result["err_type"] == "ModelError"
    assert "does not fit PP-ShiTuV2_rec" in result["err_msg"] and "neck.feat_bn.weight" in result["err_msg"]
