"""FeatureResult: print, .json, save_to_json naming, .feature."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from infer_helpers import random_bgr

from paddlex_feat.inference import FeatureResult, Predictor


def make(input_path: str | None = "photos/cat.jpg", dim: int = 512) -> FeatureResult:
    feature = np.linspace(-1, 1, dim, dtype=np.float32)
    return FeatureResult(input_path, feature / np.linalg.norm(feature))


def test_feature_property_and_dict_keys() -> None:
    res = make()
    assert res.feature.shape == (512,) and res.feature.dtype == np.float32
    assert list(res) == ["input_path", "page_index", "feature"]
    assert res["page_index"] is None and res.ok


def test_json_gives_plain_lists() -> None:
    body = make().json["res"]
    assert isinstance(body["feature"], list) and len(body["feature"]) == 512
    assert all(type(v) is float for v in body["feature"])
    json.dumps(make().json)  # serialisable as is


def test_print_repr_looks_like_the_seed(capsys: pytest.CaptureFixture) -> None:
    make().print(format_json=False)
    out = capsys.readouterr().out.strip()
    assert out.startswith("{'res': {'input_path': 'photos/cat.jpg', 'page_index': None, 'feature': array([")
    assert out.endswith("], dtype=float32)}}") and "..." in out and out.count("\n") == 0


def test_print_json_abbreviates_the_feature(capsys: pytest.CaptureFixture) -> None:
    make("照片/猫.jpg").print(format_json=True, indent=2)
    out = capsys.readouterr().out
    assert '\n  "res": {' in out and '"input_path": "照片/猫.jpg"' in out  # ensure_ascii=False keeps it
    assert '"page_index": null' in out and "..." in out and len(out) < 600
    make("照片/猫.jpg").print(json_format=True, ensure_ascii=True)  # PaddleX's spelling works too
    assert "\\u732b" in capsys.readouterr().out


def test_save_to_json_into_a_folder(tmp_path: Path) -> None:
    path = make().save_to_json(tmp_path / "out")
    assert path == tmp_path / "out" / "cat_res.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["input_path"] == "photos/cat.jpg" and len(saved["feature"]) == 512


def test_save_to_json_as_a_named_file(tmp_path: Path) -> None:
    path = make().save_to_json(tmp_path / "my.json", indent=None)
    assert path == tmp_path / "my.json" and path.read_text().count("\n") == 1


def test_same_stems_and_arrays_get_distinct_files(
    tiny_model_dir: Path, image_dir: Path, tmp_path: Path
) -> None:
    model = Predictor(tiny_model_dir, cpu_threads=1)
    inputs = [str(image_dir / "a" / "x.jpg"), str(image_dir / "b" / "x.jpeg"), random_bgr(1), random_bgr(2)]
    written = [res.save_to_json(tmp_path) for res in model.predict(inputs, batch_size=4)]
    assert [p.name for p in written] == ["x_res.json", "x_1_res.json", "array_2_res.json", "array_3_res.json"]
    first, second = (json.loads(p.read_text()) for p in written[:2])
    assert first["input_path"].endswith("a/x.jpg") and second["input_path"].endswith("b/x.jpeg")
