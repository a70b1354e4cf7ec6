"""The service's gallery indexes: the default one (Serve.index) and those built by key.

PaddleX's service pickles each index into a key-value store and unpickles it on every request,
with no lock between concurrent writers. Here every index is an index folder (faiss + JSON, never
a pickle): ``Serve.index`` for requests without ``indexKey``, ``<index_dir>/<indexKey>/`` for
indexes built through ``/shitu-index-build``.

Writes are copy-on-write under one lock: the writer loads the committed folder, applies the
change, saves it atomically (temp folder swapped in) and only then publishes the new object and
answers. Searches take the published object, which nobody mutates, so they always see a whole
state and never wait for a writer; a ``kill -9`` at any moment leaves the last acknowledged state
on disk.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..utils.errors import GalleryIndexError
from .errors import ApiError

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a key names a folder: no separators, no dots
THUMB_SIDE = 128


class IndexStore:
    """Indexes by key (``None``: the default index), with one writer at a time."""

    def __init__(
        self, default: str | Path | None, index_dir: str | Path, fingerprint: dict | None = None
    ) -> None:
        from ..retrieval import load_index

        # a milvus:// URL names a collection (Index.backend=milvus), kept as text: Path() would fold its '//'
        self.default_path = None if default is None else default if _is_milvus(default) else Path(default)
        self.index_dir = Path(index_dir)
        self.fingerprint = fingerprint  # the serving model's, recorded in the indexes it builds
        self._write = threading.Lock()
        self._published: dict[str | None, Any] = {}
        if self.default_path is not None:
            index = load_index(self.default_path)  # missing or broken: the server does not start
            if fingerprint is not None:
                index.check_model(fingerprint)
            self._published[None] = index

    # -- reading -------------------------------------------------------------------------------

    def has(self, key: str | None) -> bool:
        """Whether ``key`` (None: the default) names an index."""
        try:
            self.require(key)
            return True
        except ApiError:
            return False

    def require(self, key: str | None) -> None:
        """404 unless the index exists (checked before any image is decoded)."""
        self.snapshot(key)

    def size(self, key: str | None) -> int:
        """Images in the index."""
        return len(self.snapshot(key))

    def snapshot(self, key: str | None) -> Any:
        """The published index for ``key``: a whole state that no writer changes."""
        index = self._published.get(key)
        if index is not None:
            return index
        path = self._path(key)
        with self._write:  # first use of a key: load it once
            if key not in self._published:
                from ..retrieval import load_index

                self._published[key] = load_index(path)
            return self._published[key]

    def search(self, key: str | None, feats: np.ndarray, topk: int, threshold: float | None) -> list[dict]:
        """Top-``topk`` of each feature row: labels, scores, ids, paths and label ('unknown' under the threshold)."""
        index = self.snapshot(key)
        results = index.search_vectors(
            feats, topk, score_threshold="index" if threshold is None else threshold
        )
        return [{k: r[k] for k in ("label", "labels", "scores", "ids", "paths")} for r in results]

    def thumbnails(self, key: str | None, paths: Sequence[str | None]) -> list[str | None]:
        """Small base64 JPEGs of gallery images (None where the file is not here or not an image)."""
        return [_thumbnail(p) for p in paths]

    # -- writing -------------------------------------------------------------------------------

    def build(self, feats: np.ndarray, labels: Sequence[str], index_type: str = "auto") -> tuple[str, int]:
        """A new index under a new key (type chosen by size, not Flat only); returns (key, images)."""
        from ..retrieval import GalleryIndex

        key = uuid.uuid4().hex
        index = GalleryIndex.from_vectors(
            feats, list(labels), index_type=index_type, fingerprint=self.fingerprint
        )
        with self._write:
            index.save(self.index_dir / key)
            self._published[key] = index
        return key, len(index)

    def add(
        self, key: str | None, feats: np.ndarray, labels: Sequence[str], paths: Sequence[str] | None
    ) -> tuple[list[int], int]:
        """Add features; saved before returning (ids, images now in the index)."""
        with self._write:
            index = self._writable_copy(key)
            ids = index.add_vectors(feats, list(labels), paths=list(paths) if paths else None)
            self._commit(key, index)
        return [int(i) for i in ids], len(index)

    def remove(
        self,
        key: str | None,
        ids: Sequence[int] | None = None,
        paths: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
    ) -> tuple[int, int]:
        """Remove by id, path or label (all known, or nothing is removed: 404 listing the unknown ones)."""
        with self._write:
            index = self._writable_copy(key)
            try:
                removed = index.remove(ids=ids, paths=paths, labels=labels)
            except GalleryIndexError as e:
                raise ApiError(404, str(e)) from e
            self._commit(key, index)
        return removed, len(index)

    def _writable_copy(self, key: str | None) -> Any:
        """A private copy of the committed index (loaded from its folder) for one write; a Milvus collection
        is written in place (it is a database: searches see each write as Milvus commits it)."""
        from ..retrieval import load_index

        published = self._published.get(key)
        if published is not None and published.store.backend == "milvus":
            return published
        return load_index(self._path(key))

    def _commit(self, key: str | None, index: Any) -> None:
        """Save atomically, then publish: searches switch to the new state only once it is on disk."""
        if index.store.backend != "milvus":  # a collection persisted each write already
            index.save(self._path(key))
        self._published[key] = index

    def _path(self, key: str | None) -> Path:
        """The folder of ``key``; 400 for a key that is no folder name, 404 for one not built."""
        if key is None:
            if self.default_path is None:
                raise ApiError(
                    404,
                    "indexKey: this service has no default index; pass the indexKey that /shitu-index-build "
                    "returned, or start the service with -o Serve.index=FOLDER.",
                )
            return self.default_path
        if not KEY_PATTERN.fullmatch(key):
            raise ApiError(
                400, f"indexKey: {key!r} is not a key this service hands out (letters, digits, - and _)."
            )
        path = self.index_dir / key
        if not path.is_dir():
            raise ApiError(
                404, f"indexKey: no index {key!r} on this service; build one with /shitu-index-build."
            )
        return path


def _is_milvus(location: str | Path) -> bool:
    return str(location).startswith("milvus")


def _thumbnail(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None
    scale = THUMB_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return base64.b64encode(data.tobytes()).decode("ascii") if ok else None
