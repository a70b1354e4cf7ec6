"""The service on the high-performance backends (Serve.use_hpip, Serve.hpi_config): built from the
config as ``Global.mode=serve`` builds it, served over HTTP, and checked against the normal predictor.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import LiveServer, jpeg_b64
from infer_helpers import random_bgr, save_tiny_int8_model

from paddlex_feat.config.loader import load_config
from paddlex_feat.engine.serve import build_service
from paddlex_feat.inference.predictor import Predictor

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def serve_hpip(model_dir: Path, out: Path, *hpi: str) -> LiveServer:
    """The service of ``model_dir`` with use_hpip and the given Serve.hpi_config overrides, listening."""
    cfg = load_config(
        CONFIG,
        [
            "Global.mode=serve",
            "Global.device=cpu",
            f"Global.output={out}",
            f"Serve.model_dir={model_dir}",
            "Serve.cpu_threads=1",
            "Serve.use_hpip=True",
            *(f"Serve.hpi_config.{item}" for item in hpi),
        ],
    )
    return LiveServer(build_service(cfg))


def served_and_offline(server: LiveServer, offline: Predictor) -> tuple[np.ndarray, np.ndarray]:
    """Features of 7 images from the service (one 4-image request and three concurrent single-image
    ones, so the batcher mixes requests) and from ``offline`` on the same JPEG bytes, in order."""
    texts = [jpeg_b64(random_bgr(i)) for i in range(7)]

    def post(images: list[str]) -> list:
        response = httpx.post(server.url + "/features", json={"images": images}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()["result"]["features"]

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(post, [texts[:4], texts[4:5], texts[5:6], texts[6:7]]))
    served = np.asarray([row for part in parts for row in part], np.float32)
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(t), np.uint8), 1) for t in texts]
    expected = np.stack([r.feature for r in offline.predict(decoded, batch_size=4)])
    return served, expected


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_hpip_service_serves_the_normal_predictors_features(
    tiny_model_dir: Path, predictor: Predictor, tmp_path: Path, backend: str
) -> None:
    server = serve_hpip(tiny_model_dir, tmp_path, f"backend={backend}")
    try:
        assert (server.service.predictor.runner.backend, server.service.predictor.runner.precision) == (
            backend,
            "fp32",
        )
        served, expected = served_and_offline(server, predictor)
    finally:
        server.stop()
    assert served.shape == (7, 512)
    cosine = (served * expected).sum(axis=1)  # both L2-normalised
    assert cosine.min() > 0.9999


def test_int8_service_serves_the_quantized_model(tmp_path: Path) -> None:
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i in range(11):
        assert cv2.imwrite(str(calibration / f"{i}.png"), random_bgr(100 + i))
    (tmp_path / "no_lists").mkdir()
    folder = save_tiny_int8_model(tmp_path / "int8_model", calibration, tmp_path / "no_lists")
    server = serve_hpip(folder, tmp_path / "out", "precision=int8")
    try:
        runner = server.service.predictor.runner
        assert (runner.backend, runner.precision) == ("openvino", "int8")
        served, fp32 = served_and_offline(server, Predictor(folder, cpu_threads=1))
    finally:
        server.stop()
    cosine = (served * fp32).sum(axis=1)
    assert cosine.min() > 0.98  # close to the fp32 model ...
    assert np.abs(served - fp32).max() > 1e-5  # ... but really the int8 one
