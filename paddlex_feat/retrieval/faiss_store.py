"""The embedded store: a faiss index in PaddleX's folder format plus our records and meta.

Folder: ``vector.index`` (faiss) and ``id_map.yaml`` (``id_map``, ``metric_type``, ``index_type``)
are PaddleX's, so its PP-ShiTuV2 pipeline loads our folders and we load its; ``items.jsonl`` and
``meta.json`` are ours. Flat and HNSW sit in an ``IndexIDMap2`` as PaddleX's do. IVF and IVF_PQ
keep the ids in the inverted lists themselves: ``IndexIDMap2.remove_ids`` over an IVF index
compacts its id table while the IVF keeps its old internal ids, so every answer after a removal
is shifted by one (checked with faiss 1.15; PaddleX's IVF remove has this defect). PaddleX only
calls ``search`` on the file, which both layouts answer with our ids.

HNSW cannot delete: removed ids become tombstones that search filters out with an id selector,
until ``compact()`` (or ``save``, so PaddleX never sees a removed item) rebuilds the graph.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import yaml

from ..utils.errors import GalleryIndexError
from ..utils.logger import logger
from .index_types import IndexPlan, train_size
from .store import METRICS, IndexMeta, ItemRecord, VectorStore

# libyaml's C dumper when present: the pure-Python one takes seconds on a 10k-item id_map
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
VECTOR_FILE = "vector.index"
ID_MAP_FILE = "id_map.yaml"
ITEMS_FILE = "items.jsonl"
META_FILE = "meta.json"
FILE_HASHES = "file_sha256"  # meta.json extra: sha256 of id_map.yaml and items.jsonl as saved
YAML_WIDTH = 1 << 30  # never wrap a long label onto a second line (dump_id_map renders one line per entry)
LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")  # YAML line breaks: such a label is rendered in place
_ENCODE = json.JSONEncoder(
    ensure_ascii=False
).encode  # json.dumps(..., ensure_ascii=False) builds one per call
# PaddleX's names in id_map.yaml; it refuses remove on "HNSW32", which is right for a file without our tombstones
PADDLEX_TYPE = {"Flat": "Flat", "HNSW": "HNSW32", "IVF": "IVF", "IVF_PQ": "IVF_PQ"}


def factory_string(plan: IndexPlan) -> str:
    """The faiss ``index_factory`` string of a plan."""
    p = plan.params
    if plan.index_type == "HNSW":  # a plan without "storage" is an index made before fp16 graphs: fp32
        return f"HNSW{p['M']}" + (",SQfp16" if p.get("storage") == "fp16" else "")
    if plan.index_type == "IVF":
        return f"IVF{p['nlist']},Flat"
    if plan.index_type == "IVF_PQ":
        return f"IVF{p['nlist']},PQ{p['pq_m']}x{p['pq_bits']}"
    return "Flat"


def hnsw_storage(graph: faiss.IndexHNSW) -> str:
    """How an HNSW graph holds its vectors: "fp16" (ours since float16 graphs) or "fp32" (PaddleX's, older)."""
    return "fp16" if isinstance(graph, faiss.IndexHNSWSQ) else "fp32"


def faiss_metric(metric: str) -> int:
    """faiss's metric constant for ``IP`` or ``L2``."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return faiss.METRIC_INNER_PRODUCT if metric == "IP" else faiss.METRIC_L2


class FaissStore(VectorStore):
    """A faiss index plus records, in memory; ``save``/``load`` use the index folder format."""

    backend = "faiss"

    def __init__(
        self,
        index: faiss.Index,
        index_type: str,
        metric: str,
        records: dict[int, ItemRecord] | None = None,
        next_id: int = 0,
        meta: IndexMeta | None = None,
        search_defaults: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.index_type = index_type
        self._metric = metric
        self._records: dict[int, ItemRecord] = records or {}
        self._next_id = next_id
        self._meta = meta
        self._tombstones: set[int] = set()  # HNSW only: removed ids still in the graph
        self.search_defaults = dict(search_defaults or {})

    # -- creation ------------------------------------------------------------------------------

    @classmethod
    def create(cls, dim: int, metric: str, plan: IndexPlan, train: np.ndarray | None = None) -> FaissStore:
        """An empty store for ``plan``; IVF types are trained on ``train`` (the gallery's vectors)."""
        inner = faiss.index_factory(dim, factory_string(plan), faiss_metric(metric))
        # the search knobs are also set on the index itself, so that the saved file answers as ours do
        # when PaddleX (which sets neither) searches it
        if plan.index_type == "HNSW":
            inner.hnsw.efConstruction = plan.params.get("ef_construction", 40)
            inner.hnsw.efSearch = plan.params.get("ef_search", 16)
        if plan.index_type in ("IVF", "IVF_PQ"):
            if train is None:
                raise ValueError(f"{plan.index_type} needs training vectors")
            rows = train_size(plan.params)
            if len(train) > rows:  # a seeded sample: k-means over the whole gallery costs minutes per million
                train = train[np.sort(np.random.default_rng(0).choice(len(train), rows, replace=False))]
            inner.train(np.ascontiguousarray(train, dtype=np.float32))
            inner.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
            inner.nprobe = plan.params.get("nprobe", 1)
            index = inner
        else:
            index = faiss.IndexIDMap2(inner)
        defaults = {k: v for k, v in plan.params.items() if k in ("nprobe", "ef_search")}
        return cls(index, plan.index_type, metric, search_defaults=defaults)

    # -- VectorStore ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def metric(self) -> str:
        return self._metric

    def add(self, vectors: np.ndarray, records: Sequence[ItemRecord]) -> np.ndarray:
        vectors = self._checked_rows(vectors, records)
        ids = np.arange(self._next_id, self._next_id + len(records), dtype=np.int64)  # PaddleX's rule
        if len(ids):
            self.index.add_with_ids(vectors, ids)
        for i, rec in zip(ids.tolist(), records):
            self._records[i] = ItemRecord(i, rec.label, rec.path, rec.content_hash, rec.file_stat)
        self._next_id += len(records)
        return ids

    def remove(self, ids: Iterable[int]) -> int:
        ids = np.array(sorted({int(i) for i in ids if int(i) in self._records}), dtype=np.int64)
        if not len(ids):
            return 0
        if self.index_type == "HNSW":
            self._tombstones.update(ids.tolist())
        else:
            self.index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids)))
        for i in ids.tolist():
            del self._records[i]
        return len(ids)

    def search(
        self, queries: np.ndarray, k: int, params: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(int(k), self.count()))
        if not self._records:
            n = len(queries)
            return np.zeros((n, 0), np.float32), np.full((n, 0), -1, np.int64)
        scores, ids = self.index.search(queries, k, params=self._search_parameters(params))
        return scores, ids

    def _search_parameters(self, params: dict[str, Any] | None) -> faiss.SearchParameters | None:
        """faiss per-call parameters: nprobe / efSearch, and the tombstone filter."""
        knobs = {**self.search_defaults, **{k: v for k, v in (params or {}).items() if v is not None}}
        selector = None
        if self._tombstones:
            dead = np.fromiter(self._tombstones, dtype=np.int64)
            self._dead = dead  # the selector keeps a pointer into this array: keep it alive
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(len(dead), faiss.swig_ptr(dead)))
            self._selector = selector
        if self.index_type == "HNSW":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=int(knobs.get("ef_search") or 16))
        if self.index_type in ("IVF", "IVF_PQ"):
            return faiss.SearchParametersIVF(nprobe=int(knobs.get("nprobe") or 1))
        return None

    def count(self) -> int:
        return len(self._records)

    def records(self, ids: Iterable[int] | None = None) -> Iterator[ItemRecord]:
        if ids is None:
            yield from (self._records[i] for i in sorted(self._records))
            return
        for i in ids:
            rec = self._records.get(int(i))
            if rec is not None:
                yield rec

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for row, i in enumerate(ids):
            if int(i) not in self._records:
                raise KeyError(f"id {i} is not in the index")
            out[row] = self.index.reconstruct(int(i))  # IVF_PQ: the decoded (approximate) vector
        return out

    def read_meta(self) -> IndexMeta | None:
        return self._meta

    def write_meta(self, meta: IndexMeta) -> None:
        self._meta = meta

    @property
    def next_id(self) -> int:
        """The id the next added item gets (never reused, even after the highest id is removed)."""
        return self._next_id

    @property
    def tombstones(self) -> int:
        """Removed HNSW items still in the graph."""
        return len(self._tombstones)

    def compact(self) -> int:
        """HNSW: rebuild the graph without the tombstones (ids and records unchanged)."""
        if not self._tombstones:
            return 0
        dropped = len(self._tombstones)
        live = np.array(sorted(self._records), dtype=np.int64)
        vectors = self.vectors(live) if len(live) else np.zeros((0, self.dim), np.float32)
        old = faiss.downcast_index(self.index.index)
        same = IndexPlan("HNSW", {"M": old.hnsw.nb_neighbors(1), "storage": hnsw_storage(old)})
        graph = faiss.index_factory(self.dim, factory_string(same), old.metric_type)  # owns the C++ index
        hnsw = faiss.downcast_index(graph).hnsw
        hnsw.efConstruction, hnsw.efSearch = old.hnsw.efConstruction, old.hnsw.efSearch
        index = faiss.IndexIDMap2(graph)
        if len(live):
            index.add_with_ids(vectors, live)
        self.index, self._tombstones = index, set()
        logger.info(f"Index: compacted HNSW, dropped {dropped} removed item(s), {len(live)} kept.")
        return dropped

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike | None = None) -> None:
        """Write the four files into ``path`` (a fresh folder; GalleryIndex makes the swap atomic)."""
        if path is None:
            raise ValueError("FaissStore.save needs a folder")
        self.compact()  # PaddleX reads the file without our tombstones: never hand it a removed item
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / VECTOR_FILE))
        labels = {i: r.label for i, r in sorted(self._records.items())}
        id_map_text = dump_id_map(labels, self._metric, PADDLEX_TYPE[self.index_type])
        items_text = "".join(_ENCODE(self._records[i].to_json()) + "\n" for i in sorted(self._records))
        (folder / ID_MAP_FILE).write_text(id_map_text, encoding="utf-8")
        (folder / ITEMS_FILE).write_text(items_text, encoding="utf-8")
        meta = self._meta.to_json() if self._meta else {}
        meta.setdefault("extra", {})["next_id"] = self._next_id
        # what load needs to trust these two files without parsing the YAML again (see read_faiss_folder)
        meta["extra"][FILE_HASHES] = {ID_MAP_FILE: _sha256(id_map_text), ITEMS_FILE: _sha256(items_text)}
        (folder / META_FILE).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        for name in (VECTOR_FILE, ID_MAP_FILE, ITEMS_FILE, META_FILE):
            _fsync(folder / name)


