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


def load_index(path: str | os.PathLike, model: Any | None = None) -> GalleryIndex:
    """Open an index folder (ours or PaddleX's); ``model`` must be the one that built it."""
    return GalleryIndex.load(path, model=model)
