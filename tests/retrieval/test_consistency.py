"""Consistency: the index agrees with evaluate, and a saved index answers the same in a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import paddle
import pytest
import yaml

from paddlex_feat import build_index, create_model, load_index
from paddlex_feat.cli import main
from paddlex_feat.data.lists import read_list
from paddlex_feat.engine.export import export_inference
from paddlex_feat.models import build_model

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "dataset" / "demo"
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
SIZE = 32
NUM_CLASSES = 7


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A checkpoint of a (random-init) PP-ShiTuV2_rec with its config.yaml, and its exported inference folder."""
    root = tmp_path_factory.mktemp("run")
    paddle.seed(3)
    model = build_model("PP-ShiTuV2_rec", NUM_CLASSES)
    model.eval()
    (root / "best_model").mkdir()
    paddle.save(model.state_dict(), str(root / "best_model" / "best_model.pdparams"))
    saved = {"Global": {"model": "PP-ShiTuV2_rec"}, "Train": {"input_size": SIZE, "num_classes": NUM_CLASSES}}
    (root / "config.yaml").write_text(yaml.safe_dump(saved))
    export_inference(model, "PP-ShiTuV2_rec", root / "best_model" / "inference", input_size=SIZE)
    return root


def test_exact_index_recall_at_1_equals_evaluate_recall1(run_dir, tmp_path):
    rc = main(
        ["-c", str(CONFIG), "-o", "Global.mode=evaluate", "-o", f"Global.dataset_dir={DEMO}",
         "-o", f"Global.output={tmp_path}", "-o", "Global.device=cpu",
         "-o", f"Evaluate.weight_path={run_dir / 'best_model' / 'best_model.pdparams'}",
         "-o", "Evaluate.num_workers=0"]
    )  # fmt: skip
    assert rc == 0
    recall1 = json.loads((tmp_path / "evaluate_result.json").read_text())["metrics"]["recall1"]

    model = create_model("PP-ShiTuV2_rec", model_dir=str(run_dir / "best_model" / "inference"), batch_size=32)
    index = build_index(model, str(DEMO / "gallery.txt"), index_type="Flat")
    query = read_list(DEMO, "query")
    gallery_labels = {str(e.label) for e in read_list(DEMO, "gallery")}
    results = index.search([str(DEMO / e.path) for e in query], top_k=1)
    judged = [
        (res["label"], str(e.label)) for res, e in zip(results, query) if str(e.label) in gallery_labels
    ]
    ours = sum(found == truth for found, truth in judged) / len(judged)
    assert 0.0 < ours < 1.0  # a random-init model: some right, some wrong, so the check can fail
    assert ours == pytest.approx(recall1, abs=1e-9)


def test_a_saved_index_answers_the_same_in_a_new_process(run_dir, tmp_path):
    model = create_model("PP-ShiTuV2_rec", model_dir=str(run_dir / "best_model" / "inference"), batch_size=32)
    index = build_index(model, str(DEMO / "gallery.txt"), index_type="HNSW")
    index.remove(labels=["300"])
    index.save(tmp_path / "idx")
    queries = [str(DEMO / e.path) for e in read_list(DEMO, "query")[:20]]
    here = [
        (r["ids"], r["labels"]) for r in load_index(tmp_path / "idx", model=model).search(queries, top_k=5)
    ]
    script = (
        "import json, sys\nfrom paddlex_feat import load_index\n"
        "idx = load_index(sys.argv[1])\n"  # the model comes back from meta.json's model_dir
        "print(json.dumps([[r['ids'], r['labels']] for r in idx.search(sys.argv[2:], top_k=5)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "idx"), *queries],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert [[ids, labels] for ids, labels in here] == there
    assert all(len(ids) == 5 for ids, _ in here)