def dump_id_map(labels: dict[int, str], metric: str, index_type: str) -> str:
    """id_map.yaml's text, as yaml.dump writes it (lines unwrapped); each distinct label is rendered once.

    A class has many images, so a gallery has far fewer distinct labels than items; rendering the
    10k entries of a 10k gallery one by one in PyYAML's representer took seconds (most of a sync).
    """
    distinct = list(dict.fromkeys(labels.values()))
    tail = _yaml_text({"metric_type": metric, "index_type": index_type})
    if labels and not any(ch in label for label in distinct for ch in LINE_BREAKS):
        lines = _yaml_text(dict(enumerate(distinct))).splitlines()
        heads = [f"{n}: " for n in range(len(distinct))]
        if len(lines) == len(distinct) and all(line.startswith(h) for line, h in zip(lines, heads)):
            scalar = {label: line[len(h) :] for label, line, h in zip(distinct, lines, heads)}
            return "id_map:\n" + "".join(f"  {i}: {scalar[lb]}\n" for i, lb in labels.items()) + tail
    return _yaml_text({"id_map": labels}) + tail  # an empty map, or a label spanning lines


def _yaml_text(data: dict) -> str:
    return yaml.dump(
        data,
        Dumper=SafeDumper,
        allow_unicode=True,
        default_flow_style=False,
        sort_keys=False,
        width=YAML_WIDTH,
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_faiss_folder(folder: Path, meta: IndexMeta | None) -> tuple[FaissStore, IndexMeta]:
    """A FaissStore from ``folder``: ours (four files) or PaddleX's (vector.index + id_map.yaml)."""
    from .folder import ids_of, read_id_map, read_items

    trusted = _unchanged_since_save(folder, meta)
    if trusted is not None:  # both files as we wrote them: id_map.yaml says what items.jsonl says
        items, metric = trusted
        id_map = {r.id: r.label for r in items}
    else:
        id_map, metric, _ = read_id_map(folder / ID_MAP_FILE)
    try:
        index = faiss.read_index(str(folder / VECTOR_FILE))
    except RuntimeError as e:
        raise GalleryIndexError(
            f"{folder / VECTOR_FILE} is not a readable faiss index ({str(e).splitlines()[-1][:200]}); rebuild the index."
        ) from e
    if index.ntotal != len(id_map):
        raise GalleryIndexError(
            f"{folder}: {VECTOR_FILE} holds {index.ntotal} vectors but {ID_MAP_FILE} lists {len(id_map)} ids; "
            "one of the two was changed without the other. Rebuild the index."
        )
    ids = ids_of(index)
    if set(ids.tolist()) != set(id_map):
        raise GalleryIndexError(
            f"{folder}: the ids in {VECTOR_FILE} and {ID_MAP_FILE} differ; rebuild the index."
        )
    index_type = meta.index_type if meta else _type_of(index)  # PaddleX's names vary (HNSW32, IVF): ask faiss
    if meta is None:  # PaddleX's folder: labels only, no model to check against
        records = {i: ItemRecord(i, label) for i, label in id_map.items()}
        meta = _paddlex_meta(index, metric, index_type)
        logger.info(
            f"Index: {folder} is a PaddleX index ({len(records)} items); it does not record its model."
        )
    else:
        if not (folder / ITEMS_FILE).is_file():
            raise GalleryIndexError(
                f"{folder}: {META_FILE} is there but {ITEMS_FILE} is missing; rebuild the index."
            )
        items = trusted[0] if trusted is not None else read_items(folder / ITEMS_FILE)
        if len(items) != index.ntotal:
            raise GalleryIndexError(
                f"{folder}: {ITEMS_FILE} has {len(items)} items but {VECTOR_FILE} holds {index.ntotal} vectors; "
                "the folder was changed by hand or by another tool (PaddleX's append/remove update only its "
                f"two files). Rebuild the index, or delete {ITEMS_FILE} and {META_FILE} to open it as a PaddleX index."
            )
        records = {r.id: r for r in items}
        if set(records) != set(id_map) or any(id_map[i] != r.label for i, r in records.items()):
            raise GalleryIndexError(
                f"{folder}: {ITEMS_FILE} and {ID_MAP_FILE} disagree on ids or labels; rebuild the index."
            )
        if meta.dim != index.d or meta.metric != metric:
            raise GalleryIndexError(
                f"{folder}: {META_FILE} says dim {meta.dim}, metric {meta.metric}, but {VECTOR_FILE} is "
                f"{index.d}-d with {ID_MAP_FILE} metric {metric}; rebuild the index."
            )
    next_id = max(int(meta.extra.get("next_id", 0)), max(records, default=-1) + 1)
    defaults = {k: v for k, v in meta.index_params.items() if k in ("nprobe", "ef_search")}
    return FaissStore(index, index_type, metric, records, next_id, meta, defaults), meta


def _unchanged_since_save(folder: Path, meta: IndexMeta | None) -> tuple[list[ItemRecord], str] | None:
    """(items, metric) when id_map.yaml and items.jsonl hash as meta.json recorded at save, else None.

    Parsing a 10k-entry id_map.yaml took a second; hashing it takes a millisecond. Files changed
    since (by hand, or by PaddleX's append, which rewrites id_map.yaml) are parsed and checked in full.
    """
    from .folder import read_items

    saved = meta.extra.get(FILE_HASHES) if meta is not None else None
    if not isinstance(saved, dict):
        return None
    try:
        id_map_bytes = (folder / ID_MAP_FILE).read_bytes()
        items_bytes = (folder / ITEMS_FILE).read_bytes()
    except OSError:
        return None
    sha = hashlib.sha256
    if sha(id_map_bytes).hexdigest() != saved.get(ID_MAP_FILE) or sha(items_bytes).hexdigest() != saved.get(
        ITEMS_FILE
    ):
        return None
    metric = (
        id_map_bytes.decode("utf-8").rsplit("\nmetric_type: ", 1)[-1].split("\n", 1)[0]
    )  # dump_id_map's tail
    return read_items(folder / ITEMS_FILE, items_bytes.decode("utf-8")), metric


def _type_of(index: faiss.Index) -> str:
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        return "HNSW"
    if isinstance(inner, faiss.IndexIVFPQ):
        return "IVF_PQ"
    if isinstance(inner, faiss.IndexIVF):
        return "IVF"
    return "Flat"


def _paddlex_meta(index: faiss.Index, metric: str, index_type: str) -> IndexMeta:
    params: dict[str, Any] = {}
    if index_type in ("IVF", "IVF_PQ"):
        ivf = faiss.extract_index_ivf(index)
        params = {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}
    if index_type == "HNSW":
        inner = faiss.downcast_index(index.index)
        params = {"ef_search": int(inner.hnsw.efSearch), "storage": hnsw_storage(inner)}
    return IndexMeta(None, None, int(index.d), metric, index_type, params, count=int(index.ntotal))
