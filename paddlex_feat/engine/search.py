"""Global.mode=search: the top-k gallery matches of each Predict.input image in an index folder."""

from __future__ import annotations

from typing import Any

from ..utils.errors import ConfigError
from ..utils.logger import logger
from .predict import model_from_config
from .score_threshold import resolve_score_threshold


def run(cfg: dict) -> dict[str, Any]:
    """Run the search mode; returns the content of ``search_result.json``."""
    from ..retrieval import index_from_config

    idx_cfg, pred = cfg["Index"], cfg["Predict"]
    if pred["input"] is None:
        raise ConfigError(
            "Predict.input is not set; pass the query image(s), e.g. -o Predict.input=query.jpg."
        )
    index = index_from_config(idx_cfg)
    where = idx_cfg["path"] if idx_cfg["backend"] == "faiss" else str(index.store)
    # the model: Index.model_dir, else the folder that built the index, else Predict.model_dir
    model_dir = idx_cfg["model_dir"] or (index.meta.model_dir if _is_dir(index.meta.model_dir) else None)
    index.bind_model(model_from_config(cfg, model_dir, idx_cfg["batch_size"]))
    threshold, source = resolve_score_threshold(idx_cfg["score_threshold"], model_dir or pred["model_dir"])
    if threshold is None:  # null: the threshold the index was built with
        threshold, source = "index", index.meta.score_threshold_source
    results = index.search(
        pred["input"],
        idx_cfg["top_k"],
        score_threshold=threshold,
        nprobe=idx_cfg["nprobe"],
        ef_search=idx_cfg["ef_search"],
        skip_errors=pred["skip_errors"],
    )
    output = cfg["Global"]["output"]
    records = []
    for res in results:
        res.print()
        record = dict(res)
        if pred["save_json"]:
            record["json"] = str(res.save_to_json(output))
        records.append(record)
    errors = sum(not r.ok for r in results)
    logger.info(f"Searched {len(results) - errors} of {len(results)} images in {where}")
    index.close()
    return {
        "done_flag": errors < len(results),
        "index_path": where,
        "model_name": index.meta.model_name,
        "top_k": idx_cfg["top_k"],
        "score_threshold": index.meta.score_threshold if threshold == "index" else threshold,
        "score_threshold_source": source,
        "num_images": len(results),
        "num_errors": errors,
        "results": records,
    }


def _is_dir(path: str | None) -> bool:
    import os

    return bool(path) and os.path.isdir(path)
