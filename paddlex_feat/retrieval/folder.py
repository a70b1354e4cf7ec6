"""The index folder on disk: atomic save (a temp folder swapped into place) and a checked load.

A crash leaves the old folder or the new one, never half of one: the new folder is written
beside the old, fsynced, and swapped in with one ``renameat2(RENAME_EXCHANGE)`` on Linux (two
renames elsewhere; a load finds an interrupted swap's leftover and finishes it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..utils.errors import GalleryIndexError
from ..utils.logger import logger
from .index_types import INDEX_TYPES
from .store import METRICS, IndexMeta, ItemRecord, VectorStore

FORMAT_VERSION = 1
# backend name in meta.json -> loader of (folder, meta); another store registers itself here
LOADERS: dict[str, Callable[[Path, IndexMeta], VectorStore]] = {}


def register_loader(backend: str, loader: Callable[[Path, IndexMeta], VectorStore]) -> None:
    """Let ``load_index`` open folders whose meta.json names ``backend``."""
    LOADERS[backend] = loader


# -- save ----------------------------------------------------------------------------------------


def save_store(store: VectorStore, meta: IndexMeta, target: Path) -> None:
    """Write ``store`` into a temp folder beside ``target`` and swap it in."""
    from .faiss_store import META_FILE, VECTOR_FILE

    target = Path(target)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not _looks_like_index(target))):
        raise GalleryIndexError(
            f"{target} exists and is not an index folder (no {VECTOR_FILE} or {META_FILE}); "
            "choose another Index.path so that nothing of yours is replaced."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        store.write_meta(meta)
        store.save(str(tmp))
        _fsync_dir(tmp)
        if target.exists():
            _swap_in(tmp, target)
        else:
            os.rename(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _looks_like_index(folder: Path) -> bool:
    from .faiss_store import META_FILE, VECTOR_FILE

    return (folder / VECTOR_FILE).exists() or (folder / META_FILE).exists()


def _swap_in(tmp: Path, target: Path) -> None:
    """Replace ``target`` by ``tmp``: one atomic exchange where the OS has it, else two renames."""
    if _rename_exchange(tmp, target):
        shutil.rmtree(tmp)  # tmp now holds the old index
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    os.rename(tmp, target)  # a crash between the renames leaves .old-*, which load() puts back
    shutil.rmtree(old, ignore_errors=True)


def _rename_exchange(a: Path, b: Path) -> bool:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- load ----------------------------------------------------------------------------------------


def load_store(folder: Path) -> tuple[VectorStore, IndexMeta]:
    """The store and meta of an index folder; each defect is an error naming the file and the fix."""
    from .faiss_store import ID_MAP_FILE, META_FILE, VECTOR_FILE

    folder = Path(folder)
    _finish_interrupted_swap(folder)
    if not folder.exists():
        raise GalleryIndexError(
            f"Index {folder} does not exist. Build one first: -o Global.mode=build_index -o Index.path={folder} "
            "(or build_index(model, gallery).save(path))."
        )
    if not folder.is_dir():
        raise GalleryIndexError(
            f"Index path {folder} is a file; pass the index folder (holding {VECTOR_FILE})."
        )
    meta = read_meta(folder / META_FILE) if (folder / META_FILE).exists() else None
    if meta is not None and meta.backend != "faiss":
        if meta.backend not in LOADERS:
            raise GalleryIndexError(
                f"{folder / META_FILE}: backend {meta.backend!r} is not available "
                f"(known: faiss{', ' if LOADERS else ''}{', '.join(LOADERS)}); install its extra."
            )
        return LOADERS[meta.backend](folder, meta), meta
    missing = [n for n in (VECTOR_FILE, ID_MAP_FILE) if not (folder / n).is_file()]
    if missing:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise GalleryIndexError(
            f"{folder} is not an index folder: {' and '.join(missing)} missing (it holds: {present}). "
            "Point Index.path at a folder made by build_index (or by PaddleX's build_index)."
        )
    from .faiss_store import read_faiss_folder

    return read_faiss_folder(folder, meta)


def _finish_interrupted_swap(folder: Path) -> None:
    """A crash between the two fallback renames leaves only ``.name.old-*``: put it back."""
    if folder.exists() or not folder.parent.is_dir():
        return
    olds = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.rename(olds[-1], folder)
        logger.warning(f"Index: {folder} was being replaced when a run stopped; restored the previous index.")


def read_meta(path: Path) -> IndexMeta:
    """meta.json, checked key by key."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise GalleryIndexError(
            f"{path}:{e.lineno}:{e.colno}: meta.json is not valid JSON ({e.msg}). It was damaged or hand-edited; "
            "rebuild the index, or restore the file."
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise GalleryIndexError(f"{path} cannot be read ({e}); rebuild the index.") from e
    return check_meta(data, str(path))


