"""evaluate_report.html and its PNGs: self-contained, placeholder tiles, bounded on a 100k gallery."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddlex_feat.data.lists import ListEntry, read_list
from paddlex_feat.engine import report
from paddlex_feat.metrics import calibrate, held_out_classes, retrieval_metrics

DEMO = Path(__file__).resolve().parents[2] / "dataset" / "demo"


def entries(paths, labels):
    return [ListEntry(path=p, label=int(lab), lineno=n + 1) for n, (p, lab) in enumerate(zip(paths, labels))]


def build(tmp_path, q, g, ql, gl, query_paths, gallery_paths, keep_top=5):
    held = held_out_classes(ql, gl, seed=0)
    keep = None if len(held) == 0 else ~np.isin(gl, held)
    result = retrieval_metrics(q, g, ql, gl, topk=[1, 5], keep_top=keep_top, subgallery=keep)
    cal = calibrate(result, ql, held, 0.05, seed=0)
    weights = tmp_path / "model.pdparams"
    weights.write_bytes(b"weights")
    inputs = report.ReportInputs(
        result,
        cal,
        entries(query_paths, ql),
        entries(gallery_paths, gl),
        str(tmp_path),
        "PP-ShiTuV2_rec",
        str(weights),
    )
    out = tmp_path / "out"
    fields = report.write_calibration(cal, out)
    fields.update(report.write_report(inputs, out))
    return fields, out, result


def assert_self_contained(page: str) -> None:
    assert "<link" not in page and not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # every image is a data URI
    assert "http://" not in page and "https://" not in page and "@import" not in page and "url(" not in page


def test_unreadable_images_become_counted_placeholder_tiles(tmp_path, caplog):
    demo = [e.path for e in read_list(DEMO, "gallery")[:3]]
    for p in demo:
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO / p, tmp_path / p)
    (tmp_path / "images" / "corrupt.jpg").write_text("not a jpeg")
    gallery_paths = [demo[0], "images/missing.jpg", "images/corrupt.jpg", demo[1]]
    query_paths = [demo[2], "images/gone.jpg", demo[0]]
    # Every query's nearest gallery image is of the next class: all three fail, all four gallery
    # images appear in every row (the gallery is smaller than keep_top).
    g = np.eye(4, dtype=np.float32)
    q = np.eye(4, dtype=np.float32)[[1, 2, 3]] + 0.3 * np.eye(4, dtype=np.float32)[[0, 1, 2]]
    fields, out, result = build(tmp_path, q, g, [0, 1, 2], [0, 1, 2, 3], query_paths, gallery_paths)
    assert (result.first_hit_rank > 0).all()
    assert fields["unreadable_thumbnails"] == 3  # missing.jpg, corrupt.jpg, gone.jpg
    page = (out / report.REPORT_FILE).read_text()
    assert "3 image(s) could not be read" in page and "3 image(s) could not be read" in caplog.text
    assert "images/missing.jpg" in caplog.text
    assert_self_contained(page)
    assert page.count('class="row"') == 3  # one row per failing query
    grid = cv2.imread(str(out / report.GRID_FILE))
    assert grid is not None and grid.shape[0] > 300


def test_report_shows_what_the_metric_pass_found(tmp_path):
    rng = np.random.default_rng(0)
    gallery = read_list(DEMO, "gallery")[:60]
    query = read_list(DEMO, "query")[:40]
    gl = np.array([e.label for e in gallery])
    ql = np.array([e.label for e in query])
    centres = {lab: rng.standard_normal(16) for lab in set(gl) | set(ql)}
    g = np.array([centres[lab] + 0.8 * rng.standard_normal(16) for lab in gl], np.float32)
    q = np.array([centres[lab] + 0.8 * rng.standard_normal(16) for lab in ql], np.float32)
    for e in gallery + query:
        (tmp_path / e.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DEMO / e.path, tmp_path / e.path)
    fields, out, result = build(tmp_path, q, g, ql, gl, [e.path for e in query], [e.path for e in gallery])
    page = (out / report.REPORT_FILE).read_text()
    assert_self_contained(page)
    assert fields["unreadable_thumbnails"] == 0
    for key, value in result.metrics.items():  # the summary shows every metric of the pass
        assert f"<th>{report._metric_name(key)}</th><td>{value:.4f}</td>" in page
    failing = int((result.first_hit_rank[result.num_positives > 0] > 0).sum())
    assert page.count('class="row"') == min(failing, report.NUM_WORST_HTML) > 0
    assert page.count("✗") > 0 and "Most confused classes" in page and 'class="sortable"' in page
    if fields["recommended_threshold"] is not None:
        assert f"<b>{fields['recommended_threshold']:.4f}</b>" in page
        assert cv2.imread(str(out / report.CURVE_FILE)) is not None
    assert page.count("data:image/png;base64,") >= 1  # the matplotlib plots


def test_a_100k_gallery_report_stays_small_and_reads_only_what_it_shows(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    num_g, num_q, classes = 100_000, 300, 20_000
    centres = rng.standard_normal((classes, 32)).astype(np.float32)
    gl = np.arange(num_g) % classes
    ql = rng.integers(0, classes, num_q)
    g = centres[gl] + rng.standard_normal((num_g, 32), dtype=np.float32)
    q = centres[ql] + rng.standard_normal((num_q, 32), dtype=np.float32)
    reads = []

    def noisy_image(path):  # noise is the worst case for JPEG size
        reads.append(path)
        return rng.integers(0, 256, (300, 300, 3), dtype=np.uint8), None

    monkeypatch.setattr(report, "read_bgr", noisy_image)
    gallery_paths = [f"images/g{i}.jpg" for i in range(num_g)]
    query_paths = [f"images/q{i}.jpg" for i in range(num_q)]
    fields, out, _ = build(tmp_path, q, g, ql, gl, query_paths, gallery_paths, keep_top=10)
    shown_at_most = report.NUM_WORST_HTML * (1 + 10 + 1) + 2 * report.NUM_PAIRS
    assert len(reads) == len(set(reads)) <= shown_at_most  # each shown image read once, nothing else
    assert (out / report.REPORT_FILE).stat().st_size < 10_000_000
    assert fields["calibration"]["computed"] is True  # held-out classes played the unknowns


@pytest.mark.parametrize(("topk", "shown"), [([1, 5], 5), ([1], 5), ([1, 5, 10], 10), ([50], 10)])
def test_report_shows_the_largest_k_within_limits(topk, shown):
    assert report.report_top(topk) == shown
