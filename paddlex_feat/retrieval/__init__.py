"""Recognition: a gallery index of image features to build, update, search, save and load.

``build_index(model, gallery)`` and ``load_index(path)`` give a :class:`GalleryIndex`; its vectors
live in a :class:`VectorStore` (faiss by default, in PaddleX's index folder format).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .index import GalleryIndex, UpdateReport, model_fingerprint
from .results import SearchResult
from .store import IndexMeta, ItemRecord, VectorStore

__all__ = [
    "GalleryIndex",
    "IndexMeta",
    "ItemRecord",
    "SearchResult",
    "UpdateReport",
    "VectorStore",
    "build_index",
    "index_from_config",
    "load_index",
    "model_fingerprint",
]


def build_index(
    model: Any, gallery: Any, labels: Sequence[Any] | None = None, **options: Any
) -> GalleryIndex:
    """Embed a gallery (a list file, a folder of label sub-folders, or images with ``labels``) and index it.

    ``options``: index_type (Flat, HNSW, IVF, IVF_PQ, auto), metric, memory_budget_mb, nprobe, ef_search,
    score_threshold, label_map, batch_size, skip_errors, store_factory.
    """
    return GalleryIndex.build(model, gallery, labels, **options)


def load_index(
    path: str | os.PathLike | None = None,
    model: Any | None = None,
    *,
    uri: str | None = None,
    collection: str | None = None,
    token: str | None = None,
) -> GalleryIndex:
    """Open an index folder (ours or PaddleX's), or a Milvus collection (``milvus://host:19530/products``,
    ``milvus://output/gallery.db/products``, or ``uri=`` and ``collection=``); ``model`` must be the one that built it.
    """
    if uri is not None or str(path or "").startswith("milvus"):
        from .milvus_build import open_collection
        from .milvus_store import DEFAULT_COLLECTION, MilvusTarget, parse_milvus_url

        if uri is not None:
            target = MilvusTarget(
                uri, collection or DEFAULT_COLLECTION, token or os.environ.get("MILVUS_TOKEN")
            )
        else:
            target = parse_milvus_url(str(path), token)
        return open_collection(target, model)
    if path is None:
        raise TypeError("load_index() needs an index folder, a milvus:// URL, or uri= and collection=")
    return GalleryIndex.load(path, model=model)


def index_from_config(idx_cfg: dict, model: Any | None = None) -> GalleryIndex:
    """The index the Index section names: the Index.path folder, or the Index.backend=milvus collection."""
    if idx_cfg.get("backend") == "milvus":
        from .milvus_build import open_collection, target_from_config

        return open_collection(target_from_config(idx_cfg), model, create=idx_cfg.get("create", True))
    return GalleryIndex.load(idx_cfg["path"], model=model)