def check_meta(data: Any, path: str) -> IndexMeta:
    """An IndexMeta from parsed meta JSON, checked key by key (errors name ``path``: a file or a collection)."""
    if not isinstance(data, dict):
        raise GalleryIndexError(
            f"{path}: expected a JSON object; got {type(data).__name__}. Rebuild the index."
        )
    known = {f.name for f in fields(IndexMeta)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GalleryIndexError(
            f"{path}: unknown key(s) {', '.join(unknown)}; remove them or rebuild the index."
        )
    _check(
        path,
        data,
        "dim",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "a positive integer",
    )
    _check(path, data, "metric", lambda v: v in METRICS, f"one of {', '.join(METRICS)}")
    _check(path, data, "index_type", lambda v: v in INDEX_TYPES, f"one of {', '.join(INDEX_TYPES)}")
    _check(
        path,
        data,
        "count",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "a count >= 0",
    )
    _check(
        path,
        data,
        "format_version",
        lambda v: v == FORMAT_VERSION,
        f"{FORMAT_VERSION} (this version's format)",
    )
    _check(path, data, "model_hash", lambda v: v is None or isinstance(v, str), "a hex string or null")
    _check(path, data, "index_params", lambda v: isinstance(v, dict), "an object")
    _check(path, data, "extra", lambda v: isinstance(v, dict), "an object")
    _check(
        path,
        data,
        "score_threshold",
        lambda v: (
            v is None or isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool))
        ),
        "a number or null",
    )
    _check(
        path, data, "score_threshold_source", lambda v: v is None or isinstance(v, dict), "an object or null"
    )
    required = [k for k in ("dim", "model_name", "model_hash") if k not in data]
    if required:
        raise GalleryIndexError(f"{path}: missing key(s) {', '.join(required)}; rebuild the index.")
    return IndexMeta(**data)


def _check(path: Path | str, data: dict, key: str, ok: Callable[[Any], bool], expected: str) -> None:
    if key in data and not ok(data[key]):
        raise GalleryIndexError(
            f"{path}: {key} must be {expected}; got {data[key]!r}. The file was damaged or hand-edited: "
            "restore it or rebuild the index."
        )


def read_id_map(path: Path) -> tuple[dict[int, str], str, str]:
    """PaddleX's id_map.yaml: (id -> label, metric_type, index_type), checked."""
    try:
        # libyaml's C loader when present (still safe: no Python objects): 10x faster on big id maps
        doc = yaml.load(
            path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise GalleryIndexError(
            f"{where}: id_map.yaml is not valid YAML ({getattr(e, 'problem', None) or e}); restore it or rebuild the index."
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise GalleryIndexError(f"{path} cannot be read ({e}); rebuild the index.") from e
    if not isinstance(doc, dict) or not {"id_map", "metric_type", "index_type"} <= set(doc):
        raise GalleryIndexError(
            f"{path}: expected the keys id_map, metric_type and index_type (PaddleX's format); "
            "the file was damaged or hand-edited. Rebuild the index."
        )
    id_map = doc["id_map"] or {}
    if not isinstance(id_map, dict):
        raise GalleryIndexError(
            f"{path}: id_map must map integer ids to labels; got {type(id_map).__name__}."
        )
    bad = [k for k in id_map if isinstance(k, bool) or not isinstance(k, int)]
    if bad:
        raise GalleryIndexError(
            f"{path}: id_map key {bad[0]!r} is not an integer id; restore the file or rebuild."
        )
    if doc["metric_type"] not in METRICS:
        raise GalleryIndexError(
            f"{path}: metric_type {doc['metric_type']!r} is not supported (use {', '.join(METRICS)})."
        )
    return {int(k): str(v) for k, v in id_map.items()}, doc["metric_type"], str(doc["index_type"])


def read_items(path: Path, text: str | None = None) -> list[ItemRecord]:
    """items.jsonl (or its ``text``, already read), one record a line; a bad line is an error naming it."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise GalleryIndexError(
                f"{path} is not UTF-8 ({e.reason}); restore it or rebuild the index."
            ) from e
    lines = [line for line in text.splitlines() if line.strip()]
    try:  # one parse of the whole file as a JSON array: 10k json.loads calls cost more
        parsed = json.loads("[" + ",".join(lines) + "]")
        if len(parsed) == len(lines):  # else a line held more than one value: the loop below names it
            return [ItemRecord.from_json(d) for d in parsed]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        pass  # find the bad line, for the message
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ItemRecord.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise GalleryIndexError(
                f'{path}:{lineno}: not an item record ({e}); expected {{"id", "label", "path", '
                '"content_hash"}. Restore the file or rebuild the index.'
            ) from e
    return records


def ids_of(index: Any) -> np.ndarray:
    """The ids a faiss index answers with (IndexIDMap2's table, or an IVF's inverted lists)."""
    import faiss

    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.extract_index_ivf(index)
    parts = []
    for lst in range(ivf.nlist):
        size = ivf.invlists.list_size(lst)
        if size:
            parts.append(faiss.rev_swig_ptr(ivf.invlists.get_ids(lst), size).copy())
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def index_exists(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an index (ours or PaddleX's), so build_index syncs instead of building."""
    folder = Path(folder)
    return folder.is_dir() and _looks_like_index(folder)
