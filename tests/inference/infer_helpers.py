"""Test helpers: a tiny stand-in feature network saved with paddle.jit.save, and synthetic images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import paddle
import yaml

SIZE = 32  # input side of the stand-in model: tests stay fast


class TinyFeatureNet(paddle.nn.Layer):
    """Two convs, global pooling and a linear layer to 512: the shape contract of the real models."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = paddle.nn.Conv2D(3, 8, 3, stride=2, padding=1)
        self.bn = paddle.nn.BatchNorm2D(8)
        self.conv2 = paddle.nn.Conv2D(8, 16, 3, stride=2, padding=1)
        self.pool = paddle.nn.AdaptiveAvgPool2D(1)
        self.fc = paddle.nn.Linear(16, 512)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = paddle.nn.functional.relu(self.bn(self.conv1(x)))
        x = paddle.nn.functional.relu(self.conv2(x))
        return self.fc(self.pool(x).flatten(1))


def inference_yml(model_name: str = "PP-ShiTuV2_rec", size: int = SIZE) -> dict:
    """A hand-written inference.yml in the reference layout (PaddleClas writes the scale as a string)."""
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {
            "transform_ops": [
                {
                    "ResizeImage": {
                        "size": [size, size],
                        "return_numpy": False,
                        "interpolation": "bilinear",
                        "backend": "cv2",
                    }
                },
                {
                    "NormalizeImage": {
                        "scale": "1.0/255.0",
                        "mean": [0.485, 0.456, 0.406],
                        "std": [0.229, 0.224, 0.225],
                        "order": "hwc",
                    }
                },
                {"ToCHWImage": None},
            ]
        },
        "PostProcess": {"NormalizeFeatures": None},
    }


def save_tiny_model(folder: Path, model_name: str = "PP-ShiTuV2_rec") -> Path:
    """jit.save the stand-in network into ``folder`` with a hand-written inference.yml."""
    paddle.seed(7)
    net = TinyFeatureNet()
    net.eval()
    spec = [paddle.static.InputSpec([None, 3, SIZE, SIZE], "float32", name="x")]
    paddle.jit.save(net, str(folder / "inference"), input_spec=spec)
    (folder / "inference.yml").write_text(yaml.safe_dump(inference_yml(model_name), sort_keys=False))
    return folder


def save_tiny_int8_model(folder: Path, calibration: Path, no_lists: Path) -> Path:
    """The stand-in network with its int8 model (Export.precision=int8's code), calibrated on the
    images of folder ``calibration``; ``no_lists`` is an empty dataset folder (no gallery/query, so
    the accuracy check is skipped and only the calibration cosine is recorded)."""
    from paddlex_feat.config.loader import load_config
    from paddlex_feat.engine import quantize

    save_tiny_model(folder)
    config = (
        Path(__file__).resolve().parents[2] / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
    )
    cfg = load_config(
        config,
        [f"Global.dataset_dir={no_lists}", "Export.precision=int8", f"Export.calibration={calibration}"],
    )
    quantize.export_int8(
        cfg,
        quantize.check_int8_request(cfg),
        folder,
        folder / "inference.json",
        folder / "inference.pdiparams",
        "w",
    )
    return folder


def random_bgr(seed: int, h: int = 40, w: int = 48) -> np.ndarray:
    """A smooth random colour image, so that resizing is not trivially constant."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
