"""Evaluate report on a large gallery: time of the metric pass and of the report, and the report's size.

    python bench/report.py [--gallery 100000] [--queries 1000] [--dim 512]

Synthetic unit features around class centres (5 gallery images per class), every query in gallery,
so calibration holds classes out. Gallery paths cycle over dataset/demo's gallery images, so the
thumbnails are real pictures. Prints one JSON line: seconds for the blocked metric pass (with the
report's top-k and the held-out sub-gallery) and for calibration + report, and the report's MB, and the
ratio of the metric pass with the report's extras (top-k, sub-gallery) to the plain pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddlex_feat.data.lists import ListEntry, read_list  # noqa: E402
from paddlex_feat.engine import report  # noqa: E402
from paddlex_feat.metrics import calibrate, held_out_classes, retrieval_metrics  # noqa: E402


def features(labels: np.ndarray, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal((len(labels), centres.shape[1]), dtype=np.float32)
    feats = centres[labels] + np.float32(1.2 / np.sqrt(centres.shape[1])) * noise  # centre norm ~1
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    num_classes = args.gallery // 5
    centres = rng.standard_normal((num_classes, args.dim), dtype=np.float32) / np.float32(np.sqrt(args.dim))
    gl = np.arange(args.gallery) % num_classes
    ql = rng.integers(0, num_classes, args.queries)
    g, q = features(gl, centres, rng), features(ql, centres, rng)
    demo = [e.path for e in read_list(ROOT / "dataset" / "demo", "gallery")]
    gallery = [ListEntry(demo[i % len(demo)], int(lab), i + 1) for i, lab in enumerate(gl)]
    query = [ListEntry(demo[(7 * i) % len(demo)], int(lab), i + 1) for i, lab in enumerate(ql)]

    start = time.perf_counter()
    retrieval_metrics(q, g, ql, gl, topk=[1, 5], normalize=False)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    held = held_out_classes(ql, gl, seed=0)
    result = retrieval_metrics(
        q,
        g,
        ql,
        gl,
        topk=[1, 5],
        normalize=False,
        keep_top=report.report_top([1, 5]),
        subgallery=~np.isin(gl, held),
    )
    metric_s = time.perf_counter() - start
    start = time.perf_counter()
    cal = calibrate(result, ql, held, 0.05, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "w.pdparams"
        weights.write_bytes(b"0" * 1024)
        inputs = report.ReportInputs(
            result, cal, query, gallery, str(ROOT / "dataset" / "demo"), "PP-ShiTuV2_rec", str(weights)
        )
        report.write_calibration(cal, Path(tmp))
        report.write_report(inputs, Path(tmp))
        report_s = time.perf_counter() - start
        size_mb = (Path(tmp) / report.REPORT_FILE).stat().st_size / 1e6
    print(json.dumps({
        "gallery": args.gallery, "queries": args.queries, "dim": args.dim, "metric_pass_s": round(metric_s, 2),
        "metric_pass_without_report_extras_s": round(plain_s, 2), "extras_ratio": round(metric_s / plain_s, 2),
        "calibration_and_report_s": round(report_s, 2), "report_mb": round(size_mb, 2),
        "recommended_threshold": cal.threshold,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
