"""Global.mode=build_index: embed a gallery into an index folder; an existing index is synced.

A first run builds ``Index.path``; a later run with the same model updates it in place from the
gallery (only new or changed images are embedded, deleted ones are dropped), so adding products
never re-embeds the whole gallery. With ``Index.backend=milvus`` the gallery goes into a Milvus
collection instead (``run_milvus``: sharded, resumable); when ``Index.gallery`` names an index (a
faiss folder or a ``milvus://`` URL) its vectors are copied across backends (``run_move``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from ..utils.logger import logger
from .predict import model_from_config
from .score_threshold import resolve_score_threshold


def run(cfg: dict) -> dict[str, Any]:
    """Run the build_index mode; returns the content of ``build_index_result.json``."""
    from ..retrieval import GalleryIndex
    from ..retrieval.folder import index_exists
    from ..retrieval.move import is_index_source

    idx_cfg, pred = cfg["Index"], cfg["Predict"]
    if idx_cfg["gallery"] is None:
        raise ConfigError(
            "Index.gallery is not set; pass a list file or a folder of label sub-folders, "
            "e.g. -o Index.gallery=dataset/demo/gallery.txt."
        )
    if is_index_source(idx_cfg["gallery"]):  # an index to copy between backends: nothing to embed
        return run_move(cfg)
    threshold, threshold_source = resolve_score_threshold(
        idx_cfg["score_threshold"], idx_cfg["model_dir"] or pred["model_dir"]
    )
    model = model_from_config(cfg, idx_cfg["model_dir"], idx_cfg["batch_size"])
    if idx_cfg["backend"] == "milvus":
        return run_milvus(cfg, model, threshold, threshold_source)
    path = Path(idx_cfg["path"])
    if index_exists(path):
        index = GalleryIndex.load(path, model=model)
        logger.info(f"{path} holds an index of {len(index)} items; syncing it with {idx_cfg['gallery']}")
        report = index.sync(
            model,
            idx_cfg["gallery"],
            label_map=idx_cfg["label_map"],
            skip_errors=pred["skip_errors"],
            rehash=idx_cfg["rehash"],
        )
        if threshold is not None:
            index.meta.score_threshold = threshold
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
            score_threshold=threshold,
            label_map=idx_cfg["label_map"],
            skip_errors=pred["skip_errors"],
        )
        report = index.last_report
        report.added = [rec.id for rec in index.items()]
        action = "build"
    if threshold is not None:
        index.meta.score_threshold_source = threshold_source
    if action == "build" or report.added or report.removed or threshold is not None:
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
        "score_threshold": meta.score_threshold,
        "score_threshold_source": meta.score_threshold_source,
        "model_name": meta.model_name,
        "num_added": len(report.added),
        "num_removed": len(report.removed),
        "num_unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "skipped": report.errors,
    }


def run_milvus(
    cfg: dict, model: Any, threshold: float | None = None, threshold_source: dict | None = None
) -> dict[str, Any]:
    """build_index into a Milvus collection: this shard's missing images only, resumable (see milvus_build)."""
    from ..config.loader import parse_shard
    from ..retrieval.milvus_build import IndexOptions, fill_collection, target_from_config

    idx_cfg = cfg["Index"]
    target = target_from_config(idx_cfg)
    shard = parse_shard(idx_cfg["shard"])
    options = IndexOptions(
        idx_cfg["index_type"],
        idx_cfg["metric"],
        idx_cfg["memory_budget_mb"],
        idx_cfg["nprobe"],
        idx_cfg["ef_search"],
        threshold,
        threshold_source,
    )
    index, report = fill_collection(
        model,
        idx_cfg["gallery"],
        target,
        shard=shard,
        create=idx_cfg["create"],
        options=options,
        label_map=idx_cfg["label_map"],
        skip_errors=cfg["Predict"]["skip_errors"],
        rehash=idx_cfg["rehash"],
    )
    with index:
        meta, count = index.meta, len(index)
    return {
        "done_flag": True,
        "action": "fill" if shard else "sync",
        "backend": "milvus",
        "uri": target.uri,
        "collection": target.collection,
        "shard": idx_cfg["shard"],
        "count": count,
        "index_type": meta.index_type,
        "recall_at_10": meta.recall_at_10,
        "model_name": meta.model_name,
        "score_threshold": meta.score_threshold,
        "score_threshold_source": meta.score_threshold_source,
        "num_added": len(report.added),
        "num_removed": len(report.removed),
        "num_unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "skipped": report.errors,
    }


def run_move(cfg: dict) -> dict[str, Any]:
    """Index.gallery is an index: copy its vectors, without re-embedding, to the Index.backend destination
    (a faiss folder -> a Milvus collection, or milvus://... -> the Index.path folder)."""
    from ..retrieval.milvus_build import target_from_config
    from ..retrieval.milvus_store import parse_milvus_url
    from ..retrieval.move import collection_to_folder, folder_to_collection

    idx_cfg = cfg["Index"]
    source = str(idx_cfg["gallery"])
    if idx_cfg["backend"] == "milvus":
        if source.startswith("milvus"):
            raise ConfigError(
                f"Index.gallery={source} is a collection and Index.backend=milvus: copy it with Milvus's own tools, "
                "or export it first (-o Index.backend=faiss -o Index.path=FOLDER)."
            )
        target = target_from_config(idx_cfg)
        index = folder_to_collection(source, target, create=idx_cfg["create"])
        destination = str(target)
    elif not source.startswith("milvus"):
        raise ConfigError(
            f"Index.gallery={source} is already an index folder. To copy it into a Milvus collection add "
            "-o Index.backend=milvus; to rebuild it, point Index.gallery at the images' list file or folder."
        )
    else:
        index = collection_to_folder(parse_milvus_url(source, idx_cfg["token"]), idx_cfg["path"])
        destination = idx_cfg["path"]
    with index:
        meta, count = index.meta, len(index)
    return {
        "done_flag": True,
        "action": "copy",
        "source": source,
        "destination": destination,
        "backend": idx_cfg["backend"],
        "count": count,
        "index_type": meta.index_type,
        "model_name": meta.model_name,
        "num_added": count,
        "num_removed": 0,
    }
