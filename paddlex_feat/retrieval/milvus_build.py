"""Filling a Milvus collection from a gallery list: sharded, batched, resumable, idempotent.

``Index.shard=i/n`` takes every n-th gallery entry starting at the i-th (a deterministic slice of the
list), so n machines or GPUs fill one collection together. The collection is its own progress record:
each batch's images are hashed first, and those whose content-hash key is already stored are not
embedded again, so a build that died resumes where the collection says it stopped, and a repeated
shard writes nothing new. Without a shard the build is a sync: items whose path left the gallery are
dropped at the end, as the faiss folder's build_index does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ..utils.errors import GalleryIndexError
from ..utils.logger import logger
from .gallery import GalleryEntry, hash_entry, read_gallery
from .index import GalleryIndex, UpdateReport, _embed, _now, _unreadable, model_fingerprint
from .index_types import plan_index
from .milvus_store import CollectionMissing, MilvusStore, MilvusTarget, id_for_hash, parse_milvus_url
from .store import IndexMeta, ItemRecord

CHUNK = 1000  # images hashed, checked against the collection and embedded per step (the resume granularity)


@dataclass(frozen=True)
class IndexOptions:
    """How a new collection is indexed (the Index.* keys that mean the same for faiss and Milvus)."""

    index_type: str = "auto"
    metric: str = "IP"
    memory_budget_mb: float | None = None
    nprobe: int | None = None
    ef_search: int | None = None
    score_threshold: float | None = None
    score_threshold_source: dict[str, Any] | None = None  # where the threshold came from (config, auto)


def target_from_config(idx_cfg: dict) -> MilvusTarget:
    """The collection the Index section names (Index.uri may also be a milvus:// URL)."""
    token = idx_cfg.get("token") or os.environ.get("MILVUS_TOKEN") or None
    if str(idx_cfg["uri"]).startswith("milvus"):
        return parse_milvus_url(idx_cfg["uri"], token)
    return MilvusTarget(idx_cfg["uri"], idx_cfg["collection"], token)


def shard_slice(entries: Sequence[Any], shard: tuple[int, int] | None) -> list[Any]:
    """The i-th of n deterministic slices (1-based): entries i-1, i-1+n, i-1+2n, ... of the list."""
    if shard is None:
        return list(entries)
    i, n = shard
    return list(entries[i - 1 :: n])


def open_collection(target: MilvusTarget, model: Any | None = None, *, create: bool = True) -> GalleryIndex:
    """A GalleryIndex over an existing collection; ``model`` is checked against its meta as for a folder."""
    store = MilvusStore.open(target, create=create)
    meta = store.read_meta() or _adopted_meta(store)
    try:
        return GalleryIndex(store, meta, model=model, path=None)
    except BaseException:
        store.close()
        raise


def fill_collection(
    model: Any,
    gallery: Any,
    target: MilvusTarget,
    *,
    shard: tuple[int, int] | None = None,
    create: bool = True,
    options: IndexOptions = IndexOptions(),
    label_map: str | os.PathLike | None = None,
    skip_errors: bool = False,
    batch_size: int | None = None,
    chunk: int = CHUNK,
    rehash: bool = False,
) -> tuple[GalleryIndex, UpdateReport]:
    """Embed this shard's images that the collection lacks and store them; see the module docstring."""
    entries = read_gallery(gallery, None, label_map)
    mine = shard_slice(entries, shard)
    fp = model_fingerprint(model)
    store = _existing(target, create)
    report = UpdateReport()
    try:
        if store is not None:
            GalleryIndex(store, store.read_meta() or _adopted_meta(store)).check_model(fp)
        store, kept = _fill(
            store,
            model,
            entries,
            mine,
            target,
            fp,
            options,
            report,
            chunk,
            batch_size,
            skip_errors,
            shard,
            rehash,
        )
        if shard is None:  # the whole gallery was seen: what is not in it any more goes
            gone = [rec.id for rec in store.records() if rec.id not in kept]
            report.removed += gone
            store.remove(gone)
        index = GalleryIndex(store, store.read_meta() or _adopted_meta(store))
        index._model, index._fingerprint = model, fp
        if options.score_threshold is not None:
            index.meta.score_threshold = options.score_threshold
            index.meta.score_threshold_source = options.score_threshold_source
        index._touch()
    except BaseException:
        if store is not None:
            store.close()
        raise
    logger.info(
        f"Milvus {target}: {len(report.added)} added, {len(report.removed)} removed, {report.unchanged} already there"
        + (f", {len(report.duplicates)} duplicate(s)" if report.duplicates else "")
        + (f", {len(report.errors)} unreadable skipped" if report.errors else "")
    )
    return index, report


def _fill(
    store: MilvusStore | None,
    model: Any,
    entries: list[GalleryEntry],
    mine: list[GalleryEntry],
    target: MilvusTarget,
    fp: dict[str, Any],
    options: IndexOptions,
    report: UpdateReport,
    chunk: int,
    batch_size: int | None,
    skip_errors: bool,
    shard: tuple[int, int] | None,
    rehash: bool = False,
) -> tuple[MilvusStore, set[int]]:
    """The chunk loop: hash, skip what is stored, embed the rest, upsert; the collection is made at the first
    embedded chunk (its dimension is the model's). Returns the store and the keys of this run's images."""
    gallery_paths = {os.path.normpath(e.path) for e in entries if e.path is not None}
    first: dict[str, str] = {}  # content hash -> where it was first seen in this run
    kept: set[int] = set()
    where = f"shard {shard[0]}/{shard[1]} of " if shard else ""
    try:
        with tqdm(
            total=len(mine), desc=f"Milvus {where}{target.collection}", unit="img", disable=None
        ) as bar:
            for start in range(0, len(mine), chunk):
                part = mine[start : start + chunk]
                known = _stored_by_path(store, part)
                batch, hashes = _hash_batch(part, {} if rehash else known, first, report, skip_errors)
                kept.update(id_for_hash(h) for h in hashes)
                if store is None and batch:
                    vectors, batch, hashes = _embed(model, batch, hashes, report, batch_size, skip_errors)
                    if batch:
                        store = _create(target, vectors.shape[1], len(entries), options, fp)
                        report.added += store.add(vectors, _records(batch, hashes)).tolist()
                elif batch:
                    _update_batch(
                        store, model, batch, hashes, known, gallery_paths, report, batch_size, skip_errors
                    )
                bar.update(min(chunk, len(mine) - start))
    except BaseException:
        if store is not None:  # made in here: the caller cannot close it
            store.close()
        raise
    if store is None:
        raise GalleryIndexError("The gallery has no readable images; nothing to index.")
    return store, kept


def _existing(target: MilvusTarget, create: bool) -> MilvusStore | None:
    """The collection's store when it exists (checked: ours, or adopted with create=False); else None."""
    try:
        return MilvusStore.open(target, writable=True, create=create)
    except CollectionMissing as e:
        if create:
            return None
        raise CollectionMissing(f"{e} (Index.create=False: the collection must exist.)") from e


def _create(
    target: MilvusTarget, dim: int, total: int, options: IndexOptions, fp: dict[str, Any]
) -> MilvusStore:
    """A new collection indexed for the whole gallery's size (every shard plans the same index)."""
    plan = plan_index(
        options.index_type, total, dim, options.memory_budget_mb, options.nprobe, options.ef_search
    )
    meta = IndexMeta(
        model_name=fp["model_name"],
        model_hash=fp["model_hash"],
        dim=dim,
        metric=options.metric,
        index_type=plan.index_type,
        index_params={**plan.params, "requested": plan.requested, "reason": plan.reason},
        input_size=fp.get("input_size"),
        preprocess=fp.get("preprocess"),
        model_dir=fp.get("model_dir"),
        recall_at_10=1.0 if plan.index_type == "Flat" else None,
        score_threshold=options.score_threshold,
        created=_now(),
        backend=MilvusStore.backend,
    )
    return MilvusStore.create(target, dim, options.metric, plan, meta=meta)


def _stored_by_path(store: MilvusStore | None, batch: list[GalleryEntry]) -> dict[str, ItemRecord]:
    """The stored records of these entries' paths (one filter query), by normalised path."""
    paths = [e.path for e in batch if e.path is not None]
    if store is None or not paths:
        return {}
    return {os.path.normpath(r.path): r for r in store.find(paths=paths) if r.path is not None}


def _hash_batch(
    batch: list[GalleryEntry],
    known: dict[str, ItemRecord],
    first: dict[str, str],
    report: UpdateReport,
    skip_errors: bool,
) -> tuple[list[GalleryEntry], list[str]]:
    """Content hashes of the readable entries (a file whose size and mtime match its stored record is not
    read again); a content seen earlier in this run is a duplicate."""
    kept, hashes = [], []
    for e in batch:
        try:
            e, h = hash_entry(e, known.get(os.path.normpath(e.path)) if e.path is not None else None)
        except OSError as err:
            _unreadable(report, e, err, skip_errors)
            continue
        if h in first:
            report.duplicates.append(f"{e.where}: same content as {first[h]}, not added again")
            continue
        first[h] = e.where
        kept.append(e)
        hashes.append(h)
    return kept, hashes


def _update_batch(
    store: MilvusStore,
    model: Any,
    batch: list[GalleryEntry],
    hashes: list[str],
    known: dict[str, ItemRecord],
    gallery_paths: set[str],
    report: UpdateReport,
    batch_size: int | None,
    skip_errors: bool,
) -> None:
    """Store what the collection lacks (embedded), fix moved or relabelled items (not embedded), and drop
    the old item of an image whose file changed."""
    ids = [id_for_hash(h) for h in hashes]
    stored = {rec.id: rec for rec in store.records(ids)}
    missing = [k for k, i in enumerate(ids) if i not in stored]
    relabel = []
    for k, i in enumerate(ids):
        rec = stored.get(i)
        if rec is None:
            continue
        path = batch[k].path
        old_path = os.path.normpath(rec.path) if rec.path is not None else None
        other = old_path is not None and path is not None and old_path != os.path.normpath(path)
        if other and old_path in gallery_paths:  # the same image listed twice: keep the stored one
            report.duplicates.append(f"{batch[k].where}: same content as {rec.path}, not added again")
        elif rec.label != batch[k].label or other or rec.file_stat != batch[k].file_stat:
            relabel.append(k)  # relabelled, or its file moved: rewrite the record, keep the vector
        else:
            report.unchanged += 1
    if relabel:
        vectors = store.vectors([ids[k] for k in relabel])
        store.add(vectors, _records([batch[k] for k in relabel], [hashes[k] for k in relabel]))
        report.added += [ids[k] for k in relabel]
    if missing:
        vectors, fresh, fresh_hashes = _embed(
            model, [batch[k] for k in missing], [hashes[k] for k in missing], report, batch_size, skip_errors
        )
        if fresh:
            report.added += store.add(vectors, _records(fresh, fresh_hashes)).tolist()
    # an image whose file changed has a new key: the item stored under its path with the old key goes
    current = set(ids)
    stale = sorted({rec.id for rec in known.values() if rec.id not in current})
    if stale:
        store.remove(stale)
        report.removed += stale


def _records(entries: Sequence[GalleryEntry], hashes: Sequence[str]) -> list[ItemRecord]:
    return [ItemRecord(-1, e.label, e.path, h, e.file_stat) for e, h in zip(entries, hashes)]


def _adopted_meta(store: MilvusStore) -> IndexMeta:
    """The meta of a collection adopted with Index.create=False (it has none): what its schema says."""
    return IndexMeta(None, None, store.dim, store.metric, store.index_type, {}, backend=MilvusStore.backend)
