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
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from ..utils.errors import GalleryIndexError
from ..utils.logger import logger
from .gallery import GalleryEntry, hash_entry, read_gallery
from .index import (
    RECALL_K,
    RECALL_SAMPLE,
    GalleryIndex,
    UpdateReport,
    embed_entries,
    exact_topk_blocks,
    model_fingerprint,
    note_unreadable,
    overlap_recall,
    utc_now,
)
from .index_types import plan_index
from .milvus_store import CollectionMissing, MilvusStore, MilvusTarget, id_for_hash, parse_milvus_url
from .store import IndexMeta, ItemRecord

CHUNK = 1000  # images hashed, checked against the collection and embedded per step (the resume granularity)
# recall@10 at build: exact answers from the vectors this build inserted, logged to a temp file (2 KB a
# 512-d row: 4 GB of disk at most), else from the collection read back, at most this many rows (Milvus Lite
# returns ~1,000 rows/s on this 2-core machine, about its insert rate: reading more doubles the build)
RECALL_MAX_LOGGED = 2_000_000
RECALL_MAX_READ = 50_000
READ_CHUNK = 65536  # rows of logged vectors per exact-search block


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


@dataclass
class _FillRun:
    """What every chunk of one ``fill_collection`` run needs: the model, where to, how, and its tallies."""

    model: Any
    target: MilvusTarget
    fingerprint: dict[str, Any]
    options: IndexOptions
    report: UpdateReport
    inserted: InsertedVectors
    batch_size: int | None
    skip_errors: bool
    gallery_size: int  # entries in the whole list (all shards): sizes a new collection's index
    gallery_paths: set[str]  # normalised paths of the whole list: a moved image vs a listed duplicate

    def embed(
        self, batch: list[GalleryEntry], hashes: list[str]
    ) -> tuple[np.ndarray, list[GalleryEntry], list[str]]:
        """Features of ``batch`` (unreadable images stop the run or are skipped, as configured)."""
        return embed_entries(self.model, batch, hashes, self.report, self.batch_size, self.skip_errors)


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
    inserted = InsertedVectors()
    try:
        if store is not None:
            GalleryIndex(store, store.read_meta() or _adopted_meta(store)).check_model(fp)
        run = _FillRun(
            model,
            target,
            fp,
            options,
            report,
            inserted,
            batch_size,
            skip_errors,
            len(entries),
            {os.path.normpath(e.path) for e in entries if e.path is not None},
        )
        store, kept = _fill(store, run, mine, chunk, shard, rehash)
        if shard is None:  # the whole gallery was seen: what is not in it any more goes
            gone = [rec.id for rec in store.records() if rec.id not in kept]
            report.removed += gone
            store.remove(gone)
        index = GalleryIndex(store, store.read_meta() or _adopted_meta(store))
        index._model, index._fingerprint = model, fp
        if options.score_threshold is not None:
            index.meta.score_threshold = options.score_threshold
            index.meta.score_threshold_source = options.score_threshold_source
        if report.added or report.removed or index.meta.recall_at_10 is None:
            record_recall(index.meta, store, inserted)
        index._touch()
    except BaseException:
        if store is not None:
            store.close()
        raise
    finally:
        inserted.close()
    logger.info(
        f"Milvus {target}: {len(report.added)} added, {len(report.removed)} removed, {report.unchanged} already there"
        + (f", {len(report.duplicates)} duplicate(s)" if report.duplicates else "")
        + (f", {len(report.errors)} unreadable skipped" if report.errors else "")
    )
    return index, report


