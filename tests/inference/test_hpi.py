"""High-performance inference (use_hpip): parity with normal mode, the ONNX cache, and clear errors.

The parity and cache tests need the optional extra (``pip install -e ".[hpi]"``) and skip without it;
the missing-package errors are tested by hiding the packages, so they run everywhere.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import paddle
import pytest
from infer_helpers import SIZE, TinyFeatureNet, random_bgr, save_tiny_model

from paddlex_feat.api import create_model
from paddlex_feat.cli import main
from paddlex_feat.engine.export import export_inference
from paddlex_feat.inference.backends import BackendUnavailableError, cpu_has_bf16, is_installed, onnx_cache
from paddlex_feat.inference.backends import base as backends_base
from paddlex_feat.models import build_model
from paddlex_feat.utils.errors import ConfigError, ModelError
from paddlex_feat.utils.logger import logger

ROOT = Path(__file__).resolve().parents[2]
DEMO_IMAGES = ROOT / "dataset" / "demo" / "images"
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
HPI_MODULES = ("paddle2onnx", "openvino", "onnxruntime")

needs_hpi = pytest.mark.skipif(
    not all(is_installed(m) for m in HPI_MODULES),
    reason='the optional high-performance extra is not installed (pip install -e ".[hpi]")',
)
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16 (AVX512_BF16/AMX)")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two [N, D] arrays."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def features(model, inputs, batch_size: int) -> np.ndarray:
    return np.stack([res.feature for res in model.predict(inputs, batch_size=batch_size)])


@pytest.fixture
def toolkit_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """A function returning the toolkit's log so far (its logger may not propagate to pytest)."""
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    yield lambda: "\n".join(r.getMessage() for r in caplog.records)
    logger.removeHandler(caplog.handler)


