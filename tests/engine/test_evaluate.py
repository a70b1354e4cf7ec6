"""Global.mode=evaluate through the CLI: result file, config lookup, saved features, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml

from paddlex_feat.cli import main
from paddlex_feat.data.lists import read_list
from paddlex_feat.engine.features import extract_features
from paddlex_feat.metrics import retrieval_metrics, worst_queries
from paddlex_feat.models import build_model

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "dataset" / "demo"
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
SIZE = 32  # what the saved training config says; the shipped config leaves the model's 224
NUM_CLASSES = 7


def copy_split(src: Path, dst: Path, split: str, count: int, relabel: dict[int, int] | None = None) -> None:
    """The first ``count`` lines of a demo list and their images, labels optionally changed."""
    lines = []
    for e in read_list(src, split)[:count]:
        (dst / e.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / e.path, dst / e.path)
        lines.append(f"{e.path} {relabel.get(e.label, e.label) if relabel else e.label}\n")
    (dst / f"{split}.txt").write_text("".join(lines))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """16 queries and 12 gallery images of the demo set (some queries have no match)."""
    root = tmp_path / "data"
    copy_split(DEMO, root, "query", 16)
    copy_split(DEMO, root, "gallery", 12)
    return root


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A training run's layout: run/config.yaml and run/best_model/best_model.pdparams."""
    paddle.seed(1)
    model = build_model("PP-ShiTuV2_rec", NUM_CLASSES)
    weights = tmp_path / "run" / "best_model" / "best_model.pdparams"
    weights.parent.mkdir(parents=True)
    paddle.save(model.state_dict(), str(weights))
    saved = {"Global": {"model": "PP-ShiTuV2_rec"}, "Train": {"input_size": SIZE, "num_classes": NUM_CLASSES}}
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    return weights


