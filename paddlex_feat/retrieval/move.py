"""Moving a gallery between backends without re-embedding: Milvus collection <-> faiss index folder.

The vectors travel as they are stored. A faiss folder made here keeps PaddleX's numbering (ids 0, 1, 2,
... in the collection's key order) and each item's content hash, so importing it again gives the same
Milvus keys. A PaddleX folder has no content hashes: its items are keyed by the hash of their vector,
and the first sync with the images embeds them once to learn their hashes. IVF_PQ folders hold
compressed codes, so their vectors come out approximately (as faiss reconstructs them).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..utils.logger import logger
from .index import GalleryIndex, utc_now
from .index_types import plan_index
from .milvus_build import InsertedVectors, record_recall
from .milvus_store import LITE_INDEX_TYPES, MilvusStore, MilvusTarget, is_lite
from .store import IndexMeta, ItemRecord

if TYPE_CHECKING:
    from .faiss_store import FaissStore

BATCH = 1000


def is_index_source(gallery: str | os.PathLike | None) -> bool:
    """Whether Index.gallery names an index to copy (a faiss folder or a milvus:// URL) rather than images."""
    from .folder import index_exists

    if gallery is None:
        return False
    return str(gallery).startswith("milvus") or index_exists(gallery)


def faiss_copy(source: MilvusStore) -> FaissStore:
    """A faiss store holding a collection's items (ids 0, 1, ... in key order), indexed as its meta says."""
    from .faiss_store import FaissStore

    meta = source.read_meta() or IndexMeta(None, None, source.dim, source.metric, source.index_type)
    records: list[ItemRecord] = []
    parts = []
    for batch, vectors in source.iter_items(BATCH):
        records += batch
        parts.append(vectors)
    order = np.argsort([r.id for r in records], kind="stable")  # the collection's key order, reproducible
    vectors = np.concatenate(parts)[order] if parts else np.zeros((0, meta.dim), np.float32)
    records = [records[k] for k in order]
    plan = plan_index(meta.index_type, max(1, len(records)), meta.dim, nprobe=meta.index_params.get("nprobe"))
    store = FaissStore.create(meta.dim, meta.metric, plan, vectors)
    store.add(vectors, records)
    store.write_meta(replace(meta, backend="faiss", index_type=plan.index_type, count=len(records)))
    return store


def collection_to_folder(target: MilvusTarget, folder: str | os.PathLike) -> GalleryIndex:
    """Export a collection into a faiss index folder (written atomically), of the type its meta names."""
    with MilvusStore.open(target) as source:
        store = faiss_copy(source)
    index = GalleryIndex(store, store.read_meta())
    index.save(folder)
    logger.info(f"Exported {len(index)} items from {target} to {folder} ({index.meta.index_type}).")
    return index


def folder_to_collection(
    folder: str | os.PathLike, target: MilvusTarget, *, create: bool = True
) -> GalleryIndex:
    """Import a faiss index folder (ours or PaddleX's) into a collection; an existing one of ours must hold the
    same model's features (its items are upserted: importing twice duplicates nothing)."""
    from .folder import load_store

    source, meta = load_store(Path(folder))
    index_type = meta.index_type
    if is_lite(target.uri) and index_type not in LITE_INDEX_TYPES:
        logger.info(f"Milvus Lite cannot build {index_type}; the collection gets an IVF index instead.")
        index_type = "IVF"
    plan = plan_index(index_type, source.count(), source.dim, nprobe=meta.index_params.get("nprobe"))
    new_meta = replace(
        meta,
        backend=MilvusStore.backend,
        index_type=plan.index_type,
        index_params={
            **plan.params,
            "requested": plan.requested,
            "reason": plan.reason,
            "imported_from": str(folder),
        },
        created=meta.created or utc_now(),
        extra=dict(meta.extra),
    )
    store = (
        MilvusStore.create(target, source.dim, meta.metric, plan, meta=new_meta)
        if create
        else MilvusStore.open(target, writable=True, create=False)
    )
    inserted = InsertedVectors()
    try:
        ids = [r.id for r in source.records()]
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            vectors = source.vectors(chunk)
            inserted.add(store.add(vectors, list(source.records(chunk))), vectors)
        index = GalleryIndex(store, store.read_meta() or new_meta)
        record_recall(
            index.meta, store, inserted
        )  # the folder's figure was for its own index, maybe of another type
        index._touch()
    except BaseException:
        store.close()
        raise
    finally:
        inserted.close()
    logger.info(f"Imported {len(ids)} items from {folder} into {target}.")
    return index
