"""Index.score_threshold=auto: evaluate's recommended threshold, found beside the model, recorded in the index."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest

from paddlex_feat.cli import main
from paddlex_feat.engine.score_threshold import resolve_score_threshold
from paddlex_feat.utils.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from infer_helpers import random_bgr, save_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
CALIBRATION = {"computed": True, "rule": "max_false_accept=0.05", "false_accept": 0.04, "false_reject": 0.3}


def evaluate_result(threshold, **extra) -> dict:
    """What evaluate writes (the fields auto reads)."""
    result = {"done_flag": True, "metrics": {"recall1": 0.5}, "recommended_threshold": threshold}
    result["calibration"] = (
        CALIBRATION if threshold is not None else {"computed": False, "reason": "no unknowns"}
    )
    result.update(extra)
    return result


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A training run's layout: run/best_model/inference/ (the model), evaluate writes run/evaluate_result.json."""
    model_dir = tmp_path / "run" / "best_model" / "inference"
    model_dir.mkdir(parents=True)
    save_tiny_model(model_dir)
    return tmp_path / "run"


def test_numbers_and_null_pass_through():
    assert resolve_score_threshold(None, "anywhere") == (None, None)
    assert resolve_score_threshold(0.42, "anywhere") == (0.42, {"from": "Index.score_threshold"})


def test_auto_reads_the_nearest_evaluate_result(run_dir):
    model_dir = run_dir / "best_model" / "inference"
    (run_dir / "evaluate_result.json").write_text(json.dumps(evaluate_result(0.6123)))
    threshold, source = resolve_score_threshold("auto", str(model_dir))
    assert threshold == 0.6123
    assert source == {"from": "auto", "evaluate_result": str((run_dir / "evaluate_result.json").resolve()),
                      **{k: CALIBRATION[k] for k in ("rule", "false_accept", "false_reject")}}  # fmt: skip
    (model_dir.parent / "evaluate_result.json").write_text(json.dumps(evaluate_result(0.7)))
    assert resolve_score_threshold("auto", str(model_dir))[0] == 0.7  # nearer the model wins


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "found no evaluate_result.json for the model"),
        ("{not json", "is not readable JSON"),
        (json.dumps([1, 2]), "not a JSON object"),
        (
            json.dumps({"done_flag": False, "err_msg": "weights missing"}),
            "records a failed evaluate (weights missing)",
        ),
        (json.dumps({"done_flag": True, "metrics": {}}), "has no recommended_threshold"),
        (json.dumps(evaluate_result(None)), "could not be calibrated: no unknowns"),
        (json.dumps(evaluate_result("high")), "not a number"),
    ],
)
def test_auto_without_a_usable_evaluate_result_names_the_file_and_the_fix(run_dir, content, message):
    if content is not None:
        (run_dir / "evaluate_result.json").write_text(content)
    with pytest.raises(ConfigError, match="Index.score_threshold=auto") as err:
        resolve_score_threshold("auto", str(run_dir / "best_model" / "inference"))
    assert message in str(err.value)
    assert "evaluate" in str(err.value)  # says how to fix it


def cli(tmp_path: Path, mode: str, *extra: str) -> tuple[int, dict]:
    out = tmp_path / f"out_{mode}"
    rc = main(["-c", str(CONFIG), "-o", f"Global.mode={mode}", "-o", f"Global.output={out}",
               "-o", "Global.device=cpu", "-o", "Predict.cpu_threads=1", *extra])  # fmt: skip
    return rc, json.loads((out / f"{mode}_result.json").read_text())


def test_auto_end_to_end_build_index_records_it_and_search_answers_unknown_under_it(tmp_path, run_dir):
    shop = tmp_path / "shop"
    (shop / "images").mkdir(parents=True)
    lines = []
    for i in range(8):
        cv2.imwrite(str(shop / "images" / f"p{i}.png"), random_bgr(i))
        lines.append(f"images/p{i}.png item{i % 4}\n")
    (shop / "gallery.txt").write_text("".join(lines))
    queries = tmp_path / "queries"
    queries.mkdir()
    for i in range(6):
        cv2.imwrite(str(queries / f"q{i}.png"), random_bgr(100 + i))
    model_dir = run_dir / "best_model" / "inference"
    common = ["-o", f"Index.model_dir={model_dir}", "-o", f"Index.path={tmp_path / 'index'}"]

    # First a search without a threshold, to place one between the queries' top-1 scores.
    (run_dir / "evaluate_result.json").write_text(json.dumps(evaluate_result(None)))
    rc, built = cli(tmp_path, "build_index", *common, "-o", f"Index.gallery={shop / 'gallery.txt'}")
    assert rc == 0 and built["score_threshold"] is None
    rc, plain = cli(tmp_path, "search", *common, "-o", f"Predict.input={queries}")
    top1 = sorted(r["scores"][0] for r in plain["results"])
    threshold = round((top1[2] + top1[3]) / 2, 4)
    (run_dir / "evaluate_result.json").write_text(json.dumps(evaluate_result(threshold)))

    rc, built = cli(tmp_path, "build_index", *common, "-o", f"Index.gallery={shop / 'gallery.txt'}",
                    "-o", "Index.score_threshold=auto")  # fmt: skip
    assert rc == 0 and built["score_threshold"] == threshold
    meta = json.loads((tmp_path / "index" / "meta.json").read_text())
    assert meta["score_threshold"] == threshold
    assert meta["score_threshold_source"]["from"] == "auto"
    assert meta["score_threshold_source"]["evaluate_result"] == str(
        (run_dir / "evaluate_result.json").resolve()
    )
    # A search with no threshold set uses the index's recorded one, and says where it came from.
    rc, found = cli(tmp_path, "search", *common, "-o", f"Predict.input={queries}")
    assert (
        rc == 0
        and found["score_threshold"] == threshold
        and found["score_threshold_source"]["from"] == "auto"
    )
    unknown = [r["label"] == "unknown" for r in found["results"]]
    assert unknown == [r["scores"][0] < threshold for r in found["results"]] and sum(unknown) == 3


def test_auto_with_no_evaluate_result_fails_build_index_before_embedding(tmp_path, run_dir):
    rc, result = cli(tmp_path, "build_index", "-o", f"Index.model_dir={run_dir / 'best_model' / 'inference'}",
                     "-o", f"Index.gallery={tmp_path}", "-o", "Index.score_threshold=auto",
                     "-o", f"Index.path={tmp_path / 'index'}")  # fmt: skip
    assert rc == 1 and result["done_flag"] is False and result["err_type"] == "ConfigError"
    assert "found no evaluate_result.json" in result["err_msg"]
    assert not (tmp_path / "index").exists()


def test_a_word_other_than_auto_is_a_usage_error(capsys):
    rc = main(["-c", str(CONFIG), "-o", "Global.mode=search", "-o", "Index.score_threshold=high"])
    assert rc == 2
    assert "Index.score_threshold must be a number or 'auto' or null, got 'high'" in capsys.readouterr().err
