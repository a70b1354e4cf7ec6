"""The distributed store: a Milvus collection behind the VectorStore interface (pymilvus ``MilvusClient``).

One client talks to a Milvus server or cluster (``http://host:19530``) and to Milvus Lite, an embedded
Milvus kept in a local ``*.db`` path, with the same calls. What we found about Milvus Lite 3.2.2 with
pymilvus 3.0.2 (and plan around):

- It runs in-process: pymilvus hands a ``*.db`` uri to ``milvus_lite.server_manager``, which starts a
  gRPC server thread on a free localhost port, one per path, until released. ``client.close()`` does
  not stop it, so ``close()`` releases it (counted per path: two stores on one file share one server).
- The ``*.db`` path is a folder, locked by one process: a second process cannot open it. Parallel
  sharded builds need a server; against a file, run the shards one after another.
- Index types: FLAT, HNSW, IVF_FLAT (and IVF_SQ8, HNSW_SQ). IVF_PQ is accepted at creation but fails
  once a segment is flushed ("reserved for a future phase"), so it is refused here up front.
- Collection properties keep arbitrary key/values (the schema description does not survive): our meta
  lives there as JSON under ``paddlex_feat.meta``, written at creation and checked on every open.
- Filter templates (``filter_params``) are not supported: filters are literals built by ``_literal``.
- Segment indexes are built by a background worker after each flush; until then a segment is searched by
  brute force (exact). ``describe_index`` always answers "Finished", so ``wait_for_index`` drains the
  in-process engine's queue instead (a Lite server in another process cannot be waited for).
- ``milvus-lite server`` serves the same engine on a TCP port; it checks no credentials.

Ids are the first 63 bits of each image's sha256 (``id_for_hash``), so the same image always gets the
same primary key and an insert is an upsert: a retried batch or a repeated shard duplicates nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from hashlib import sha256
from pathlib import Path
from typing import Any

import numpy as np

from ..utils.errors import GalleryIndexError, UsageError
from ..utils.logger import logger
from .index_types import IndexPlan
from .store import IndexMeta, ItemRecord, VectorStore

META_PROPERTY = "paddlex_feat.meta"
CONNECT_TIMEOUT_S = 10.0  # a server that does not answer fails in seconds, not at gRPC's default
PIP_COMMAND = (
    'pip install "pymilvus>=3.0.2" "milvus-lite>=3.2.2"  (or, in a checkout: pip install -e ".[milvus]")'
)
DEFAULT_COLLECTION = "gallery"
LABEL_MAX = 4096  # VARCHAR max_length counts bytes
PATH_MAX = 4096
HASH_MAX = 64
WRITE_BATCH = 1000  # rows per upsert: 512-d float32 rows make ~2 MB messages, far under gRPC's 64 MB
READ_BATCH = 1000
MAX_TOP_K = 16384  # Milvus refuses a larger limit
INDEX_WAIT_S = 3600.0  # the longest wait for background index builds (an HNSW over 1M rows here: minutes)
INDEX_TYPE = {"Flat": "FLAT", "HNSW": "HNSW", "IVF": "IVF_FLAT", "IVF_PQ": "IVF_PQ"}
LITE_INDEX_TYPES = ("Flat", "HNSW", "IVF")
# an adopted collection (Index.create=False) may lack the last three
RECORD_FIELDS = ("id", "label", "path", "content_hash", "file_stat")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


class CollectionMissing(GalleryIndexError):
    """The uri answers but holds no collection of that name."""


_lite_users: dict[str, int] = {}  # Milvus Lite path -> open stores on it in this process
_lite_lock = threading.Lock()


def require_pymilvus() -> Any:
    """The pymilvus module, or a GalleryIndexError that gives the exact pip command."""
    try:
        import pymilvus
    except ImportError as e:
        raise GalleryIndexError(
            f"Index.backend=milvus needs pymilvus (and milvus-lite for a local *.db file), which is not installed: "
            f"{PIP_COMMAND}"
        ) from e
    return pymilvus


def is_lite(uri: str) -> bool:
    """Whether ``uri`` names an embedded Milvus Lite file (``*.db``) rather than a server."""
    return not re.match(r"^[a-z+]+://", uri) and uri.endswith(".db")


def id_for_hash(content_hash: str) -> int:
    """The int64 primary key of a content hash: its first 63 bits (non-negative, stable everywhere)."""
    return int(content_hash[:16], 16) & 0x7FFF_FFFF_FFFF_FFFF


def vector_hash(vector: np.ndarray) -> str:
    """A stand-in content hash for an item known only by its feature (a PaddleX folder has no image hashes)."""
    return sha256(np.ascontiguousarray(vector, dtype=np.float32).tobytes()).hexdigest()


@dataclass(frozen=True)
class MilvusTarget:
    """Where a collection lives: the client uri (server URL or Lite file), the collection, an optional token."""

    uri: str
    collection: str = DEFAULT_COLLECTION
    token: str | None = None

    def __str__(self) -> str:
        return f"{self.uri} (collection {self.collection})"


def parse_milvus_url(url: str, token: str | None = None) -> MilvusTarget:
    """``milvus://host:port/collection``, ``milvus+https://host/collection`` or ``milvus://path/file.db/collection``."""
    match = re.match(r"^milvus(\+https?)?://(.*)$", url)
    if not match:
        raise UsageError(f"{url!r} is not a milvus:// URL; e.g. milvus://localhost:19530/products.")
    scheme, rest = (match.group(1) or "+http")[1:], match.group(2)
    parts = rest.split("/")
    db = next((i for i, part in enumerate(parts) if part.endswith(".db")), None)
    if db is not None:  # a Lite file: everything up to the *.db component, then the collection
        uri = "/".join(parts[: db + 1]) or "/"
        collection = "/".join(parts[db + 1 :]) or DEFAULT_COLLECTION
    else:
        host, _, collection = rest.partition("/")
        if not host:
            raise UsageError(f"{url!r} names no host; e.g. milvus://localhost:19530/products.")
        uri = f"{scheme}://{host if ':' in host else host + ':19530'}"
        collection = collection.strip("/") or DEFAULT_COLLECTION
    return MilvusTarget(uri, collection, token or os.environ.get("MILVUS_TOKEN") or None)


