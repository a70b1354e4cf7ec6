"""The storage interface behind a GalleryIndex: vectors with int64 ids, one item record per id, a meta.

A store knows nothing of images or models. It keeps vectors and their records and answers top-k
searches; the GalleryIndex above it embeds images, checks the model and applies the rules
(duplicates, labels, thresholds). faiss (``faiss_store.FaissStore``) is the embedded default; a
distributed engine implements the same ABC.

Ids are int64 and are handed out by the store, because backends number items differently: the
faiss store keeps PaddleX's rule (sequential from 0 in insertion order, ``max + 1`` on append, never
reused), a content-hash-keyed backend may map ids its own way. Callers never assume contiguity.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

METRICS = ("IP", "L2")  # IP on L2-normalised features is cosine similarity, PaddleX's default


@dataclass(frozen=True)
class ItemRecord:
    """One gallery entry: its id, label, where it came from and the hash of its bytes."""

    id: int
    label: str
    path: str | None = None  # None for an image given as an array
    content_hash: str | None = None  # sha256 of the file bytes (arrays: of their pixels and shape)
    file_stat: str | None = None  # 'size:mtime_ns' when hashed: sync re-reads only files whose stat changed

    def to_json(self) -> dict[str, Any]:
        """The items.jsonl line (as a dict); spelled out, as asdict() costs seconds per 10k items."""
        return {
            "id": self.id,
            "label": self.label,
            "path": self.path,
            "content_hash": self.content_hash,
            "file_stat": self.file_stat,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemRecord:
        """An ItemRecord from an items.jsonl line (as a dict); KeyError/TypeError on a bad one."""
        return cls(
            int(data["id"]),
            str(data["label"]),
            data.get("path"),
            data.get("content_hash"),
            data.get("file_stat"),
        )


@dataclass
class IndexMeta:
    """What ``meta.json`` records: the model that built the index, the index kind and its state."""

    model_name: str | None
    model_hash: str | None  # sha256 over the inference folder's program, params and inference.yml
    dim: int
    metric: str = "IP"
    index_type: str = "Flat"  # Flat, HNSW, IVF or IVF_PQ (what was built; 'auto' is resolved)
    index_params: dict[str, Any] = field(default_factory=dict)  # factory string, nlist, nprobe, ...
    input_size: list[int] | None = None  # [h, w] the model's pre-processing produces
    preprocess: list[Any] | None = None  # inference.yml's PreProcess.transform_ops
    model_dir: str | None = None  # where the model was when the index was built (a hint, not a key)
    recall_at_10: float | None = None  # measured against exact search on a sample at build time
    score_threshold: float | str | None = None  # the threshold under which search says "unknown"
    score_threshold_source: dict[str, Any] | None = None  # {"from": "auto", "evaluate_result": ...} or config
    count: int = 0
    created: str | None = None  # ISO 8601, UTC
    updated: str | None = None
    format_version: int = 1
    backend: str = "faiss"  # which VectorStore holds the vectors (load_index picks the loader by it)
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific entries, kept as read

    def to_json(self) -> dict[str, Any]:
        """The meta.json content."""
        return asdict(self)


class VectorStore(ABC):
    """Vectors + item records under int64 ids, searched top-k; see the module docstring."""

    backend: str = "?"  # a short name for logs and meta ('faiss', 'milvus')

    @property
    @abstractmethod
    def dim(self) -> int:
        """Feature dimension."""

    @property
    @abstractmethod
    def metric(self) -> str:
        """``IP`` (higher is better) or ``L2`` (lower is better)."""

    @abstractmethod
    def add(self, vectors: np.ndarray, records: Sequence[ItemRecord]) -> np.ndarray:
        """Store ``[n, dim]`` float32 rows with their records; returns the int64 ids given to them.

        The ``id`` field of the records passed in is ignored: the store assigns ids and the records
        it keeps (see ``records``) carry them.
        """

    def _checked_rows(self, vectors: np.ndarray, records: Sequence[ItemRecord]) -> np.ndarray:
        """``vectors`` as contiguous float32 ``[len(records), dim]``; ValueError on another shape."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(records):
            raise ValueError(
                f"expected [{len(records)}, {self.dim}] vectors for {len(records)} records; got {list(vectors.shape)}"
            )
        return vectors

    @abstractmethod
    def remove(self, ids: Iterable[int]) -> int:
        """Remove these ids (all known to the caller); returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` per query row, best first: ``(scores [q, k] float32, ids [q, k] int64)``.

        Rows with fewer than ``k`` hits are padded with id -1 (the caller drops them).
        """

    @abstractmethod
    def count(self) -> int:
        """Number of live items."""

    @abstractmethod
    def records(self, ids: Iterable[int] | None = None) -> Iterator[ItemRecord]:
        """The records of ``ids`` (unknown ids are skipped), or of every live item in id order."""

    @abstractmethod
    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored ``[len(ids), dim]`` float32 rows of these ids, to move items between backends."""

    @abstractmethod
    def read_meta(self) -> IndexMeta | None:
        """The meta this store holds (None before the first write)."""

    @abstractmethod
    def write_meta(self, meta: IndexMeta) -> None:
        """Replace the meta (persisted by ``save``, or at once by a store that persists itself)."""

    def save(self, path: str | None = None) -> None:  # noqa: B027 - optional: stores that persist themselves
        """Persist everything to ``path`` atomically (a store that writes as it goes may ignore it)."""

    def wait_for_index(self) -> bool:
        """Block until searches go through the built index (a database may build it in the background); True
        when they do. faiss builds it as vectors are added."""
        return True

    def compact(self) -> int:
        """Reclaim the space of removed items; returns how many were dropped (0 if nothing to do)."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections or files."""
