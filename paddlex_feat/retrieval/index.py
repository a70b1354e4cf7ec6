"""GalleryIndex: a labelled gallery of image features to build, update, search, save and load.

It embeds images with a Predictor, keeps one record per image (label, path, content hash) in a
VectorStore (faiss by default), and checks that every search uses the model that built it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.predictor import Predictor, find_model_files
from ..inference.spec import INFERENCE_YML
from ..utils.errors import DatasetError, GalleryIndexError, UsageError
from ..utils.logger import logger
from .gallery import GalleryEntry, hash_entry, read_gallery
from .index_types import IndexPlan, plan_index
from .results import UNKNOWN, SearchResult
from .store import IndexMeta, ItemRecord, VectorStore

StoreFactory = Callable[[int, str, IndexPlan, np.ndarray], VectorStore]
RECALL_SAMPLE = 200  # gallery vectors used as queries to measure an ANN index's recall@10
RECALL_K = 10


@dataclass
class UpdateReport:
    """What an add, upsert or sync did: ids added and removed, duplicates and unreadable images skipped."""

    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    unchanged: int = 0
    duplicates: list[str] = field(default_factory=list)  # 'where: same content as <path or id>'
    errors: list[str] = field(default_factory=list)  # unreadable images skipped (skip_errors)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready counts and lists."""
        return asdict(self)


def model_fingerprint(model: Predictor) -> dict[str, Any]:
    """Model name, sha256 of its inference files, input size and pre-processing, for meta.json."""
    program, params = find_model_files(model.model_dir)
    digest = hashlib.sha256()
    for path in (program, params, model.model_dir / INFERENCE_YML):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return {
        "model_name": model.model_name,
        "model_hash": digest.hexdigest(),
        "input_size": list(model.spec.input_size) if model.spec.input_size else None,
        "preprocess": model.spec.transform_ops,
        "model_dir": str(Path(model.model_dir).resolve()),
    }


