"""create_model: local folders, the official-model path, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from infer_helpers import random_bgr, save_tiny_model

import paddlex_feat.api as api
from paddlex_feat.api import create_model, official_inference_url
from paddlex_feat.utils.errors import ModelError


def test_create_model_with_model_dir_predicts(tiny_model_dir: Path) -> None:
    model = create_model("PP-ShiTuV2_rec", model_dir=str(tiny_model_dir), device="cpu", cpu_threads=1)
    (res,) = model.predict(random_bgr(0), batch_size=1)
    assert res.feature.shape == (512,) and model.model_name == "PP-ShiTuV2_rec"


def test_gpu_device_falls_back_to_cpu(tiny_model_dir: Path, monkeypatch, caplog) -> None:
    # no usable GPU, whatever paddle build runs the test (a CUDA build on a machine without one too)
    import paddlex_feat.utils.device as device

    monkeypatch.setattr(device, "gpu_count", lambda: 0)
    monkeypatch.setattr(device.logger, "propagate", True)  # the CLI's setup turns it off; caplog needs it
    model = create_model("PP-ShiTuV2_rec", model_dir=tiny_model_dir, device="gpu:0", cpu_threads=1)
    assert model.device == "cpu"
    assert [r.message for r in caplog.records if "running on the CPU instead" in r.message]
    (res,) = model.predict(random_bgr(1), batch_size=1)
    assert res.feature.shape == (512,)


def test_unknown_model_name_lists_the_known_ones(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"Unknown model 'PP-ShiTuV3'.*PP-ShiTuV2_rec"):
        create_model("PP-ShiTuV3", model_dir=tiny_model_dir)


def test_model_dir_of_another_model_names_both(tmp_path: Path) -> None:
    folder = save_tiny_model(tmp_path, model_name="PP-ShiTuV2_rec_CLIP_vit_base")
    with pytest.raises(ModelError, match=r"'PP-ShiTuV2_rec_CLIP_vit_base'.*'PP-ShiTuV2_rec'"):
        create_model("PP-ShiTuV2_rec", model_dir=folder)


def test_missing_model_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist"):
        create_model("PP-ShiTuV2_rec", model_dir=tmp_path / "missing")


def test_official_url_is_paddlex_one() -> None:
    assert official_inference_url("PP-ShiTuV2_rec") == (
        "https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/paddle3.0.0/PP-ShiTuV2_rec_infer.tar"
    )


def test_model_dir_none_uses_the_download_cache(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """A cached official tarball's folder (with its inner <name>_infer/ folder) is used without network."""
    import shutil

    from paddlex_feat.utils import download

    cache = tmp_path / "cache"
    shutil.copytree(tiny_model_dir, cache / "PP-ShiTuV2_rec_infer" / "PP-ShiTuV2_rec_infer")
    (cache / "PP-ShiTuV2_rec_infer.tar").write_bytes(b"already extracted")
    monkeypatch.setenv("PADDLEX_FEAT_HOME", str(cache))
    monkeypatch.setattr(download, "_fetch", lambda *a, **k: pytest.fail("must not download"))
    model = create_model("PP-ShiTuV2_rec", cpu_threads=1)
    assert model.model_dir == cache / "PP-ShiTuV2_rec_infer" / "PP-ShiTuV2_rec_infer"
    (res,) = model.predict(random_bgr(4))
    assert np.isfinite(res.feature).all()


def test_model_dir_none_offline_names_the_cache_path(tmp_path: Path, monkeypatch) -> None:
    import socket

    from paddlex_feat.utils import download

    with socket.socket() as s:  # a closed port: the connection is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PADDLEX_FEAT_HOME", str(tmp_path))
    monkeypatch.setattr(api, "OFFICIAL_INFERENCE_BASE", f"http://127.0.0.1:{port}")
    cache_file = tmp_path / "PP-ShiTuV2_rec_infer.tar"
    with pytest.raises(
        download.DownloadError, match=r"(?s)Could not download .*place it at (.*)\.tar.*model_dir="
    ) as err:
        create_model("PP-ShiTuV2_rec")
    assert str(cache_file) in str(err.value)
