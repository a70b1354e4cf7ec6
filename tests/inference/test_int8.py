"""hpi_config.precision=int8: the exported int8 model on OpenVINO and ONNX Runtime, hash-checked, with hints."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from infer_helpers import save_tiny_int8_model

from paddlex_feat.api import create_model
from paddlex_feat.cli import main
from paddlex_feat.inference.backends import BackendUnavailableError, int8
from paddlex_feat.utils.errors import ModelError
from paddlex_feat.utils.logger import logger

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory: pytest.TempPathFactory, image_dir: Path) -> Path:
    """The stand-in network with an int8 model, calibrated on a folder (no gallery/query: unchecked)."""
    return save_tiny_int8_model(
        tmp_path_factory.mktemp("tiny_int8"), image_dir, tmp_path_factory.mktemp("no_lists")
    )


@pytest.fixture
def toolkit_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield lambda: "\n".join(r.getMessage() for r in caplog.records)
    logger.removeHandler(caplog.handler)


def features(model, images: list[str]) -> np.ndarray:
    return np.stack([r.feature for r in model.predict(images, batch_size=4)])


def image_paths(image_dir: Path) -> list[str]:
    return sorted(
        str(p) for p in image_dir.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".jpeg", ".bmp")
    )


def test_without_query_gallery_only_the_cosine_is_recorded(int8_dir: Path) -> None:
    meta = json.loads((int8_dir / int8.INT8_META).read_text())
    acc = meta["accuracy"]
    assert acc["checked"] is False and "no query/gallery" in acc["reason"]
    assert acc["calibration_cosine"]["mean"] > 0.99 and meta["calibration"]["classes"] == 4  # a, b, b/deep, .


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_int8_runs_on_both_backends_close_to_fp32(int8_dir: Path, image_dir: Path, backend: str) -> None:
    images = image_paths(image_dir)
    fp32 = features(create_model("PP-ShiTuV2_rec", model_dir=int8_dir, cpu_threads=1), images)
    model = create_model(
        "PP-ShiTuV2_rec",
        model_dir=int8_dir,
        use_hpip=True,
        hpi_config={"backend": backend, "precision": "int8"},
        cpu_threads=1,
    )
    assert (model.runner.backend, model.runner.precision) == (backend, "int8")
    got = features(model, images)
    sims = (got * fp32).sum(axis=1)
    assert sims.min() > 0.98  # close to fp32 ...
    assert np.abs(got - fp32).max() > 1e-5  # ... but really quantized


def test_int8_picks_openvino_by_default(int8_dir: Path, toolkit_log) -> None:
    model = create_model(
        "PP-ShiTuV2_rec", model_dir=int8_dir, use_hpip=True, hpi_config={"precision": "int8"}, cpu_threads=1
    )
    assert (model.runner.backend, model.runner.precision) == ("openvino", "int8")
    assert "precision int8" in toolkit_log()


def test_int8_on_the_paddle_backend_points_to_openvino(int8_dir: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"precision='int8' is not available with the 'paddle'"):
        create_model(
            "PP-ShiTuV2_rec",
            model_dir=int8_dir,
            use_hpip=True,
            hpi_config={"backend": "paddle", "precision": "int8"},
        )


def test_asking_int8_without_an_int8_model_gives_the_export_command(tiny_model_dir: Path) -> None:
    with pytest.raises(
        ModelError, match=r"has no int8 model.*Global\.mode=export.*Export\.precision=int8"
    ) as err:
        create_model(
            "PP-ShiTuV2_rec", model_dir=tiny_model_dir, use_hpip=True, hpi_config={"precision": "int8"}
        )
    assert (
        "python main.py -c configs/modules/image_feature/PP-ShiTuV2_rec.yaml"
        in err.value.details["export_command"]
    )


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "copy"))


def test_edited_int8_model_is_refused_with_the_rebuild_command(int8_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(int8_dir, tmp_path)
    with open(folder / int8.INT8_ONNX, "ab") as f:
        f.write(b"\0")
    with pytest.raises(
        ModelError, match=r"(?s)does not match its metadata.*edited or replaced.*Export\.precision=int8"
    ):
        create_model("PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, hpi_config={"precision": "int8"})


def test_int8_model_of_an_older_export_is_refused(int8_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(int8_dir, tmp_path)
    with open(folder / "inference.pdiparams", "ab") as f:  # the fp32 model changed since quantization
        f.write(b"\0")
    with pytest.raises(ModelError, match=r"quantized from an older export.*rebuild it with"):
        create_model("PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, hpi_config={"precision": "int8"})


def test_missing_metadata_is_refused(int8_dir: Path, tmp_path: Path) -> None:
    folder = copy_of(int8_dir, tmp_path)
    (folder / int8.INT8_META).unlink()
    with pytest.raises(ModelError, match=r"missing or unreadable.*re-export it"):
        create_model("PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, hpi_config={"precision": "int8"})


def test_unused_int8_model_is_hinted(int8_dir: Path, tiny_model_dir: Path, toolkit_log) -> None:
    create_model("PP-ShiTuV2_rec", model_dir=tiny_model_dir, cpu_threads=1)
    assert "also holds an int8 model" not in toolkit_log()
    create_model("PP-ShiTuV2_rec", model_dir=int8_dir, cpu_threads=1)
    assert (
        "also holds an int8 model" in toolkit_log() and "Predict.hpi_config.precision=int8" in toolkit_log()
    )


def test_cpu_without_vnni_warns_but_runs(int8_dir: Path, image_dir: Path, monkeypatch, toolkit_log) -> None:
    monkeypatch.setattr(int8, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    model = create_model(
        "PP-ShiTuV2_rec", model_dir=int8_dir, use_hpip=True, hpi_config={"precision": "int8"}, cpu_threads=1
    )
    warned = toolkit_log().count("may not be faster than fp32 here")
    assert warned >= 1
    assert features(model, image_paths(image_dir)[:2]).shape == (2, 512)
    monkeypatch.setattr(int8, "cpu_flags", lambda: frozenset({"avx512_vnni"}))
    int8.warn_if_no_int8_instructions()
    assert toolkit_log().count("may not be faster") == warned  # a VNNI CPU: no new warning


def test_predict_mode_with_int8(int8_dir: Path, image_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "-c",
        str(CONFIG),
        "-o",
        "Global.mode=predict",
        "-o",
        "Global.device=cpu",
        "-o",
        f"Global.output={out}",
    ]
    for o in (
        f"Predict.model_dir={int8_dir}",
        "Predict.use_hpip=True",
        "Predict.hpi_config.precision=int8",
        f"Predict.input={image_dir}",
    ):
        args += ["-o", o]
    assert main(args) == 0
    assert json.loads((out / "predict_result.json").read_text())["done_flag"] is True