def check_collection_name(name: str) -> None:
    """Milvus's rule for collection names, checked before any connection."""
    if not NAME_RE.match(name or ""):
        raise UsageError(
            f"Index.collection={name!r} is not a valid Milvus collection name: use letters, digits and '_', "
            "starting with a letter or '_', at most 255 characters (e.g. products_v2)."
        )


# -- connection ----------------------------------------------------------------------------------------


def connect(target: MilvusTarget, timeout: float = CONNECT_TIMEOUT_S) -> Any:
    """A MilvusClient for ``target``; fails within ``timeout`` seconds with the uri and the embedded alternative."""
    pymilvus = require_pymilvus()
    lite = is_lite(target.uri)
    if lite:
        Path(target.uri).parent.mkdir(parents=True, exist_ok=True)  # pymilvus refuses a missing parent folder
        _quiet_lite_logs()
    try:
        client = pymilvus.MilvusClient(uri=target.uri, token=target.token or "", timeout=timeout)
    except pymilvus.exceptions.MilvusException as e:
        if lite:
            raise GalleryIndexError(
                f"Cannot open the Milvus Lite file {target.uri}: {e.message}. Milvus Lite lets one process "
                "at a time use a file: stop the other process (or run sharded builds one after another), or use "
                "a Milvus server (-o Index.uri=http://HOST:19530) for parallel writers. If the path is not a "
                "Milvus Lite folder, choose another Index.uri."
            ) from e
        if _refused_credentials(e):
            raise GalleryIndexError(
                f"Milvus at {target.uri} refused the credentials ({'Index.token / MILVUS_TOKEN' if target.token else 'none were given'}): "
                f"{_grpc_details(e)}. Set -o Index.token=USER:PASSWORD (or an API key), or the MILVUS_TOKEN "
                "environment variable, to one the server accepts."
            ) from e
        raise GalleryIndexError(
            f"Cannot reach Milvus at {target.uri} within {timeout:g} s ({e.message}). Check the address, the "
            "port (gRPC, default 19530) and Index.token, and that the server runs; or keep the gallery in an "
            "embedded Milvus Lite file instead, with no server: -o Index.uri=output/gallery.db"
        ) from e
    if lite:
        with _lite_lock:
            key = os.path.abspath(target.uri)
            _lite_users[key] = _lite_users.get(key, 0) + 1
    return client


