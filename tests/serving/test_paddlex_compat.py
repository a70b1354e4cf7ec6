"""PaddleX 3.7.2 PP-ShiTuV2 serving compatibility: same paths, request bodies and result shapes.

Request bodies follow paddlex/inference/serving/schemas/pp_shituv2.py: BuildIndexRequest
{imageLabelPairs: [{image, label}]}, AddImagesToIndexRequest {imageLabelPairs, indexKey},
RemoveImagesFromIndexRequest {ids, indexKey}, InferRequest {image, indexKey, detThreshold,
recThreshold, hammingRadius, topk, visualize}. Results: {indexKey, imageCount}, {imageCount},
{imageCount}, {detectedObjects: [{bbox, recResults: [{label, score}], score}], image}.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import demo_gallery, file_b64

# the reference venv tools/make_ref_venv.sh builds (absent in CI: the extra check then does nothing)
REF_PYTHON = Path(
    os.environ.get("REF_PYTHON", Path(__file__).resolve().parents[2] / ".venv-ref" / "bin" / "python")
)


def post(server, path: str, body: dict) -> dict:
    response = httpx.post(server.url + path, json=body, timeout=30)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert set(envelope) == {"logId", "errorCode", "errorMsg", "result"}
    assert (
        envelope["errorCode"] == 0
        and envelope["errorMsg"] == "Success"
        and isinstance(envelope["logId"], str)
    )
    return envelope


def check_infer_result(result: dict, width: int, height: int) -> None:
    assert set(result) == {"detectedObjects", "image"} and result["image"] is None
    [obj] = result["detectedObjects"]  # no detector: the whole image is one object
    assert obj["bbox"] == [0.0, 0.0, float(width), float(height)] and obj["score"] == 1.0
    for rec in obj["recResults"]:
        assert (
            set(rec) == {"label", "score"}
            and isinstance(rec["label"], str)
            and isinstance(rec["score"], float)
        )


def test_build_add_infer_remove_as_a_paddlex_client_does(live, tmp_path) -> None:
    paths, labels = demo_gallery(12)
    responses = {}
    build = {
        "imageLabelPairs": [{"image": file_b64(p), "label": lb} for p, lb in zip(paths[:10], labels[:10])]
    }
    responses["buildIndex"] = post(live, "/shitu-index-build", build)
    key = responses["buildIndex"]["result"]["indexKey"]
    assert responses["buildIndex"]["result"]["imageCount"] == 10

    add = {
        "imageLabelPairs": [{"image": file_b64(p), "label": lb} for p, lb in zip(paths[10:], labels[10:])],
        "indexKey": key,
    }
    responses["addImagesToIndex"] = post(live, "/shitu-index-add", add)
    assert responses["addImagesToIndex"]["result"] == {"imageCount": 12}

    infer = {
        "image": file_b64(paths[11]),
        "indexKey": key,
        "detThreshold": 0.5,
        "recThreshold": 0.0,
        "hammingRadius": 4.0,
        "topk": 3,
        "visualize": False,
    }
    responses["infer"] = post(live, "/shitu-infer", infer)
    result = responses["infer"]["result"]
    check_infer_result(result, 64, 64)  # the demo emoji are 64x64
    assert result["detectedObjects"][0]["recResults"][0]["label"] == labels[11]
    assert len(result["detectedObjects"][0]["recResults"]) == 3

    responses["removeImagesFromIndex"] = post(live, "/shitu-index-remove", {"ids": [0, 1], "indexKey": key})
    assert responses["removeImagesFromIndex"]["result"] == {"imageCount": 10}

    # stored as an index folder (faiss + JSON), never as a pickle
    stored = [Path(f).name for f in glob.glob(str(Path(live.service.store.index_dir) / key / "*"))]
    assert stored and not [f for f in stored if f.endswith((".pkl", ".pickle"))]
    (tmp_path / "responses.json").write_text(json.dumps(responses))
    _validate_with_paddlex(tmp_path / "responses.json")


def _validate_with_paddlex(saved: Path) -> None:
    """Also validate with PaddleX's own pydantic models, where the reference venv exists (not in CI)."""
    found = sorted(
        glob.glob(str(REF_PYTHON.parent.parent / "lib/python3*/site-packages/paddlex/inference/serving"))
    )
    if not REF_PYTHON.exists() or not found:
        return
    checker = Path(__file__).with_name("paddlex_schema_check.py")
    out = subprocess.run(
        [str(REF_PYTHON), str(checker), found[0], str(saved)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("valid") == 4


def test_infer_on_the_default_index_and_add_without_index_key(indexed) -> None:
    """PaddleX's addImagesToIndex without indexKey fails on an undefined name; ours uses the default index."""
    paths, labels = demo_gallery()
    body = post(indexed, "/shitu-infer", {"image": file_b64(paths[3])})
    assert body["result"]["detectedObjects"][0]["recResults"][0]["label"] == labels[3]
    added = post(
        indexed, "/shitu-index-add", {"imageLabelPairs": [{"image": file_b64(paths[3]), "label": "again"}]}
    )
    assert added["result"]["imageCount"] == 25


def test_rec_threshold_drops_results_below_it(indexed) -> None:
    paths, _ = demo_gallery()
    body = post(indexed, "/shitu-infer", {"image": file_b64(paths[0]), "recThreshold": 0.9999, "topk": 5})
    recs = body["result"]["detectedObjects"][0]["recResults"]
    assert len(recs) == 1 and recs[0]["score"] >= 0.9999  # only the image itself clears it


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/shitu-index-build", {"imageLabelPairs": [{"label": "a"}]}, "imageLabelPairs[0].image"),
        (
            "/shitu-index-build",
            {"imageLabelPairs": [{"image": "aGk=", "label": 3}]},
            "imageLabelPairs[0].label",
        ),
        ("/shitu-index-remove", {"ids": ["x"], "indexKey": "k"}, "ids[0]"),
        ("/shitu-infer", {"image": "aGk=", "topk": "many"}, "topk"),
        ("/shitu-infer", {"image": "aGk=", "indexKey": "nope"}, "indexKey"),
    ],
)
def test_schema_violations_name_the_field(live, path: str, body: dict, field: str) -> None:
    response = httpx.post(live.url + path, json=body, timeout=30)
    assert response.status_code in (400, 404)
    assert response.json()["errorCode"] == response.status_code and field in response.json()["errorMsg"]


def test_ids_missing_from_the_index_are_404(live) -> None:
    paths, labels = demo_gallery(2)
    build = post(
        live,
        "/shitu-index-build",
        {"imageLabelPairs": [{"image": file_b64(p), "label": lb} for p, lb in zip(paths, labels)]},
    )
    response = httpx.post(
        live.url + "/shitu-index-remove", json={"ids": [7, 8], "indexKey": build["result"]["indexKey"]}
    )
    assert response.status_code == 404 and "id 7" in response.json()["errorMsg"]
