"""inference.yml: the reference layout is written and read; bad files name the file and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from infer_helpers import inference_yml

from paddlex_feat.inference.spec import build_inference_yml, load_inference_spec
from paddlex_feat.utils.errors import ModelError


def write(folder: Path, doc: object) -> Path:
    (folder / "inference.yml").write_text(
        doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    )
    return folder


def test_written_yml_has_the_reference_layout() -> None:
    doc = build_inference_yml("PP-ShiTuV2_rec", 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert doc["Global"] == {"model_name": "PP-ShiTuV2_rec"}
    ops = doc["PreProcess"]["transform_ops"]
    assert [next(iter(op)) for op in ops] == ["ResizeImage", "NormalizeImage", "ToCHWImage"]
    assert ops[0]["ResizeImage"]["size"] == [224, 224]
    assert ops[1]["NormalizeImage"]["scale"] == pytest.approx(1 / 255)
    assert ops[1]["NormalizeImage"]["order"] == "hwc" and ops[1]["NormalizeImage"]["channel_num"] == 3
    assert doc["PostProcess"] == {"NormalizeFeatures": None}


def test_preprocess_resizes_normalises_and_makes_chw(tmp_path: Path) -> None:
    spec = load_inference_spec(write(tmp_path, inference_yml(size=16)))
    rgb = np.full((40, 30, 3), (255, 0, 128), dtype=np.uint8)
    out = spec.preprocess(rgb)
    assert out.shape == (3, 16, 16) and out.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([255, 0, 128]) / 255.0 - mean) / std
    np.testing.assert_allclose(out[:, 5, 5], expected, rtol=1e-5)
    assert spec.model_name == "PP-ShiTuV2_rec" and spec.input_size == (16, 16)


def test_resize_short_and_crop_are_supported(tmp_path: Path) -> None:
    doc = inference_yml()
    doc["PreProcess"]["transform_ops"][0] = {"ResizeImage": {"resize_short": 20}}
    doc["PreProcess"]["transform_ops"].insert(1, {"CropImage": {"size": 16}})
    spec = load_inference_spec(write(tmp_path, doc))
    assert spec.preprocess(np.zeros((30, 60, 3), np.uint8)).shape == (3, 16, 16)


def test_corrupt_yml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "Global:\n  model_name: x\nPreProcess:\n  transform_ops: [a, b\n")
    with pytest.raises(ModelError, match=r"inference\.yml:\d+: .*not valid YAML"):
        load_inference_spec(tmp_path)


def test_yml_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ModelError, match=r"expected a mapping"):
        load_inference_spec(tmp_path)


def test_unknown_transform_is_named(tmp_path: Path) -> None:
    doc = inference_yml()
    doc["PreProcess"]["transform_ops"].insert(0, {"RandomFlip": None})
    with pytest.raises(ModelError, match=r"transform_ops\[0\] is 'RandomFlip'.*supported"):
        load_inference_spec(write(tmp_path, doc))


def test_missing_transform_ops(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"PreProcess\.transform_ops must be a non-empty list"):
        load_inference_spec(write(tmp_path, {"Global": {"model_name": "m"}, "PostProcess": {}}))


def test_missing_to_chw(tmp_path: Path) -> None:
    doc = inference_yml()
    doc["PreProcess"]["transform_ops"].pop()
    with pytest.raises(ModelError, match=r"no ToCHWImage"):
        load_inference_spec(write(tmp_path, doc))


def test_bad_scale_and_mean(tmp_path: Path) -> None:
    doc = inference_yml()
    doc["PreProcess"]["transform_ops"][1]["NormalizeImage"]["scale"] = "1/0"
    with pytest.raises(ModelError, match=r"NormalizeImage\.scale='1/0'"):
        load_inference_spec(write(tmp_path, doc))
    doc["PreProcess"]["transform_ops"][1]["NormalizeImage"]["scale"] = 0.5
    doc["PreProcess"]["transform_ops"][1]["NormalizeImage"]["mean"] = [0.5, 0.5]
    with pytest.raises(ModelError, match=r"NormalizeImage\.mean must be a list of 3 numbers"):
        load_inference_spec(write(tmp_path, doc))


def test_unknown_interpolation(tmp_path: Path) -> None:
    doc = inference_yml()
    doc["PreProcess"]["transform_ops"][0]["ResizeImage"]["interpolation"] = "fancy"
    with pytest.raises(ModelError, match=r"interpolation='fancy' is unknown"):
        load_inference_spec(write(tmp_path, doc))


def test_unknown_post_process(tmp_path: Path) -> None:
    doc = inference_yml()
    doc["PostProcess"] = {"Topk": {"topk": 5}}
    with pytest.raises(ModelError, match=r"PostProcess\.Topk is not supported"):
        load_inference_spec(write(tmp_path, doc))


def test_fused_normalise_to_chw_equals_the_step_by_step_path(tmp_path: Path) -> None:
    # Resize, Normalize, ToCHW takes the fused path; moving the crop after NormalizeImage forces
    # the step-by-step one. On the same image both must give the same contiguous CHW tensor.
    fused_doc = inference_yml(size=24)
    fused_doc["PreProcess"]["transform_ops"].insert(1, {"CropImage": {"size": 16}})
    stepwise_doc = inference_yml(size=24)
    stepwise_doc["PreProcess"]["transform_ops"].insert(2, {"CropImage": {"size": 16}})
    (tmp_path / "fused").mkdir()
    (tmp_path / "stepwise").mkdir()
    fused = load_inference_spec(write(tmp_path / "fused", fused_doc))
    stepwise = load_inference_spec(write(tmp_path / "stepwise", stepwise_doc))
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    a, b = fused.preprocess(rgb), stepwise.preprocess(rgb)
    assert a.shape == b.shape == (3, 16, 16) and a.dtype == b.dtype == np.float32
    assert a.flags.c_contiguous and b.flags.c_contiguous
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
