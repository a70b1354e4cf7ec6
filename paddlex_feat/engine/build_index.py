"""Global.mode=build_index: embed a gallery into an index folder; an existing index is synced.

A first run builds ``Index.path``; a later run with the same model updates it in place from the
gallery (only new or changed images are embedded, deleted ones are dropped), so adding products
never re-embeds the whole gallery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from ..utils.logger import logger
from .predict import model_from_config


def run(cfg: dict) -> dict[str, Any]:
    """Run the build_index mode; returns the content of ``build_index_result.json``."""
    from ..retrieval import GalleryIndex
    from ..retrieval.folder import index_exists

    idx_cfg, pred = cfg["Index"], cfg["Predict"]
    if idx_cfg["gallery"] is None:
        raise ConfigError(
            "Index.gallery is not set; pass a list file or a folder of label sub-folders, "
            "e.g. -o Index.gallery=dataset/demo/gallery.txt."
        )
    model = model_from_config(cfg, idx_cfg["model_dir"], idx_cfg["batch_size"])
    path = Path(idx_cfg["path"])
    if index_exists(path):
        index = GalleryIndex.load(path, model=model)
        logger.info(f"{path} holds an index of {len(index)} items; syncing it with {idx_cfg['gallery']}")
        report = index.sync(
            model, idx_cfg["gallery"], label_map=idx_cfg["label_map"], skip_errors=pred["skip_errors"]
        )
        if idx_cfg["score_threshold"] is not None:
            index.meta.score_threshold = idx_cfg["score_threshold"]
        action = "sync"
    else:
        index = GalleryIndex.build(
            model,
            idx_cfg["gallery"],
            index_type=idx_cfg["index_type"],
            metric=idx_cfg["metric"],
            memory_budget_mb=idx_cfg["memory_budget_mb"],
            nprobe=idx_cfg["nprobe"],
            ef_search=idx_cfg["ef_search"],
            score_threshold=idx_cfg["score_threshold"],
            label_map=idx_cfg["label_map"],
            skip_errors=pred["skip_errors"],
        )
        report = index.last_report
        report.added = [rec.id for rec in index.items()]
        action = "build"
    if action == "build" or report.added or report.removed or idx_cfg["score_threshold"] is not None:
        index.save(path)
    meta = index.meta
    logger.info(
        f"Index {path}: {len(index)} items, {meta.index_type}, {len(report.added)} added, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged"
    )
    return {
        "done_flag": True,
        "action": action,
        "index_path": str(path),
        "count": len(index),
        "index_type": meta.index_type,
        "recall_at_10": meta.recall_at_10,
        "model_name": meta.model_name,
        "num_added": len(report.added),
        "num_removed": len(report.removed),
        "num_unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "skipped": report.errors,
    }