def utc_now() -> str:
    """Now in UTC, as the meta's ``created``/``updated`` record it (ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class GalleryIndex:
    """Build with ``build``/``build_index``, open with ``load``/``load_index``; see the module docstring."""

    def __init__(
        self,
        store: VectorStore,
        meta: IndexMeta,
        model: Predictor | None = None,
        path: str | os.PathLike | None = None,
    ) -> None:
        self.store = store
        self.meta = meta
        self.path = Path(path) if path is not None else None
        self._model: Predictor | None = None
        self._fingerprint: dict[str, Any] | None = None
        self.last_report: UpdateReport | None = None  # what build() skipped (duplicates, unreadable images)
        if model is not None:
            self.bind_model(model)

    # -- creating ------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        model: Predictor,
        gallery: Any,
        labels: Sequence[Any] | None = None,
        *,
        index_type: str = "auto",
        metric: str = "IP",
        memory_budget_mb: float | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        score_threshold: float | None = None,
        label_map: str | os.PathLike | None = None,
        batch_size: int | None = None,
        skip_errors: bool = False,
        store_factory: StoreFactory | None = None,
    ) -> GalleryIndex:
        """Embed a gallery (list file, folder, or images with ``labels``) and index it (see ``last_report``)."""
        entries = read_gallery(gallery, labels, label_map)
        report = UpdateReport()
        entries, hashes = _hash_and_dedupe(entries, {}, report, skip_errors)
        vectors, entries, hashes = embed_entries(model, entries, hashes, report, batch_size, skip_errors)
        if not entries:
            raise DatasetError("The gallery has no readable images; nothing to index.")
        fp = model_fingerprint(model)
        index = cls.from_vectors(
            vectors,
            [e.label for e in entries],
            paths=[e.path for e in entries],
            content_hashes=hashes,
            file_stats=[e.file_stat for e in entries],
            index_type=index_type,
            metric=metric,
            memory_budget_mb=memory_budget_mb,
            nprobe=nprobe,
            ef_search=ef_search,
            score_threshold=score_threshold,
            store_factory=store_factory,
            fingerprint=fp,
        )
        index._model, index._fingerprint = model, fp
        index.last_report = report
        return index

    @classmethod
    def from_vectors(
        cls,
        vectors: np.ndarray,
        labels: Sequence[Any],
        paths: Sequence[str | None] | None = None,
        content_hashes: Sequence[str | None] | None = None,
        *,
        index_type: str = "auto",
        metric: str = "IP",
        memory_budget_mb: float | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
        score_threshold: float | None = None,
        store_factory: StoreFactory | None = None,
        fingerprint: dict[str, Any] | None = None,
        file_stats: Sequence[str | None] | None = None,
    ) -> GalleryIndex:
        """An index over features computed elsewhere (``[n, dim]`` float32, L2-normalised for IP)."""
        from .faiss_store import FaissStore

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise DatasetError(
                f"Expected a non-empty [n, dim] array of features; got shape {list(vectors.shape)}."
            )
        n, dim = vectors.shape
        if len(labels) != n:
            raise UsageError(f"Pass one label per vector: {n} vector(s), {len(labels)} label(s).")
        plan = plan_index(index_type, n, dim, memory_budget_mb, nprobe, ef_search)
        store = (store_factory or FaissStore.create)(dim, metric, plan, vectors)
        records = [
            ItemRecord(
                -1,
                str(label),
                (paths or [None] * n)[i],
                (content_hashes or [None] * n)[i],
                (file_stats or [None] * n)[i],
            )
            for i, label in enumerate(labels)
        ]
        ids = store.add(vectors, records)
        fp = fingerprint or {}
        meta = IndexMeta(
            model_name=fp.get("model_name"),
            model_hash=fp.get("model_hash"),
            dim=dim,
            metric=metric,
            index_type=plan.index_type,
            index_params={**plan.params, "requested": plan.requested, "reason": plan.reason},
            input_size=fp.get("input_size"),
            preprocess=fp.get("preprocess"),
            model_dir=fp.get("model_dir"),
            score_threshold=score_threshold,
            created=utc_now(),
            backend=store.backend,
        )
        index = cls(store, meta)
        if plan.index_type != "Flat":
            store.wait_for_index()  # searched before a database's background index build ends: brute force
            meta.recall_at_10 = measure_recall(store, vectors, ids)
            logger.info(
                f"Index: {plan.index_type} recall@{RECALL_K} against exact search {meta.recall_at_10:.3f}"
            )
        else:
            meta.recall_at_10 = 1.0
        index._touch()
        logger.info(f"Index: {plan.index_type} over {n} images ({plan.reason or 'as asked'}).")
        return index

    @classmethod
    def load(cls, path: str | os.PathLike, model: Predictor | None = None) -> GalleryIndex:
        """Open an index folder (ours, or one PaddleX built); ``model`` is checked against its meta."""
        from .folder import load_store

        store, meta = load_store(Path(path))
        return cls(store, meta, model=model, path=path)

    # -- the model -----------------------------------------------------------------------------

    def bind_model(self, model: Predictor) -> None:
        """Use ``model`` to embed images; refused when it is not the model that built the index."""
        fp = model_fingerprint(model)
        self.check_model(fp)
        self._model, self._fingerprint = model, fp

    def check_model(self, fp: dict[str, Any]) -> None:
        """Raise GalleryIndexError when ``fp`` (model_fingerprint) is not the index's model."""
        if self.meta.model_hash is None:
            logger.warning(
                f"The index{self._where()} does not record which model built it (a PaddleX index?); "
                f"searching it with {fp['model_name']} from {fp['model_dir']} as asked."
            )
            return
        if fp["model_hash"] != self.meta.model_hash:
            raise GalleryIndexError(
                f"The index{self._where()} was built by {self.meta.model_name} from {self.meta.model_dir} "
                f"(model hash {self.meta.model_hash[:12]}), but the model given is {fp['model_name']} from "
                f"{fp['model_dir']} (hash {fp['model_hash'][:12]}). Features of another model give meaningless "
                "answers: use the model that built the index, or rebuild the index with this one."
            )

    @property
    def model(self) -> Predictor:
        """The bound model; loaded from meta's model_dir when none was given."""
        if self._model is None:
            folder = self.meta.model_dir
            if not folder or not Path(folder).is_dir():
                raise GalleryIndexError(
                    f"No model to embed the queries: the index{self._where()} was built from "
                    f"{folder or 'an unrecorded model folder'}, which is not here. Pass one: "
                    "load_index(path, model=create_model(name, model_dir=...)) or -o Index.model_dir=..."
                )
            self.bind_model(Predictor(folder, model_name=self.meta.model_name))
        assert self._model is not None
        return self._model

    def _use(self, model: Predictor | None) -> Predictor:
        if model is not None and model is not self._model:
            self.bind_model(model)
        return self.model

    # -- updating ------------------------------------------------------------------------------

    def add(
        self,
        model: Predictor | None,
        images: Any,
        labels: Sequence[Any] | None = None,
        *,
        skip_errors: bool = False,
        batch_size: int | None = None,
    ) -> UpdateReport:
        """Embed and add images; one already in the index (same content hash) is skipped, not duplicated."""
        model = self._use(model)
        entries = read_gallery(images, labels)
        report = UpdateReport()
        entries, hashes = _hash_and_dedupe(entries, self._hash_index(), report, skip_errors)
        if entries:
            vectors, entries, hashes = embed_entries(model, entries, hashes, report, batch_size, skip_errors)
            report.added = self._add_rows(vectors, entries, hashes)
        self._touch()
        return report

    def add_vectors(
        self,
        vectors: np.ndarray,
        labels: Sequence[Any],
        paths: Sequence[str | None] | None = None,
        content_hashes: Sequence[str | None] | None = None,
    ) -> list[int]:
        """Add features computed elsewhere; returns their ids."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(labels) != len(vectors):
            raise UsageError(f"Pass one label per vector: {len(vectors)} vector(s), {len(labels)} label(s).")
        n = len(vectors)
        entries = [
            GalleryEntry(None, str(lb), (paths or [None] * n)[i], f"vectors[{i}]")
            for i, lb in enumerate(labels)
        ]
        ids = self._add_rows(vectors, entries, list(content_hashes or [None] * n))
        self._touch()
        return ids

    def remove(
        self,
        ids: Sequence[int] | None = None,
        *,
        paths: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
    ) -> int:
        """Remove by id, path or label; if any of them is unknown, nothing is removed and the error lists them."""
        if ids is None and paths is None and labels is None:
            raise UsageError("remove() needs ids=, paths= or labels=.")
        for name, given in (("ids", ids), ("paths", paths), ("labels", labels)):
            if isinstance(given, (str, int)):
                raise UsageError(f"remove({name}=...) takes a list; got the single value {given!r}.")
        by_path: dict[str, list[int]] = {}
        by_label: dict[str, list[int]] = {}
        known: set[int] = set()
        for rec in self.store.records():
            known.add(rec.id)
            if rec.path is not None:
                by_path.setdefault(os.path.normpath(rec.path), []).append(rec.id)
            by_label.setdefault(rec.label, []).append(rec.id)
        chosen: set[int] = set()
        unknown = []
        for i in ids or []:
            (chosen.add(int(i)) if int(i) in known else unknown.append(f"id {i}"))
        for p in paths or []:
            hit = by_path.get(os.path.normpath(os.fspath(p)))
            (chosen.update(hit) if hit else unknown.append(f"path {p}"))
        for lb in labels or []:
            hit = by_label.get(str(lb))
            (chosen.update(hit) if hit else unknown.append(f"label {lb!r}"))
        if unknown:
            raise GalleryIndexError(
                f"Nothing was removed: {len(unknown)} of the given ids/paths/labels are not in the index"
                f"{self._where()}: {', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}."
            )
        removed = self.store.remove(sorted(chosen))
        self._touch()
        logger.info(f"Index: removed {removed} item(s).")
        return removed

    def upsert(
        self,
        model: Predictor | None,
        images: Any,
        labels: Sequence[Any] | None = None,
        *,
        skip_errors: bool = False,
        batch_size: int | None = None,
        rehash: bool = False,
    ) -> UpdateReport:
        """Add images, replacing those whose path is already indexed (new ids, as PaddleX numbers appends)."""
        model = self._use(model)
        entries = read_gallery(images, labels)
        return self._apply(model, entries, False, skip_errors, batch_size, rehash)

    def sync(
        self,
        model: Predictor | None,
        gallery: Any,
        labels: Sequence[Any] | None = None,
        *,
        label_map: str | os.PathLike | None = None,
        skip_errors: bool = False,
        batch_size: int | None = None,
        rehash: bool = False,
    ) -> UpdateReport:
        """Make the index match a gallery: embed only new or changed images, drop the ones gone.

        A file whose size and mtime (ns) are those recorded when it was hashed keeps its stored hash
        without being read, as git and rsync decide; ``rehash=True`` reads and hashes every file (for a
        tool that rewrites files and restores their mtime).
        """
        model = self._use(model)
        entries = read_gallery(gallery, labels, label_map)
        return self._apply(model, entries, True, skip_errors, batch_size, rehash)

    def _apply(
        self,
        model: Predictor,
        entries: list[GalleryEntry],
        drop_missing: bool,
        skip_errors: bool,
        batch_size: int | None,
        rehash: bool = False,
    ) -> UpdateReport:
        """Upsert ``entries`` by path; with ``drop_missing``, remove indexed paths not among them."""
        report = UpdateReport()
        current: dict[str, ItemRecord] = {}
        for rec in self.store.records():
            if rec.path is not None:
                current[os.path.normpath(rec.path)] = rec
        hashes = []
        readable = []
        for e in entries:
            try:
                key = os.path.normpath(e.path) if e.path is not None else None
                e, h = hash_entry(e, current.get(key) if key is not None and not rehash else None)
                hashes.append(h)
                readable.append(e)
            except OSError as err:
                note_unreadable(report, e, err, skip_errors)
        seen_paths: set[str] = set()
        to_remove: list[int] = []
        relabel: list[tuple[GalleryEntry, ItemRecord]] = []
        fresh: list[GalleryEntry] = []
        fresh_hashes: list[str] = []
        for e, h in zip(readable, hashes):
            key = os.path.normpath(e.path) if e.path is not None else None
            if key is not None:
                seen_paths.add(key)
            old = current.get(key) if key is not None else None
            if old is not None and old.content_hash == h:
                if (
                    old.label == e.label
                ):  # a touched file with the same bytes keeps its id (re-read next time)
                    report.unchanged += 1
                else:
                    relabel.append((e, old))  # same pixels, new label: move the vector, no embedding
                continue
            if old is not None:
                to_remove.append(old.id)
            fresh.append(e)
            fresh_hashes.append(h)
        if drop_missing:
            to_remove += [rec.id for key, rec in current.items() if key not in seen_paths]
        # duplicates among the new images, and against what stays in the index
        leaving = set(to_remove)
        staying = {h: i for h, i in self._hash_index().items() if i not in leaving}
        fresh_entries, fresh_hashes = _dedupe(fresh, fresh_hashes, staying, report)
        vectors, fresh_entries, fresh_hashes = embed_entries(
            model, fresh_entries, fresh_hashes, report, batch_size, skip_errors
        )
        if relabel:
            moved = self.store.vectors([old.id for _, old in relabel])
            to_remove += [old.id for _, old in relabel]
        if to_remove:
            report.removed = sorted(set(to_remove))
            self.store.remove(report.removed)
        if relabel:
            report.added += self._add_rows(
                moved, [e for e, _ in relabel], [old.content_hash for _, old in relabel]
            )
        report.added += self._add_rows(vectors, fresh_entries, fresh_hashes)
        self._touch()
        logger.info(
            f"Index: {len(report.added)} added, {len(report.removed)} removed, {report.unchanged} unchanged"
            + (f", {len(report.duplicates)} duplicate(s) skipped" if report.duplicates else "")
            + (f", {len(report.errors)} unreadable skipped" if report.errors else "")
        )
        return report

    def _add_rows(
        self, vectors: np.ndarray, entries: Sequence[GalleryEntry], hashes: Sequence[str | None]
    ) -> list[int]:
        if not len(entries):
            return []
        if vectors.shape[1] != self.store.dim:
            raise GalleryIndexError(
                f"The features have {vectors.shape[1]} dimensions but the index{self._where()} holds "
                f"{self.store.dim}-d features: use the model that built it."
            )
        records = [ItemRecord(-1, e.label, e.path, h, e.file_stat) for e, h in zip(entries, hashes)]
        return self.store.add(vectors, records).tolist()

    def _hash_index(self) -> dict[str, int]:
        return {rec.content_hash: rec.id for rec in self.store.records() if rec.content_hash}

    def compact(self) -> int:
        """Drop removed items still held by the index (HNSW tombstones); returns how many."""
        return self.store.compact()

    # -- searching -----------------------------------------------------------------------------

    def search(
        self,
        queries: Any,
        top_k: int = 5,
        *,
        score_threshold: float | None | str = "index",
        nprobe: int | None = None,
        ef_search: int | None = None,
        skip_errors: bool = False,
        batch_size: int | None = None,
    ) -> list[SearchResult]:
        """One result per query image, in input order; ``score_threshold='index'`` uses the index's own."""
        model = self.model
        stream = model.predict(queries, batch_size=batch_size, skip_errors=skip_errors)
        feats, where, failed = [], [], {}
        for res in stream:
            if res.ok:
                feats.append(res.feature)
                where.append((res["input_path"], res.save_stem))
            else:
                failed[len(feats) + len(failed)] = (res["input_path"], res.save_stem, res.error)
        found = iter(
            self.search_vectors(
                np.stack(feats) if feats else np.zeros((0, self.store.dim), np.float32),
                top_k,
                input_paths=[w[0] for w in where],
                save_stems=[w[1] for w in where],
                score_threshold=score_threshold,
                nprobe=nprobe,
                ef_search=ef_search,
            )
        )
        total = len(feats) + len(failed)
        return [
            SearchResult(
                failed[i][0], [], [], [], [], label=UNKNOWN, save_stem=failed[i][1], error=failed[i][2]
            )
            if i in failed
            else next(found)
            for i in range(total)
        ]

    def search_vectors(
        self,
        vectors: np.ndarray,
        top_k: int = 5,
        *,
        input_paths: Sequence[str | None] | None = None,
        save_stems: Sequence[str] | None = None,
        score_threshold: float | None | str = "index",
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> list[SearchResult]:
        """Search with features computed elsewhere (``[q, dim]``); fewer than ``top_k`` when the gallery is smaller."""
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise UsageError(f"top_k must be a positive integer; got {top_k!r}.")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim == 1:
            vectors = vectors[None]
        if len(vectors) and vectors.shape[1] != self.store.dim:
            raise GalleryIndexError(
                f"The query features have {vectors.shape[1]} dimensions but the index{self._where()} holds "
                f"{self.store.dim}-d features (built by {self.meta.model_name}); use that model."
            )
        threshold = self.meta.score_threshold if score_threshold == "index" else score_threshold
        if not len(vectors):
            return []
        scores, ids = self.store.search(vectors, int(top_k), {"nprobe": nprobe, "ef_search": ef_search})
        wanted = {int(i) for i in ids.ravel() if i >= 0}
        records = {rec.id: rec for rec in self.store.records(wanted)}
        results = []
        for q in range(len(vectors)):
            hits = [(float(s), int(i)) for s, i in zip(scores[q], ids[q]) if i >= 0 and int(i) in records]
            labels = [records[i].label for _, i in hits]
            top = labels[0] if labels else UNKNOWN
            if (
                hits
                and threshold is not None
                and not isinstance(threshold, str)
                and self._misses(hits[0][0], threshold)
            ):
                top = UNKNOWN
            results.append(
                SearchResult(
                    input_paths[q] if input_paths else None,
                    labels,
                    [s for s, _ in hits],
                    [i for _, i in hits],
                    [records[i].path for _, i in hits],
                    label=top,
                    save_stem=save_stems[q] if save_stems else f"query_{q}",
                )
            )
        return results

    def _misses(self, score: float, threshold: float) -> bool:
        return score < threshold if self.meta.metric == "IP" else score > threshold

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the index folder atomically (a crash leaves the old folder or the new one)."""
        from .folder import save_store

        target = Path(path) if path is not None else self.path
        if target is None:
            raise UsageError("save() needs a folder: index.save('output/index').")
        self._touch()
        save_store(self.store, self.meta, target)
        self.path = target
        logger.info(f"Index: saved {self.store.count()} items to {target}")
        return target

    # -- reading -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.store.count()

    def close(self) -> None:
        """Release the store's connections (a Milvus client; nothing for faiss)."""
        self.store.close()

    def __enter__(self) -> GalleryIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def items(self) -> Iterator[ItemRecord]:
        """Every live item, in id order."""
        return self.store.records()

    def _touch(self) -> None:
        self.meta.count = self.store.count()
        self.meta.updated = utc_now()
        self.store.write_meta(self.meta)

    def _where(self) -> str:
        return f" at {self.path}" if self.path else ""


def measure_recall(
    store: VectorStore, vectors: np.ndarray, ids: np.ndarray, k: int = RECALL_K, sample: int = RECALL_SAMPLE
) -> float:
    """recall@k of the store against exact search over ``vectors`` (stored under ``ids``), ``sample`` of them as queries."""
    n = len(vectors)
    k = min(k, n)
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(n, size=min(sample, n), replace=False)]
    exact = exact_topk(queries, vectors, k, store.metric)
    _, found = store.search(queries, k)
    return overlap_recall(np.asarray(ids, dtype=np.int64)[exact], found)