@pytest.fixture(scope="module")
def shitu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real PP-ShiTuV2_rec architecture (random init, deterministic), exported at 224."""
    folder = tmp_path_factory.mktemp("shitu")
    paddle.seed(11)
    model = build_model("PP-ShiTuV2_rec", 10)
    model.eval()
    export_inference(model, "PP-ShiTuV2_rec", folder)
    return folder


@pytest.fixture(scope="module")
def demo_paths() -> list[str]:
    """50 demo images spread over both vendors' folders."""
    paths = sorted(str(p) for p in DEMO_IMAGES.rglob("*.jpg"))
    return paths[:: len(paths) // 50][:50]


@pytest.fixture(scope="module")
def normal_features(shitu_dir: Path, demo_paths: list[str]) -> np.ndarray:
    model = create_model("PP-ShiTuV2_rec", model_dir=shitu_dir, cpu_threads=2)
    return features(model, demo_paths, batch_size=8)


@pytest.fixture(scope="module")
def tiny_converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in network with its ONNX conversion cached beside it (copied by tests that change it)."""
    folder = save_tiny_model(tmp_path_factory.mktemp("tiny_hpi"))
    if all(is_installed(m) for m in HPI_MODULES):
        create_model("PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, cpu_threads=1)
    return folder


# -- parity with normal mode -------------------------------------------------------------------


@needs_hpi
@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_fp32_backend_matches_normal_mode_on_50_images(
    backend: str, shitu_dir: Path, demo_paths: list[str], normal_features: np.ndarray
) -> None:
    model = create_model(
        "PP-ShiTuV2_rec", model_dir=shitu_dir, use_hpip=True, hpi_config={"backend": backend}, cpu_threads=2
    )
    assert (model.runner.backend, model.runner.precision) == (backend, "fp32")
    batched = features(model, demo_paths, batch_size=8)  # 6 full batches and a partial one of 2
    assert batched.shape == (50, 512)
    assert cosines(batched, normal_features).min() >= 0.9999
    # batching: each image keeps its own row, equal to running it alone
    singles = features(model, demo_paths[:9], batch_size=1)
    np.testing.assert_allclose(singles, batched[:9], atol=1e-4)
    assert cosines(batched[:-1], batched[1:]).max() < 0.9999  # distinct images, distinct rows


@needs_hpi
@needs_bf16
def test_openvino_bf16_matches_normal_mode_within_0_999(
    shitu_dir: Path, demo_paths: list[str], normal_features: np.ndarray
) -> None:
    model = create_model(
        "PP-ShiTuV2_rec", model_dir=shitu_dir, use_hpip=True, hpi_config={"precision": "bf16"}, cpu_threads=2
    )
    assert (model.runner.backend, model.runner.precision) == ("openvino", "bf16")
    bf16 = features(model, demo_paths, batch_size=8)
    sims = cosines(bf16, normal_features)
    assert sims.min() >= 0.999
    assert sims.min() < 0.999999  # it really ran in bf16: fp32 would agree to ~1e-7


@needs_hpi
def test_default_is_openvino_fp32_and_the_log_says_why(
    tiny_converted: Path, toolkit_log: Callable[[], str]
) -> None:
    model = create_model("PP-ShiTuV2_rec", model_dir=tiny_converted, use_hpip=True, cpu_threads=1)
    assert (model.runner.backend, model.runner.precision) == ("openvino", "fp32")
    log = toolkit_log()
    assert "backend openvino (device cpu: OpenVINO is the fastest installed CPU backend)" in log
    assert "INFERENCE_PRECISION_HINT=f32" in log  # set explicitly: OpenVINO's own default may be bf16


@needs_hpi
def test_paddle_backend_is_normal_mode(tiny_converted: Path) -> None:
    normal = create_model("PP-ShiTuV2_rec", model_dir=tiny_converted, cpu_threads=1)
    hp = create_model(
        "PP-ShiTuV2_rec",
        model_dir=tiny_converted,
        use_hpip=True,
        hpi_config={"backend": "paddle"},
        cpu_threads=1,
    )
    images = [random_bgr(i) for i in range(3)]
    assert hp.runner.backend == "paddle"
    np.testing.assert_allclose(features(hp, images, 3), features(normal, images, 3), atol=1e-6)


# -- the ONNX cache ------------------------------------------------------------------------------


@needs_hpi
def test_onnx_is_cached_beside_the_model_and_reused(
    tiny_converted: Path, monkeypatch: pytest.MonkeyPatch, toolkit_log: Callable[[], str]
) -> None:
    meta = json.loads((tiny_converted / onnx_cache.META_NAME).read_text())
    assert meta["onnx_sha256"] == onnx_cache.file_sha256(tiny_converted / onnx_cache.ONNX_NAME)
    # readable like the model files beside it (a shared model folder), not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    for name in (onnx_cache.ONNX_NAME, onnx_cache.META_NAME):
        assert (tiny_converted / name).stat().st_mode & 0o777 == 0o666 & ~umask
    monkeypatch.setattr(onnx_cache, "convert", lambda *a, **k: pytest.fail("must reuse the cached ONNX"))
    create_model("PP-ShiTuV2_rec", model_dir=tiny_converted, use_hpip=True, cpu_threads=1)
    assert "Using the cached ONNX model" in toolkit_log()


@needs_hpi
def test_reexport_invalidates_the_cache(tiny_converted: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_converted, folder)
    old_hash = json.loads((folder / onnx_cache.META_NAME).read_text())["source_sha256"]
    paddle.seed(99)  # other weights, same architecture: the cached ONNX would give stale features
    other = TinyFeatureNet()
    other.eval()
    paddle.jit.save(
        other,
        str(folder / "inference"),
        input_spec=[paddle.static.InputSpec([None, 3, SIZE, SIZE], "float32", "x")],
    )
    hp = create_model("PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, cpu_threads=1)
    normal = create_model("PP-ShiTuV2_rec", model_dir=folder, cpu_threads=1)
    assert json.loads((folder / onnx_cache.META_NAME).read_text())["source_sha256"] != old_hash
    image = [random_bgr(5)]
    assert cosines(features(hp, image, 1), features(normal, image, 1)).min() >= 0.9999


@needs_hpi
def test_corrupt_cached_onnx_is_detected_rebuilt_and_logged(
    tiny_converted: Path, tmp_path: Path, toolkit_log: Callable[[], str]
) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_converted, folder)
    onnx_file = folder / onnx_cache.ONNX_NAME
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64  # damage the weights, keep the size
    onnx_file.write_bytes(bytes(data))
    model = create_model("PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, cpu_threads=1)
    log = toolkit_log()
    assert f"Cached ONNX model {onnx_file} is corrupt" in log and "rebuilding it" in log
    meta = json.loads((folder / onnx_cache.META_NAME).read_text())
    assert onnx_cache.file_sha256(onnx_file) == meta["onnx_sha256"]
    normal = create_model("PP-ShiTuV2_rec", model_dir=folder, cpu_threads=1)
    image = [random_bgr(6)]
    assert cosines(features(model, image, 1), features(normal, image, 1)).min() >= 0.9999


@needs_hpi
def test_read_only_model_folder_caches_in_the_cache_dir(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ro"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("inference.onnx*"))
    # tests run as root here, where chmod cannot make a folder read-only: stub the write probe
    monkeypatch.setattr(onnx_cache, "is_writable", lambda path: Path(path) != folder)
    cache = tmp_path / "cache"
    model = create_model(
        "PP-ShiTuV2_rec", model_dir=folder, use_hpip=True, hpi_config={"cache_dir": str(cache)}, cpu_threads=1
    )
    assert not (folder / onnx_cache.ONNX_NAME).exists()
    (cached,) = cache.glob(f"onnx/*/{onnx_cache.ONNX_NAME}")
    assert (cached.parent / onnx_cache.META_NAME).is_file()
    assert features(model, [random_bgr(1)], 1).shape == (1, 512)


# -- bad input -------------------------------------------------------------------------------------


def hide_package(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    """Make ``import <hidden>`` fail as if the package were not installed."""
    real = importlib.import_module

    def fake_import(name: str, *args, **kwargs):
        if name == hidden or name.startswith(hidden + "."):
            raise ModuleNotFoundError(f"No module named {hidden!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(backends_base.importlib, "import_module", fake_import)


def test_requested_backend_not_installed_names_the_pip_command(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_package(monkeypatch, "openvino")
    with pytest.raises(BackendUnavailableError) as err:
        create_model(
            "PP-ShiTuV2_rec", model_dir=tiny_model_dir, use_hpip=True, hpi_config={"backend": "openvino"}
        )
    msg = str(err.value)
    assert "'openvino', which is not installed" in msg
    assert 'pip install -e ".[hpi]"' in msg and "pip install openvino==" in msg
    assert err.value.details["missing_package"] == "openvino"


def test_use_hpip_without_any_backend_names_the_pip_command(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in HPI_MODULES:
        hide_package(monkeypatch, module)
    monkeypatch.setattr(backends_base, "is_installed", lambda m: False)
    monkeypatch.setattr("paddlex_feat.inference.backends.is_installed", lambda m: False)
    with pytest.raises(
        BackendUnavailableError,
        match=r'missing: paddle2onnx, openvino, onnxruntime.*pip install -e "\.\[hpi\]"',
    ):
        create_model("PP-ShiTuV2_rec", model_dir=tiny_model_dir, use_hpip=True)


def test_unknown_hpi_config_key_is_named(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"hpi_config\.device is not a known key; known keys: backend"):
        create_model("PP-ShiTuV2_rec", model_dir=tiny_model_dir, use_hpip=True, hpi_config={"device": "cpu"})


def test_unknown_backend_lists_the_supported_ones(tiny_model_dir: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"hpi_config\.backend='tensorrt' is not supported; use one of openvino"
    ):
        create_model(
            "PP-ShiTuV2_rec", model_dir=tiny_model_dir, use_hpip=True, hpi_config={"backend": "tensorrt"}
        )


@needs_hpi
def test_bf16_on_onnxruntime_points_to_openvino(tiny_converted: Path) -> None:
    with pytest.raises(
        BackendUnavailableError, match=r"precision='bf16' is not available with the 'onnxruntime'"
    ):
        create_model(
            "PP-ShiTuV2_rec",
            model_dir=tiny_converted,
            use_hpip=True,
            hpi_config={"backend": "onnxruntime", "precision": "bf16"},
        )


class InverseNet(paddle.nn.Layer):
    """Uses a matrix inverse, which paddle2onnx cannot convert (it aborts the converter process)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(16, 512)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        square = x[:, 0, :4, :4] + 5 * paddle.eye(4)
        return self.fc(paddle.linalg.inv(square).flatten(1))


@needs_hpi
def test_model_the_converter_cannot_convert_suggests_normal_mode(tmp_path: Path) -> None:
    paddle.jit.save(
        InverseNet(),
        str(tmp_path / "inference"),
        input_spec=[paddle.static.InputSpec([None, 3, SIZE, SIZE], "float32", "x")],
    )
    shutil.copy(
        save_tiny_model(tmp_path / "yml_source").joinpath("inference.yml"), tmp_path / "inference.yml"
    )
    with pytest.raises(
        ModelError, match=r"paddle2onnx could not convert .*inference\.json.*Use normal mode \(use_hpip=False"
    ):
        create_model("PP-ShiTuV2_rec", model_dir=tmp_path, use_hpip=True, cpu_threads=1)
    assert not (tmp_path / onnx_cache.ONNX_NAME).exists()  # no half-written cache left behind
    # normal mode still runs it
    assert features(
        create_model("PP-ShiTuV2_rec", model_dir=tmp_path, cpu_threads=1), [random_bgr(2)], 1
    ).shape == (1, 512)


# -- Global.mode=predict ---------------------------------------------------------------------------


def run_predict(tmp_path: Path, model_dir: Path, *overrides: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    args = ["-c", str(CONFIG), "-o", "Global.mode=predict", "-o", f"Global.output={out}"]
    args += ["-o", f"Predict.model_dir={model_dir}", "-o", f"Predict.input={DEMO_IMAGES / 'google'}"]
    for override in overrides:
        args += ["-o", override]
    rc = main(args)
    if not (out / "predict_result.json").exists():  # a usage error (exit 2) writes no result
        return rc, {"log": (out / "predict.log").read_text()}
    return rc, json.loads((out / "predict_result.json").read_text())


@needs_hpi
def test_predict_mode_run_mode_onnxruntime(tiny_converted: Path, tmp_path: Path) -> None:
    rc, result = run_predict(
        tmp_path, tiny_converted, "Predict.kernel_option.run_mode=onnxruntime", "Predict.save_json=False"
    )
    assert rc == 0 and result["backend"] == "onnxruntime" and result["precision"] == "fp32"
    assert result["num_images"] > 10 and result["num_errors"] == 0


def test_predict_mode_conflicting_run_mode_and_backend(tiny_model_dir: Path, tmp_path: Path) -> None:
    rc, result = run_predict(
        tmp_path,
        tiny_model_dir,
        "Predict.kernel_option.run_mode=openvino",
        "Predict.hpi_config.backend=onnxruntime",
    )
    assert rc == 2 and "run_mode='openvino' but Predict.hpi_config.backend='onnxruntime'" in result["log"]


@pytest.mark.parametrize(
    "flags, slower, auto",
    [
        ({"avx512f", "avx512_bf16"}, True, "fp32"),  # AVX512_BF16 without AMX: bf16 slower, never chosen
        ({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, False, "bf16"),
        ({"avx2"}, False, "fp32"),
    ],
    ids=["avx512bf16-no-amx", "amx", "no-bf16"],
)
def test_bf16_without_amx_is_logged_and_never_chosen(
    monkeypatch: pytest.MonkeyPatch, toolkit_log, tiny_model_dir: Path, flags: set, slower: bool, auto: str
) -> None:
    from paddlex_feat.inference.backends import create_runner, parse_hpi_config
    from paddlex_feat.utils.device import as_device

    monkeypatch.setattr(backends_base, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(backends_base, "is_installed", lambda module: True)  # auto needs OpenVINO
    assert parse_hpi_config({"precision": "auto"}).precision == auto
    assert parse_hpi_config({}).precision == "fp32"  # unset stays fp32, as in PaddleX
    program, params = tiny_model_dir / "inference.json", tiny_model_dir / "inference.pdiparams"
    # this machine may lack OpenVINO or a bf16 CPU: the warning comes before either is needed
    with contextlib.suppress(BackendUnavailableError, ImportError):
        create_runner(
            tiny_model_dir,
            program,
            params,
            as_device("cpu"),
            1,
            True,
            {"backend": "openvino", "precision": "bf16"},
        )
    assert ("AVX512_BF16 but no AMX, so bf16 is likely slower than fp32" in toolkit_log()) == slower