def _refused_credentials(error: Exception) -> bool:
    """Whether the connection failed on authentication (gRPC UNAUTHENTICATED under pymilvus's CONNECT_FAILED)."""
    import grpc

    cause = error.__cause__
    return isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.UNAUTHENTICATED


def _grpc_details(error: Exception) -> str:
    cause = error.__cause__
    return str(cause.details()) if cause is not None and hasattr(cause, "details") else str(error)


def disconnect(client: Any, target: MilvusTarget) -> None:
    """Close the client; stop the in-process Milvus Lite server when its last store on the file closes."""
    try:
        client.close()
    finally:
        if is_lite(target.uri):
            key = os.path.abspath(target.uri)
            with _lite_lock:
                _lite_users[key] = _lite_users.get(key, 1) - 1
                last = _lite_users[key] <= 0
                if last:
                    del _lite_users[key]
            if last:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(target.uri)


# -- the store -----------------------------------------------------------------------------------------


class MilvusStore(VectorStore):
    """A collection with fields id (INT64 key), vector, label, path, content_hash; meta in its properties."""

    backend = "milvus"

    def __init__(
        self,
        client: Any,
        target: MilvusTarget,
        dim: int,
        metric: str,
        index_type: str,
        meta: IndexMeta | None,
    ) -> None:
        self.client = client
        self.target = target
        self._dim = dim
        self._metric = metric
        self.index_type = index_type  # ours: Flat, HNSW, IVF, IVF_PQ
        self._meta = meta
        self.search_defaults: dict[str, Any] = dict((meta.index_params if meta else {}) or {})
        self._closed = False
        self._unflushed = is_lite(target.uri)  # a reopened Lite file replays its WAL into the slow memtable
        self.record_fields = list(RECORD_FIELDS)

    # -- opening and creating ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        target: MilvusTarget,
        *,
        timeout: float = CONNECT_TIMEOUT_S,
        writable: bool = False,
        create: bool = True,
    ) -> MilvusStore:
        """An existing collection; its meta is checked. ``writable`` refuses a collection that is not ours unless
        ``create=False`` and its schema fits."""
        check_collection_name(target.collection)
        client = connect(target, timeout)
        try:
            if not client.has_collection(target.collection):
                raise CollectionMissing(
                    f"Milvus at {target.uri} has no collection {target.collection!r}"
                    f"{_listing(client)}. Build it first: -o Global.mode=build_index -o Index.backend=milvus "
                    f"-o Index.uri={target.uri} -o Index.collection={target.collection}"
                )
            store = cls._from_description(client, target, writable, create)
            client.load_collection(target.collection)
            return store
        except BaseException:
            disconnect(client, target)
            raise

    @classmethod
    def create(
        cls,
        target: MilvusTarget,
        dim: int,
        metric: str,
        plan: IndexPlan,
        *,
        meta: IndexMeta | None = None,
        timeout: float = CONNECT_TIMEOUT_S,
    ) -> MilvusStore:
        """A new collection for ``plan`` with ``meta`` in its properties; an existing one of ours is opened and
        checked instead (so that n shard writers can all call this), and one that is not ours is refused."""
        check_collection_name(target.collection)
        if is_lite(target.uri) and plan.index_type not in LITE_INDEX_TYPES:
            raise GalleryIndexError(
                f"Milvus Lite ({target.uri}) cannot build {plan.index_type} (it supports {', '.join(LITE_INDEX_TYPES)}; "
                "IVF_PQ is accepted at creation and then fails at the first flush). Use -o Index.index_type=HNSW "
                "or IVF, or a Milvus server."
            )
        client = connect(target, timeout)
        try:
            if not client.has_collection(target.collection):
                try:
                    client.create_collection(
                        target.collection,
                        schema=_schema(client, dim),
                        index_params=_index_params(client, metric, plan),
                        consistency_level="Strong",  # a search right after an insert sees it, as with faiss
                        properties={META_PROPERTY: _meta_json(meta or _stub_meta(dim, metric, plan))},
                    )
                    logger.info(
                        f"Milvus: created collection {target} ({INDEX_TYPE[plan.index_type]}, {metric}, {dim}-d)."
                    )
                except Exception:  # noqa: BLE001 - another shard may have created it meanwhile
                    if not client.has_collection(target.collection):
                        raise
            store = cls._from_description(client, target, writable=True, create=True)
            if store._dim != dim:
                raise GalleryIndexError(
                    f"Collection {target} holds {store._dim}-d features (built by {_model_of(store._meta)}), but "
                    f"the features given are {dim}-d{_by(meta)}. Use the model that built it, or another "
                    "Index.collection."
                )
            check_same_model(store._meta, meta, str(target))
            if meta is None and store.count():  # whose features these are is unknown: do not mix them in
                raise GalleryIndexError(
                    f"Collection {target} already holds {store.count()} items. Open it to add to it "
                    f"(load_index(uri={target.uri!r}, collection={target.collection!r})), or choose another "
                    "collection."
                )
            client.load_collection(target.collection)
            return store
        except BaseException:
            disconnect(client, target)
            raise

    @classmethod
    def _from_description(
        cls, client: Any, target: MilvusTarget, writable: bool, create: bool
    ) -> MilvusStore:
        desc = client.describe_collection(target.collection)
        raw = (desc.get("properties") or {}).get(META_PROPERTY)
        problems = _schema_problems(desc)
        if raw is None:
            # Not ours: never dropped or altered unless the user opts in with Index.create=False on a fitting schema.
            if problems:
                raise GalleryIndexError(
                    f"Collection {target} was not made by paddlex_feat (no {META_PROPERTY} property) and its schema "
                    f"does not fit: {'; '.join(problems)}. It is left untouched: choose another Index.collection."
                )
            if writable and create:
                raise GalleryIndexError(
                    f"Collection {target} exists but was not made by paddlex_feat (no {META_PROPERTY} property). "
                    "Nothing was written to it. To add to it anyway (its schema fits), set -o Index.create=False; "
                    "otherwise choose another Index.collection."
                )
            dim, metric, index_type = _shape_of(client, target.collection, desc)
            store = cls(client, target, dim, metric, index_type, None)
            store.record_fields = [
                f for f in store.record_fields if f in {f_["name"] for f_ in desc["fields"]}
            ]
            logger.warning(
                f"Milvus: collection {target} has no paddlex_feat meta; using it as asked (Index.create=False)."
            )
            return store
        if problems:
            raise GalleryIndexError(
                f"Collection {target} has paddlex_feat's meta but its schema was changed: {'; '.join(problems)}. "
                "Rebuild it under another Index.collection."
            )
        meta = meta_from_property(raw, f"{target}: property {META_PROPERTY}")
        dim, metric, index_type = _shape_of(client, target.collection, desc)
        if meta.dim != dim:
            raise GalleryIndexError(
                f"Collection {target}: its meta says {meta.dim}-d features but the vector field is {dim}-d; "
                "the meta was edited. Rebuild the collection."
            )
        return cls(client, target, dim, meta.metric, meta.index_type, meta)

    def __str__(self) -> str:
        return str(self.target)

    # -- VectorStore ------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def metric(self) -> str:
        return self._metric

    def add(self, vectors: np.ndarray, records: Sequence[ItemRecord]) -> np.ndarray:
        vectors = self._checked_rows(vectors, records)
        hashes = [rec.content_hash or vector_hash(v) for rec, v in zip(records, vectors)]
        ids = np.array([id_for_hash(h) for h in hashes], dtype=np.int64)
        self._refuse_collisions(ids, hashes)
        for start in range(0, len(records), WRITE_BATCH):
            rows = [
                _row(int(ids[i]), vectors[i], records[i], self.record_fields)
                for i in range(start, min(start + WRITE_BATCH, len(records)))
            ]
            self.client.upsert(
                self.target.collection, rows
            )  # same image, same key: retried batches are harmless
        return ids

    def _refuse_collisions(self, ids: np.ndarray, hashes: Sequence[str]) -> None:
        """Two different contents on one 63-bit key would overwrite each other: refuse instead (about 1 in 10^7
        for a 10M gallery; the same content twice is the idempotent case and passes)."""
        owner: dict[int, str] = {}
        clash = [(i, h) for i, h in zip(ids.tolist(), hashes) if owner.setdefault(i, h) != h]
        clash += [
            (rec.id, rec.content_hash)
            for rec in self.records(list(owner))
            if rec.content_hash not in (None, owner[rec.id])
        ]
        if clash:
            key, other = clash[0]
            raise GalleryIndexError(
                f"Collection {self.target}: contents {owner[key][:16]}... and {other[:16]}... map to the same key "
                f"{key} (a 63-bit hash collision); nothing was written. Please report it."
            )

    def remove(self, ids: Iterable[int]) -> int:
        wanted = sorted({int(i) for i in ids})
        present = [rec.id for rec in self.records(wanted)]
        for start in range(0, len(present), WRITE_BATCH):
            self.client.delete(self.target.collection, ids=present[start : start + WRITE_BATCH])
            self._unflushed = True
        return len(present)

    def search(
        self, queries: np.ndarray, k: int, params: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(int(k), MAX_TOP_K))
        scores = np.zeros((len(queries), k), np.float32)
        ids = np.full((len(queries), k), -1, np.int64)
        if not len(queries):
            return scores, ids
        self._flush_lite()
        hits = self.client.search(
            self.target.collection,
            data=[q.tolist() for q in queries],
            limit=k,
            anns_field="vector",
            search_params={"metric_type": self._metric, "params": self._search_params(params, k)},
            output_fields=[],
        )
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])  # IP: the inner product; L2: the squared distance
        return scores, ids

    def _flush_lite(self) -> None:
        """Milvus Lite searches rows still in its memtable by brute force in Python: 0.8 s a query over 5,000
        512-d rows, against 0.03 s once flushed into an indexed segment. So the first search after writes
        flushes (a server seals and indexes segments itself; flushing there often would only hurt)."""
        if self._unflushed and is_lite(self.target.uri):
            self.client.flush(self.target.collection)
        self._unflushed = False

    def wait_for_index(self, timeout: float = INDEX_WAIT_S) -> bool:
        """Block until every row is searched through the vector index, not by brute force; False when that
        cannot be known or did not happen within ``timeout`` seconds.

        Both Milvus and Milvus Lite search rows whose segment has no index yet by brute force (exactly), and
        build segment indexes in the background after a flush: a recall or speed measured before that is
        brute force's. A server reports its progress in ``describe_index`` (pending/indexed rows). Milvus Lite
        3.2 always reports "Finished", so for a file opened here its engine's background queue is drained
        instead (``Collection._wait_for_bg``, private: there is no public call; a Lite server in another
        process cannot be waited for)."""
        if is_lite(self.target.uri):
            self._flush_lite()
            collection = _lite_collection(self.target)
            if collection is None:
                return False
            try:
                collection._wait_for_bg(timeout)
            except TimeoutError:
                return False
            return True
        self.client.flush(self.target.collection)  # seals growing segments, which are indexed only then
        deadline = time.monotonic() + timeout
        while True:
            info = self.client.describe_index(self.target.collection, "vector") or {}
            if not info.get("pending_index_rows") and info.get("indexed_rows", 0) >= info.get(
                "total_rows", 0
            ):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(1.0)

    def _search_params(self, params: dict[str, Any] | None, k: int) -> dict[str, Any]:
        """Milvus's ``ef``/``nprobe`` from our ``ef_search``/``nprobe`` (call, else the index's own)."""
        knobs = {**self.search_defaults, **{key: v for key, v in (params or {}).items() if v is not None}}
        if self.index_type == "HNSW":
            return {"ef": max(int(knobs.get("ef_search") or 64), k)}  # Milvus wants ef >= k
        if self.index_type in ("IVF", "IVF_PQ"):
            return {"nprobe": int(knobs.get("nprobe") or 1)}
        return {}

    def count(self) -> int:
        rows = self.client.query(self.target.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def records(self, ids: Iterable[int] | None = None) -> Iterator[ItemRecord]:
        fields_ = self.record_fields
        if ids is None:
            for batch in self._iterate(fields_):
                yield from (_record(row) for row in batch)
            return
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), READ_BATCH):
            chunk = wanted[start : start + READ_BATCH]
            found = {
                int(row["id"]): row
                for row in self.client.get(self.target.collection, ids=chunk, output_fields=fields_)
            }
            yield from (_record(found[i]) for i in chunk if i in found)

    def find(
        self, *, content_hashes: Sequence[str] = (), paths: Sequence[str] = (), labels: Sequence[str] = ()
    ) -> list[ItemRecord]:
        """Records whose content hash, path or label is among those given, through one filter expression each."""
        out: list[ItemRecord] = []
        for name, values in (("content_hash", content_hashes), ("path", paths), ("label", labels)):
            values = list(dict.fromkeys(str(v) for v in values))
            if name not in self.record_fields:
                continue
            for start in range(0, len(values), READ_BATCH):
                expr = f"{name} in [{', '.join(_literal(v) for v in values[start : start + READ_BATCH])}]"
                rows = self.client.query(
                    self.target.collection, filter=expr, output_fields=self.record_fields
                )
                out += [_record(row) for row in rows]
        return out

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), READ_BATCH):
            chunk = wanted[start : start + READ_BATCH]
            rows = self.client.get(self.target.collection, ids=chunk, output_fields=["vector"])
            found = {int(row["id"]): row["vector"] for row in rows}
            for offset, i in enumerate(chunk):
                if i not in found:
                    raise KeyError(f"id {i} is not in collection {self.target}")
                out[start + offset] = np.asarray(found[i], dtype=np.float32)
        return out

    def iter_items(self, batch_size: int = READ_BATCH) -> Iterator[tuple[list[ItemRecord], np.ndarray]]:
        """Every item with its vector, in batches: the collection read once, to move it to another backend."""
        for batch in self._iterate([*self.record_fields, "vector"], batch_size):
            yield (
                [_record(row) for row in batch],
                np.asarray([row["vector"] for row in batch], dtype=np.float32),
            )

    def iter_vectors(self, batch_size: int = READ_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every (ids, vectors) batch, without the records: the collection read once for exact search."""
        for batch in self._iterate(["vector"], batch_size):
            yield (
                np.fromiter((row["id"] for row in batch), np.int64, len(batch)),
                np.asarray([row["vector"] for row in batch], dtype=np.float32),
            )

    def sample_vectors(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """About ``n`` stored (ids, vectors), picked by a filter on the key rather than a full read: keys are
        content hashes, uniform over [0, 2^63), so ``id < 2^63 * n / count`` holds about n of them (the bound
        grows until n are found; an adopted collection's own keys give its first n rows)."""
        total = max(self.count(), 1)
        bound = (1 << 63) * min(1.0, 2 * n / total)
        while True:
            expr = f"id < {int(bound)}" if bound < (1 << 63) else ""
            rows = self.client.query(self.target.collection, filter=expr, output_fields=["vector"], limit=n)
            if len(rows) >= n or not expr:
                break
            bound *= 4
        ids = np.array([int(row["id"]) for row in rows], dtype=np.int64)
        return ids, np.asarray([row["vector"] for row in rows], dtype=np.float32).reshape(len(rows), -1)

    def _iterate(self, output_fields: list[str], batch_size: int = READ_BATCH) -> Iterator[list[dict]]:
        iterator = self.client.query_iterator(
            self.target.collection, batch_size=batch_size, filter="", output_fields=output_fields
        )
        try:
            while batch := iterator.next():
                yield batch
        finally:
            iterator.close()

    def save(self, path: str | None = None) -> None:
        """Write a faiss index folder copy into ``path`` (GalleryIndex.save makes it atomic); the collection
        itself is persisted by Milvus as it is written, so without a path there is nothing to do."""
        if path is not None:
            from .move import faiss_copy

            faiss_copy(self).save(path)

    def read_meta(self) -> IndexMeta | None:
        return self._meta

    def write_meta(self, meta: IndexMeta) -> None:
        """Persist at once: the meta is a collection property, replaced in one call."""
        meta.backend = self.backend
        self.client.alter_collection_properties(
            self.target.collection, properties={META_PROPERTY: _meta_json(meta)}
        )
        self._meta = meta

    def close(self) -> None:
        """Close the client (and stop Milvus Lite's server thread when this was its last user)."""
        if not self._closed:
            self._closed = True
            try:
                self._flush_lite()  # the next process then opens indexed segments, not a WAL to replay
            finally:
                disconnect(self.client, self.target)

    def __enter__(self) -> MilvusStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- helpers -------------------------------------------------------------------------------------------


def _schema(client: Any, dim: int) -> Any:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("label", DataType.VARCHAR, max_length=LABEL_MAX)
    schema.add_field("path", DataType.VARCHAR, max_length=PATH_MAX, nullable=True)
    schema.add_field("content_hash", DataType.VARCHAR, max_length=HASH_MAX, nullable=True)
    schema.add_field("file_stat", DataType.VARCHAR, max_length=HASH_MAX, nullable=True)  # size:mtime_ns
    return schema


def _index_params(client: Any, metric: str, plan: IndexPlan) -> Any:
    p = plan.params
    if plan.index_type == "HNSW":
        params = {"M": p.get("M", 32), "efConstruction": p.get("ef_construction", 80)}
    elif plan.index_type == "IVF":
        params = {"nlist": p["nlist"]}
    elif plan.index_type == "IVF_PQ":
        params = {"nlist": p["nlist"], "m": p["pq_m"], "nbits": p["pq_bits"]}
    else:
        params = {}
    index_params = client.prepare_index_params()
    index_params.add_index(
        field_name="vector", index_type=INDEX_TYPE[plan.index_type], metric_type=metric, params=params
    )
    return index_params


def _schema_problems(desc: dict) -> list[str]:
    """Why a collection's fields do not fit ours (id INT64 key, one FLOAT_VECTOR 'vector', VARCHAR label...)."""
    from pymilvus import DataType

    by_name = {f["name"]: f for f in desc.get("fields", [])}
    problems = []
    key = by_name.get("id")
    if key is None or key.get("type") != DataType.INT64 or not key.get("is_primary"):
        problems.append("no INT64 primary key named 'id'")
    if (by_name.get("vector") or {}).get("type") != DataType.FLOAT_VECTOR:
        problems.append("no FLOAT_VECTOR field named 'vector'")
    for name, required in (("label", True), ("path", False), ("content_hash", False), ("file_stat", False)):
        field = by_name.get(name)
        if field is None and required:
            problems.append(f"no VARCHAR field {name!r}")
        elif field is not None and field.get("type") != DataType.VARCHAR:
            problems.append(f"field {name!r} is {field.get('type')}, not VARCHAR")
    return problems


def _shape_of(client: Any, collection: str, desc: dict) -> tuple[int, str, str]:
    """(dim, metric, our index type name) of a collection's vector field and its index."""
    field = next(f for f in desc["fields"] if f["name"] == "vector")
    dim = int(field["params"]["dim"])
    info = client.describe_index(collection, "vector") if "vector" in client.list_indexes(collection) else {}
    metric = str(info.get("metric_type") or "IP").upper()
    if metric not in ("IP", "L2"):
        raise GalleryIndexError(
            f"Collection {collection}'s vector index uses metric {metric}; paddlex_feat searches with IP (cosine on "
            "normalised features) or L2. Choose another Index.collection."
        )
    ours = {v: k for k, v in INDEX_TYPE.items()}
    return dim, metric, ours.get(str(info.get("index_type") or "FLAT").upper(), "Flat")


def meta_from_property(raw: str, where: str) -> IndexMeta:
    """The IndexMeta kept in a collection property, checked as meta.json is (each defect names ``where``)."""
    from .folder import check_meta

    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise GalleryIndexError(
            f"{where} is not valid JSON ({e.msg}); it was damaged or edited. Rebuild the collection."
        ) from e
    return check_meta(data, where)


def _stub_meta(dim: int, metric: str, plan: IndexPlan) -> IndexMeta:
    """The meta a collection gets at creation when the caller has none yet (it marks the collection ours)."""
    return IndexMeta(None, None, dim, metric, plan.index_type, dict(plan.params), backend=MilvusStore.backend)


def _meta_json(meta: IndexMeta | None) -> str:
    data = meta.to_json() if meta else {}
    data["backend"] = MilvusStore.backend
    known = {f.name for f in fields(IndexMeta)}
    return json.dumps({k: v for k, v in data.items() if k in known}, ensure_ascii=False)


def _row(id_: int, vector: np.ndarray, rec: ItemRecord, record_fields: list[str]) -> dict[str, Any]:
    for name, value, limit in (("label", rec.label, LABEL_MAX), ("path", rec.path or "", PATH_MAX)):
        if len(value.encode("utf-8")) > limit:
            raise GalleryIndexError(
                f"The {name} {value[:60]!r}... is longer than Milvus's {limit}-byte field; shorten it."
            )
    row = {
        "id": id_,
        "vector": vector,
        "label": rec.label,
        "path": rec.path,
        "content_hash": rec.content_hash,
        "file_stat": rec.file_stat,
    }
    return {k: v for k, v in row.items() if k == "vector" or k in record_fields}


def _record(row: dict) -> ItemRecord:
    return ItemRecord(
        int(row["id"]),
        str(row.get("label", "")),
        row.get("path"),
        row.get("content_hash") or None,
        row.get("file_stat") or None,
    )


def _literal(text: str) -> str:
    """A Milvus filter string literal (Milvus Lite has no filter templates): C-style escapes."""
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def _quiet_lite_logs() -> None:
    """Milvus Lite's expected noise, dropped: it logs each server start/stop and segment build at INFO; it
    does not implement the AllocTimestamp call a query iterator makes first (gRPC logs a traceback, pymilvus
    warns, then falls back to the client's clock, which is right for an in-process server)."""
    logging.getLogger("milvus_lite").setLevel(logging.WARNING)
    for name, prefix in (
        ("pymilvus.client.iterator.query_iterator", "failed to get mvccTs"),
        ("grpc._server", "Exception calling application: Method not implemented"),
    ):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) for f in log.filters):
            log.addFilter(_DropMessage(prefix))