def overlap_recall(exact: np.ndarray, found: np.ndarray) -> float:
    """recall@k: the share of each row of exact top-k ids that the search found (``[q, k]`` arrays)."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(exact, found))
    return hits / max(1, exact.size)


def exact_topk(
    queries: np.ndarray, vectors: np.ndarray, k: int, metric: str = "IP", chunk: int = 65536
) -> np.ndarray:
    """Row numbers of the exact top-``k`` of each query, best first (chunked: memory stays small)."""
    blocks = (
        (np.arange(start, min(start + chunk, len(vectors))), vectors[start : start + chunk])
        for start in range(0, len(vectors), chunk)
    )
    return exact_topk_blocks(queries, blocks, k, metric)


def exact_topk_blocks(
    queries: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]], k: int, metric: str = "IP"
) -> np.ndarray:
    """Keys of the exact top-``k`` of each query over ``(keys, vectors)`` blocks, best first: a collection read
    in chunks is searched exactly while only the running top-k stays in memory."""
    best_s = np.full((len(queries), 0), 0, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for keys, block in blocks:
        s = queries @ block.T
        if metric == "L2":
            s = 2 * s - (block * block).sum(1)[None]  # -||q-x||^2 up to a per-query constant
        s = np.concatenate([best_s, s], axis=1)
        i = np.concatenate(
            [best_i, np.broadcast_to(np.asarray(keys, np.int64), (len(queries), len(block)))], axis=1
        )
        top = (
            np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
            if s.shape[1] > k
            else np.argsort(-s, axis=1)
        )
        best_s = np.take_along_axis(s, top, 1)
        best_i = np.take_along_axis(i, top, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


def note_unreadable(report: UpdateReport, entry: GalleryEntry, err: Any, skip_errors: bool) -> None:
    """An image that cannot be read: a DatasetError naming its entry, or (``skip_errors``) a listed skip."""
    message = (
        f"{entry.where}: cannot read {entry.path or 'the image'}: {getattr(err, 'strerror', None) or err}"
    )
    if not skip_errors:
        raise DatasetError(
            f"{message}. Fix or remove that entry, or set Predict.skip_errors=True (skip_errors=True) to skip it."
        )
    logger.warning(f"Skipped: {message}")
    report.errors.append(message)


def _hash_and_dedupe(
    entries: list[GalleryEntry], indexed: dict[str, int], report: UpdateReport, skip_errors: bool
) -> tuple[list[GalleryEntry], list[str]]:
    """Content hashes of the readable entries, without duplicates (in the list or already indexed)."""
    readable, hashes = [], []
    for e in entries:
        try:
            e, h = hash_entry(e)
            hashes.append(h)
            readable.append(e)
        except OSError as err:
            note_unreadable(report, e, err, skip_errors)
    return _dedupe(readable, hashes, indexed, report)


def _dedupe(
    entries: list[GalleryEntry], hashes: list[str], indexed: dict[str, int], report: UpdateReport
) -> tuple[list[GalleryEntry], list[str]]:
    kept, kept_hashes, first = [], [], {}
    for e, h in zip(entries, hashes):
        if h in indexed:
            report.duplicates.append(f"{e.where}: same content as id {indexed[h]}, not added again")
        elif h in first:
            report.duplicates.append(f"{e.where}: same content as {first[h]}, not added again")
        else:
            first[h] = e.where
            kept.append(e)
            kept_hashes.append(h)
    if report.duplicates:
        logger.info(
            f"Index: {len(report.duplicates)} duplicate image(s) skipped, e.g. {report.duplicates[0]}"
        )
    return kept, kept_hashes


def embed_entries(
    model: Predictor,
    entries: list[GalleryEntry],
    hashes: list[str],
    report: UpdateReport,
    batch_size: int | None,
    skip_errors: bool,
) -> tuple[np.ndarray, list[GalleryEntry], list[str]]:
    """Features of the entries through the predictor; unreadable images stop or are skipped and listed."""
    if not entries:
        return np.zeros((0, 0), np.float32), [], []
    stream = model.predict([e.source for e in entries], batch_size=batch_size, skip_errors=True)
    rows, kept, kept_hashes = [], [], []
    try:
        for e, h, res in zip(entries, hashes, stream):
            if not res.ok:
                note_unreadable(report, e, res.error, skip_errors)
                continue
            rows.append(res.feature)
            kept.append(e)
            kept_hashes.append(h)
    finally:
        stream.close()
    return (np.stack(rows) if rows else np.zeros((0, 0), np.float32)), kept, kept_hashes