def evaluate(tmp_path: Path, dataset: Path, weights, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    rc = main(
        ["-c", str(CONFIG), "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={dataset}",
         "-o", f"Global.output={out}", "-o", "Global.device=cpu", "-o", f"Evaluate.weight_path={weights}",
         "-o", "Evaluate.num_workers=0", *extra]
    )  # fmt: skip
    return rc, json.loads((out / "evaluate_result.json").read_text())


def test_evaluate_writes_metrics_of_the_saved_features(tmp_path, dataset, checkpoint):
    rc, result = evaluate(
        tmp_path, dataset, checkpoint, "-o", "Evaluate.topk=[1,3]", "-o", "Evaluate.save_features=True"
    )
    assert rc == 0 and result["done_flag"] is True
    assert set(result["metrics"]) == {"recall1", "recall3", "precision1", "precision3", "mAP", "mINP"}
    saved = {n: np.load(tmp_path / "out" / "features" / f"{n}.npy") for n in
             ("query_features", "query_labels", "gallery_features", "gallery_labels")}  # fmt: skip
    assert saved["query_features"].shape == (16, 512) and saved["gallery_features"].shape == (12, 512)
    assert saved["query_labels"].tolist() == [e.label for e in read_list(dataset, "query")]
    # The run used the saved config's input size: features match a direct eager extraction at SIZE.
    model = build_model("PP-ShiTuV2_rec", NUM_CLASSES)
    model.set_state_dict(paddle.load(str(checkpoint)))
    direct = extract_features(model, read_list(dataset, "gallery"), dataset, SIZE, 8, 0,
                              model_name="PP-ShiTuV2_rec", mode="eager")  # fmt: skip
    assert np.sum(direct * saved["gallery_features"], axis=1).min() > 0.9999
    again = retrieval_metrics(saved["query_features"], saved["gallery_features"], saved["query_labels"],
                              saved["gallery_labels"], topk=[1, 3])  # fmt: skip
    gallery_labels = {e.label for e in read_list(dataset, "gallery")}
    unmatched = sum(e.label not in gallery_labels for e in read_list(dataset, "query"))
    assert unmatched > 0 and again.num_unmatched == unmatched
    assert result["metrics"] == pytest.approx(again.metrics)
    # The two unmatched queries are the unknowns of the calibration; the report and PNGs are written.
    assert (
        result["calibration"]["computed"] is True
        and result["calibration"]["out_of_gallery_source"] == "query list"
    )
    assert result["calibration"]["out_of_gallery_queries"] == unmatched
    assert isinstance(result["recommended_threshold"], float)
    assert result["calibration"]["false_accept"] <= 0.05
    for name in ("evaluate_report.html", "evaluate_worst_queries.png", "evaluate_calibration.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000
    assert result["report"] == "evaluate_report.html" and result["unreadable_thumbnails"] == 0
    log = (tmp_path / "out" / "evaluate.log").read_text()
    assert f"Recommended Index.score_threshold {result['recommended_threshold']:.4f}" in log
    assert f"{unmatched} of 16 queries have no same-label gallery image" in log
    # a random-init model (seed 1) gets some top-1 matches wrong: the log names the worst of them
    failing = int((again.first_hit_rank > 0).sum())
    worst = worst_queries(again, 10)
    assert failing > 0 and len(worst) == min(failing, 10)
    assert f"{len(worst)} worst of {failing} queries whose top-1 match is wrong" in log
    query, gallery = read_list(dataset, "query"), read_list(dataset, "gallery")
    first = query[worst[0]]
    top_wrong = gallery[again.top_wrong_index[worst[0]]]
    assert (
        f"query {first.path} (label {first.label}): first correct match at rank {again.first_hit_rank[worst[0]] + 1}"
        in log
    )
    assert f"top-1 is {top_wrong.path} (label {top_wrong.label}" in log


def test_eager_backend_gives_the_same_metrics(tmp_path, dataset, checkpoint):
    rc_fast, fast = evaluate(tmp_path, dataset, checkpoint)
    rc_eager, eager = evaluate(tmp_path, dataset, checkpoint, "-o", "Evaluate.backend=eager")
    assert rc_fast == rc_eager == 0
    assert eager["metrics"] == pytest.approx(fast["metrics"], abs=1e-6)
    log = (tmp_path / "out" / "evaluate.log").read_text()
    assert "images/s, inference)" in log and "images/s, eager)" in log


# ---- bad input: one test each


def test_missing_weight_file(tmp_path, dataset):
    rc, result = evaluate(tmp_path, dataset, tmp_path / "nope" / "best_model.pdparams")
    assert rc == 1 and result["done_flag"] is False
    assert result["err_type"] == "ModelError"
    assert "Evaluate.weight_path" in result["err_msg"] and "not found" in result["err_msg"]


def test_weight_path_not_set(tmp_path, dataset):
    rc, result = evaluate(tmp_path, dataset, "null")
    assert rc == 1 and result["err_type"] == "ConfigError"
    assert "Evaluate.weight_path is not set" in result["err_msg"]


def test_weight_file_that_is_not_a_checkpoint(tmp_path, dataset):
    bogus = tmp_path / "best_model.pdparams"
    bogus.write_text("these are not weights\n")
    rc, result = evaluate(tmp_path, dataset, bogus)
    assert rc == 1 and result["err_type"] == "ModelError"
    assert "is not a Paddle checkpoint" in result["err_msg"]


@pytest.mark.parametrize("split", ["query", "gallery"])
def test_missing_list(tmp_path, dataset, checkpoint, split):
    (dataset / f"{split}.txt").unlink()
    rc, result = evaluate(tmp_path, dataset, checkpoint)
    assert rc == 1 and result["err_type"] == "DatasetError"
    assert f"{split}.txt does not exist" in result["err_msg"]


@pytest.mark.parametrize("split", ["query", "gallery"])
def test_empty_list(tmp_path, dataset, checkpoint, split):
    (dataset / f"{split}.txt").write_text("\n\n")
    rc, result = evaluate(tmp_path, dataset, checkpoint)
    assert rc == 1 and result["err_type"] == "DatasetError"
    assert f"{split}.txt is empty" in result["err_msg"]


def test_listed_image_missing(tmp_path, dataset, checkpoint):
    first = read_list(dataset, "gallery")[0]
    (dataset / first.path).unlink()
    rc, result = evaluate(tmp_path, dataset, checkpoint)
    assert rc == 1 and result["err_type"] == "DatasetError"
    assert f"gallery.txt:1: {first.path}" in result["err_msg"]


def test_no_query_with_a_same_label_gallery_image(tmp_path, checkpoint):
    root = tmp_path / "disjoint"
    copy_split(DEMO, root, "query", 6)
    copy_split(
        DEMO,
        root,
        "gallery",
        6,
        relabel={e.label: 9000 + i for i, e in enumerate(read_list(DEMO, "gallery"))},
    )
    rc, result = evaluate(tmp_path, root, checkpoint)
    assert rc == 1 and result["err_type"] == "DatasetError"
    assert "No query has a same-label gallery image" in result["err_msg"]
    assert "NaN" not in json.dumps(result)


def test_weights_of_another_model(tmp_path, dataset):
    other = tmp_path / "other.pdparams"
    paddle.save(paddle.nn.Linear(4, 3).state_dict(), str(other))
    rc, result = evaluate(tmp_path, dataset, other)
    assert rc == 1 and result["err_type"] == "ModelError"
    assert "shares no tensor" in result["err_msg"]


def test_weights_that_only_partly_fit(tmp_path, dataset, checkpoint):
    state = paddle.load(str(checkpoint))
    neck = [k for k in state if k.startswith("neck.")]
    assert neck, "the model has a neck"
    for key in neck:  # a neck trained for another feature size
        state[key] = paddle.zeros([d + 1 for d in state[key].shape])
    paddle.save(state, str(checkpoint))
    rc, result = evaluate(tmp_path, dataset, checkpoint)
    assert rc == 1 and result["err_type"] == "ModelError"
    assert "does not fit PP-ShiTuV2_rec" in result["err_msg"] and neck[0] in result["err_msg"]


def test_calibration_that_cannot_be_computed_leaves_the_rest_of_evaluate(tmp_path, checkpoint):
    # One class on both sides: no unknown query, and holding the one class out would leave nothing.
    root = tmp_path / "one_class"
    one = {e.label: 5 for e in read_list(DEMO, "gallery") + read_list(DEMO, "query")}
    copy_split(DEMO, root, "query", 4, relabel=one)
    copy_split(DEMO, root, "gallery", 5, relabel=one)
    rc, result = evaluate(tmp_path, root, checkpoint)
    assert rc == 0 and result["done_flag"] is True and result["metrics"]["recall1"] == 1.0
    assert result["recommended_threshold"] is None
    assert (
        result["calibration"]["computed"] is False
        and "no class can be held out" in result["calibration"]["reason"]
    )
    log = (tmp_path / "out" / "evaluate.log").read_text()
    assert "The open-set threshold cannot be computed: every query's class has a gallery image" in log
    page = (tmp_path / "out" / "evaluate_report.html").read_text()
    assert 'No "unknown" threshold' in page  # the report says so too
    assert not (tmp_path / "out" / "evaluate_calibration.png").exists()


def test_held_out_classes_equal_error_and_no_report(tmp_path, dataset, checkpoint):
    gallery_labels = {e.label for e in read_list(dataset, "gallery")}
    matched = [
        line
        for line in (dataset / "query.txt").read_text().splitlines()
        if int(line.split()[1]) in gallery_labels
    ]
    (dataset / "query.txt").write_text("\n".join(matched) + "\n")
    rc, result = evaluate(
        tmp_path, dataset, checkpoint, "-o", "Evaluate.report=False", "-o", "Evaluate.max_false_accept=null"
    )
    assert rc == 0
    cal = result["calibration"]
    assert cal["computed"] is True and cal["rule"] == "equal_error"
    assert cal["out_of_gallery_source"] == "held-out classes" and cal["seed"] == 42
    held = cal["held_out_labels"]
    assert 1 <= len(held) < len(gallery_labels) and set(held) <= gallery_labels
    assert cal["out_of_gallery_queries"] == sum(int(line.split()[1]) in held for line in matched)
    assert (tmp_path / "out" / "evaluate_calibration.png").is_file()
    assert not (tmp_path / "out" / "evaluate_report.html").exists() and "report" not in result
    assert (
        f"held-out classes, seed 42: {', '.join(map(str, held))}"
        in (tmp_path / "out" / "evaluate.log").read_text()
    )


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_max_false_accept_outside_zero_one(tmp_path, dataset, checkpoint, value):
    rc, result = evaluate(tmp_path, dataset, checkpoint, "-o", f"Evaluate.max_false_accept={value}")
    assert rc == 1 and result["done_flag"] is False and result["err_type"] == "ConfigError"
    assert f"Evaluate.max_false_accept={float(value)}" in result["err_msg"] and "[0, 1)" in result["err_msg"]