def _lite_collection(target: MilvusTarget) -> Any | None:
    """The in-process Milvus Lite engine's collection behind ``target`` (None when it runs elsewhere or the
    milvus_lite internals differ from 3.2's)."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        entry = server_manager_instance._servers.get(os.path.abspath(target.uri))
        return entry[1].get_collection(target.collection) if entry else None
    except Exception as e:  # noqa: BLE001 - private API: any change means "cannot tell"
        logger.warning(f"Milvus Lite {target}: cannot reach its engine to wait for index builds ({e}).")
        return None


def _listing(client: Any) -> str:
    names = client.list_collections()
    return f" (it has: {', '.join(sorted(names)[:10])})" if names else " (it has no collections)"


def check_same_model(have: IndexMeta | None, given: IndexMeta | None, where: str) -> None:
    """Refuse to write another model's features into a collection (both models named)."""
    if have is None or given is None or not have.model_hash or not given.model_hash:
        return
    if have.model_hash != given.model_hash:
        raise GalleryIndexError(
            f"Collection {where} was built by {_model_of(have)} from {have.model_dir}, but the features given come "
            f"from {_model_of(given)} from {given.model_dir}. Features of another model give meaningless answers: "
            "use the model that built it, or another Index.collection."
        )


def _model_of(meta: IndexMeta | None) -> str:
    return (
        f"{meta.model_name} (hash {str(meta.model_hash)[:12]})"
        if meta and meta.model_name
        else "an unrecorded model"
    )


def _by(meta: IndexMeta | None) -> str:
    return f" (from {meta.model_name}, hash {str(meta.model_hash)[:12]})" if meta and meta.model_name else ""
