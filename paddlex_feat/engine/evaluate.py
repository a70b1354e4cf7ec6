"""Global.mode=evaluate: recall@k, precision@k, mAP and mINP of a checkpoint on the query/gallery lists.

It also calibrates the open-set ("unknown") score threshold and writes the visual report
(``report.py``), both from the one metric pass.

The model name, class count and input size are the checkpoint's facts (``TrainedCheckpoint``,
the one reader of a trained model); a key set on the command line wins. Training's per-epoch
evaluation calls ``evaluate_model`` too, so the two cannot disagree.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.lists import ListEntry, bounded_lines, read_list
from ..metrics import RetrievalResult, calibrate, held_out_classes, retrieval_metrics, worst_queries
from ..utils.errors import ConfigError, DatasetError
from ..utils.io import atomic_write_bytes
from ..utils.logger import logger
from .checkpoint import TrainedCheckpoint
from .features import FeatureExtractor
from .report import ReportInputs, report_top, write_calibration, write_report

WEIGHT_KEY = "Evaluate.weight_path"
NUM_WORST = 10


def run(cfg: dict) -> dict:
    """Run the evaluate mode; returns the content of `evaluate_result.json`."""
    import paddle

    from ..utils.device import set_device

    g, ev = cfg["Global"], cfg["Evaluate"]
    _check_max_false_accept(ev["max_false_accept"])
    query, gallery = _read_eval_lists(g["dataset_dir"])
    set_device(g["device"])
    paddle.seed(g["seed"])
    model, facts = TrainedCheckpoint.load(cfg["Evaluate"]["weight_path"], cfg, WEIGHT_KEY)
    logger.info(
        f"Evaluating {facts.weights} ({facts.model_name}, input {facts.input_size}) on {len(query)} queries "
        f"against {len(gallery)} gallery images of {g['dataset_dir']}"
    )
    query_labels = [e.label for e in query]
    held_out = held_out_classes(query_labels, [e.label for e in gallery], g["seed"])
    result = evaluate_model(
        model,
        cfg,
        gallery,
        query,
        facts.input_size,
        model_name=facts.model_name,
        keep_top=report_top(ev["topk"]),
        held_out=held_out,
    )
    logger.info("Evaluation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))
    calibration = calibrate(result, query_labels, held_out, ev["max_false_accept"], g["seed"])
    outputs = write_calibration(calibration, Path(g["output"]))
    if ev["report"]:
        inputs = ReportInputs(
            result, calibration, query, gallery, g["dataset_dir"], facts.model_name, str(facts.weights)
        )
        outputs.update(write_report(inputs, Path(g["output"])))
    return {"done_flag": True, "metrics": result.metrics, **outputs}


def evaluate_model(
    model,
    cfg: dict,
    gallery: Sequence[ListEntry],
    query: Sequence[ListEntry],
    input_size: int,
    model_name: str | None = None,
    keep_top: int = 0,
    held_out: np.ndarray | None = None,
) -> RetrievalResult:
    """Features of query and gallery (the shared extraction), metrics, worst-query log, saved features.

    ``keep_top`` and ``held_out`` (classes set aside for calibration) go to ``retrieval_metrics``.
    """
    g, ev = cfg["Global"], cfg["Evaluate"]
    extractor = FeatureExtractor(
        model,
        input_size,
        ev["batch_size"],
        ev["num_workers"],
        model_name=model_name or g["model"],
        mode=ev.get("backend", "auto"),
    )
    query_feats = extractor.extract(query, g["dataset_dir"], "query.txt")
    gallery_feats = extractor.extract(gallery, g["dataset_dir"], "gallery.txt")
    gallery_labels = [e.label for e in gallery]
    result = retrieval_metrics(
        query_feats,
        gallery_feats,
        [e.label for e in query],
        gallery_labels,
        topk=ev["topk"],
        query_ids=[e.uid for e in query],
        gallery_ids=[e.uid for e in gallery],
        normalize=False,  # FeatureExtractor returns unit features
        keep_top=keep_top,
        subgallery=None if held_out is None or not len(held_out) else ~np.isin(gallery_labels, held_out),
    )
    if result.num_unmatched:
        logger.warning(
            f"{result.num_unmatched} of {result.num_queries} queries have no same-label gallery image "
            "and are left out of the metrics."
        )
    log_worst_queries(result, query, gallery)
    if ev["save_features"]:
        _save_features(Path(g["output"]) / "features", query_feats, gallery_feats, query, gallery)
    return result


def log_worst_queries(
    result: RetrievalResult, query: Sequence[ListEntry], gallery: Sequence[ListEntry], n: int = NUM_WORST
) -> None:
    """Log the queries whose first correct match ranks lowest, with the wrong match that beat it."""
    worst = worst_queries(result, n)
    if not worst:
        logger.info("Every query's top-1 match is correct.")
        return
    lines = []
    for i in worst:
        q, wrong = query[i], gallery[result.top_wrong_index[i]]
        best = gallery[result.best_positive_index[i]]
        lines.append(
            f"  query {q.path} (label {q.label}): first correct match at rank "
            f"{result.first_hit_rank[i] + 1} ({best.path}, score {result.best_positive_score[i]:.3f}); "
            f"top-1 is {wrong.path} (label {wrong.label}, score {result.top_wrong_score[i]:.3f})"
        )
    failing = int((result.first_hit_rank > 0).sum())
    logger.info(f"{len(worst)} worst of {failing} queries whose top-1 match is wrong:\n" + "\n".join(lines))


def _check_max_false_accept(value: float | None) -> None:
    if value is not None and not 0.0 <= value < 1.0:
        raise ConfigError(
            f"Evaluate.max_false_accept={value} is not a share in [0, 1): it is the share of unknown queries "
            "allowed an answer (e.g. 0.05), or null for the equal-error threshold."
        )


def _read_eval_lists(dataset_dir: str) -> tuple[list[ListEntry], list[ListEntry]]:
    """query.txt and gallery.txt of the dataset, both required and non-empty."""
    if not os.path.isdir(dataset_dir):
        raise DatasetError(
            f"Global.dataset_dir={dataset_dir!r} does not exist. Point it at a ShiTuRecDataset folder "
            "holding query.txt and gallery.txt."
        )
    query = read_list(dataset_dir, "query")
    gallery = read_list(dataset_dir, "gallery")
    missing = [
        f"{name}.txt:{e.lineno}: {e.path}"
        for name, entries in (("query", query), ("gallery", gallery))
        for e in entries
        if not os.path.isfile(os.path.join(dataset_dir, e.path))
    ]
    if missing:
        raise DatasetError(
            f"{len(missing)} listed image(s) do not exist under {dataset_dir}:\n{bounded_lines(missing)}\n"
            "Fix those lines or run -o Global.mode=check_dataset."
        )
    return query, gallery


def _save_features(
    folder: Path,
    query_feats: np.ndarray,
    gallery_feats: np.ndarray,
    query: Sequence[ListEntry],
    gallery: Sequence[ListEntry],
) -> None:
    """query/gallery features and labels as .npy files, for offline analysis."""
    arrays = {
        "query_features": query_feats,
        "query_labels": np.array([e.label for e in query], dtype=np.int64),
        "gallery_features": gallery_feats,
        "gallery_labels": np.array([e.label for e in gallery], dtype=np.int64),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array)
        atomic_write_bytes(folder / f"{name}.npy", buffer.getvalue())
    logger.info(f"Saved query/gallery features and labels under {folder}")