def _fill(
    store: MilvusStore | None,
    run: _FillRun,
    mine: list[GalleryEntry],
    chunk: int,
    shard: tuple[int, int] | None,
    rehash: bool,
) -> tuple[MilvusStore, set[int]]:
    """The chunk loop: hash, skip what is stored, embed the rest, upsert; the collection is made at the first
    embedded chunk (its dimension is the model's). Returns the store and the keys of this run's images."""
    first: dict[str, str] = {}  # content hash -> where it was first seen in this run
    kept: set[int] = set()
    where = f"shard {shard[0]}/{shard[1]} of " if shard else ""
    try:
        with tqdm(
            total=len(mine), desc=f"Milvus {where}{run.target.collection}", unit="img", disable=None
        ) as bar:
            for start in range(0, len(mine), chunk):
                part = mine[start : start + chunk]
                known = _stored_by_path(store, part)
                batch, hashes = _hash_batch(part, {} if rehash else known, first, run.report, run.skip_errors)
                kept.update(id_for_hash(h) for h in hashes)
                if store is None and batch:
                    vectors, batch, hashes = run.embed(batch, hashes)
                    if batch:
                        store = _create(
                            run.target, vectors.shape[1], run.gallery_size, run.options, run.fingerprint
                        )
                        run.report.added += _add(store, vectors, _records(batch, hashes), run.inserted)
                elif batch:
                    _update_batch(store, run, batch, hashes, known)
                bar.update(min(chunk, len(mine) - start))
    except BaseException:
        if store is not None:  # made in here: the caller cannot close it
            store.close()
        raise
    if store is None:
        raise GalleryIndexError("The gallery has no readable images; nothing to index.")
    return store, kept


class InsertedVectors:
    """The vectors a build inserted, spilled to a temp file as they go (kept off the heap: 2 GB at 1M x 512),
    so that recall@10 can be measured against exact search over them without reading the collection back."""

    def __init__(self, max_rows: int = RECALL_MAX_LOGGED) -> None:
        self.max_rows = max_rows
        self.overflow = False
        self._ids: list[np.ndarray] = []
        self._file = tempfile.TemporaryFile(prefix="pxf_recall_")  # noqa: SIM115 - closed by close(); gone after a crash too
        self._dim = 0
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Log one inserted batch (past ``max_rows`` nothing more is kept, and ``overflow`` says so)."""
        if self.overflow or not len(ids):
            return
        if len(self) + len(ids) > self.max_rows:
            self.overflow = True
            return
        self._dim = vectors.shape[1]
        self._file.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        self._ids.append(np.asarray(ids, dtype=np.int64))
        self._rows += len(ids)

    def ids(self) -> np.ndarray:
        """The ids of the logged rows, in insertion order."""
        return np.concatenate(self._ids) if self._ids else np.zeros(0, np.int64)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Logged rows ``start:stop``, read from the file (not mapped: 2 GB of pages do not stay resident)."""
        self._file.seek(start * self._dim * 4)
        data = self._file.read((stop - start) * self._dim * 4)
        return np.frombuffer(data, np.float32).reshape(-1, self._dim)

    def blocks(self, keep: np.ndarray, rows: int = READ_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the rows where ``keep`` is true, ``rows`` logged rows at a time."""
        ids = self.ids()
        for start in range(0, len(ids), rows):
            mask = keep[start : start + rows]
            yield ids[start : start + rows][mask], self.read(start, start + len(mask))[mask]

    def close(self) -> None:
        self._file.close()


def record_recall(
    meta: IndexMeta,
    store: MilvusStore,
    inserted: InsertedVectors | None = None,
    max_read: int = RECALL_MAX_READ,
) -> None:
    """Measure the collection's recall@10 into ``meta.recall_at_10``, and how it was measured into ``meta.extra``."""
    started = time.perf_counter()
    recall, how = measure_collection_recall(store, inserted, max_read=max_read)
    meta.recall_at_10 = recall
    meta.extra["recall_at_10"] = {**how, "seconds": round(time.perf_counter() - started, 2)}


def measure_collection_recall(
    store: MilvusStore,
    inserted: InsertedVectors | None = None,
    k: int = RECALL_K,
    sample: int = RECALL_SAMPLE,
    max_read: int = RECALL_MAX_READ,
) -> tuple[float | None, dict[str, Any]]:
    """recall@k of the collection's index against exact search, as the faiss build measures it: ``sample``
    stored vectors as queries, their exact top-k by numpy, and the index's answers.

    The exact answers are over every row. When the collection holds just what this build inserted (as
    many rows as ``inserted`` logged), they come from the logged vectors; otherwise (other shards,
    earlier runs) the collection is read back in chunks, up to ``max_read`` rows, since Milvus Lite
    returns ~1,000 rows/s here. Past that it is skipped (None) with a log line. Flat is exact: 1.0.
    """
    count = store.count()
    if store.index_type == "Flat":
        return 1.0, {"exact": True, "rows": count}
    if count == 0:
        return None, {"skipped": "the collection is empty"}
    logged = inserted.ids() if inserted is not None and not inserted.overflow else np.zeros(0, np.int64)
    keep = np.zeros(len(logged), bool)
    keep[np.unique(logged, return_index=True)[1]] = True  # an item re-inserted in one run is one item
    if inserted is not None and keep.sum() == count:
        source = "the vectors this build inserted"
        rows = np.random.default_rng(0).choice(np.flatnonzero(keep), size=min(sample, count), replace=False)
        query_ids = logged[rows]
        queries = np.concatenate([inserted.read(r, r + 1) for r in rows])
        blocks = inserted.blocks(keep)
    elif count <= max_read:
        source = "the collection read back"
        query_ids, queries = store.sample_vectors(sample)
        blocks = store.iter_vectors()
    else:
        why = (
            f"this build inserted more than the {inserted.max_rows} rows kept for exact answers"
            if inserted is not None and inserted.overflow
            else f"the collection holds {count} rows, not only this build's"
        )
        reason = f"{why}, and reading more than {max_read} back for exact answers costs more than the build"
        logger.info(f"Milvus {store.target}: recall@{k} at build skipped: {reason}.")
        return None, {"skipped": reason, "rows": count}
    k = min(k, count)
    exact = exact_topk_blocks(queries, blocks, k, store.metric)
    indexed = store.wait_for_index()  # before that, unindexed rows are searched by brute force: recall 1.0
    _, found = store.search(queries, k)
    recall = overlap_recall(exact, found)
    logger.info(
        f"Milvus {store.target}: {store.index_type} recall@{k} against exact search {recall:.3f} "
        f"({len(query_ids)} stored vectors as queries; exact answers over all {count} rows, from {source})"
        + (
            "."
            if indexed
            else "; the index builds could not be waited for, so some rows may have been searched "
            "by brute force and the figure may be too high."
        )
    )
    how = {"queries": len(query_ids), "rows": count, "k": k, "exact_from": source, "index_built": indexed}
    return recall, how


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
        score_threshold=options.score_threshold,
        created=utc_now(),
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
            note_unreadable(report, e, err, skip_errors)
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
    run: _FillRun,
    batch: list[GalleryEntry],
    hashes: list[str],
    known: dict[str, ItemRecord],
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
        if other and old_path in run.gallery_paths:  # the same image listed twice: keep the stored one
            run.report.duplicates.append(f"{batch[k].where}: same content as {rec.path}, not added again")
        elif rec.label != batch[k].label or other or rec.file_stat != batch[k].file_stat:
            relabel.append(k)  # relabelled, or its file moved: rewrite the record, keep the vector
        else:
            run.report.unchanged += 1
    if relabel:
        vectors = store.vectors([ids[k] for k in relabel])
        _add(
            store, vectors, _records([batch[k] for k in relabel], [hashes[k] for k in relabel]), run.inserted
        )
        run.report.added += [ids[k] for k in relabel]
    if missing:
        vectors, fresh, fresh_hashes = run.embed([batch[k] for k in missing], [hashes[k] for k in missing])
        if fresh:
            run.report.added += _add(store, vectors, _records(fresh, fresh_hashes), run.inserted)
    # an image whose file changed has a new key: the item stored under its path with the old key goes
    current = set(ids)
    stale = sorted({rec.id for rec in known.values() if rec.id not in current})
    if stale:
        store.remove(stale)
        run.report.removed += stale


def _add(
    store: MilvusStore, vectors: np.ndarray, records: list[ItemRecord], inserted: InsertedVectors
) -> list[int]:
    """Upsert, and log the vectors for the recall measurement at the end of the build."""
    ids = store.add(vectors, records)
    inserted.add(ids, vectors)
    return ids.tolist()


def _records(entries: Sequence[GalleryEntry], hashes: Sequence[str]) -> list[ItemRecord]:
    return [ItemRecord(-1, e.label, e.path, h, e.file_stat) for e, h in zip(entries, hashes)]


def _adopted_meta(store: MilvusStore) -> IndexMeta:
    """The meta of a collection adopted with Index.create=False (it has none): what its schema says."""
    return IndexMeta(None, None, store.dim, store.metric, store.index_type, {}, backend=MilvusStore.backend)
