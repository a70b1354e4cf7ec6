"""Gallery input: a list file, a folder of label sub-folders, or Python paths/arrays with labels.

Labels are any UTF-8 text, spaces included: a list line is ``path label``, split at the first run
of whitespace only (PaddleX splits on every space and PaddleClas cuts at the first, so
``images/a.jpg Coca-Cola 330 ml`` loses its label there). Numeric labels become names through
``label_dict.txt`` beside the list, or an ``Index.label_map`` file (``0 name`` per line).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.lists import bounded_lines
from ..inference.inputs import check_array, folder_image_paths, is_image_file
from ..utils.errors import DatasetError, UsageError

LABEL_DICT = "label_dict.txt"


@dataclass(frozen=True)
class GalleryEntry:
    """One gallery image: what to embed, its label, its path (None for an array), where it was named."""

    source: Any  # a path string or a uint8 BGR array, as the predictor takes
    label: str
    path: str | None
    where: str  # 'gallery.txt:12', a folder path or 'images[3]', for error messages
    file_stat: str | None = None  # 'size:mtime_ns' taken just before hashing (see hash_entry)


def read_gallery(
    gallery: Any, labels: Sequence[Any] | None = None, label_map: str | os.PathLike | None = None
) -> list[GalleryEntry]:
    """The entries of a list file, a folder, a ``(paths, labels)`` pair or a list with ``labels``."""
    if isinstance(gallery, tuple) and len(gallery) == 2 and labels is None:
        gallery, labels = gallery
    if isinstance(gallery, (list, tuple)):
        return _from_python(list(gallery), labels)
    if labels is not None:
        raise UsageError(
            "labels= goes with a list of images; a list file or a folder carries its own labels."
        )
    if not isinstance(gallery, (str, os.PathLike)):
        raise UsageError(
            f"gallery must be a list file, a folder, or (paths, labels); got {type(gallery).__name__}."
        )
    path = Path(gallery)
    if path.is_dir():
        return _from_folder(path)
    if path.is_file():
        return _from_list(path, label_map)
    raise DatasetError(
        f"Gallery {path} does not exist. Pass a list file ('path label' per line), a folder whose "
        "sub-folders are the labels, or (paths, labels) from Python."
    )


def read_label_map(path: str | os.PathLike) -> dict[str, str]:
    """``number name`` per line (the name may hold spaces); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"Label map {path} does not exist; set Index.label_map to a file of 'number name' lines."
        )
    mapping: dict[str, str] = {}
    problems = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        if len(parts) != 2 or not _is_int(parts[0]):
            problems.append(f"{path}:{lineno}: expected 'number name', got {line.strip()!r}")
        elif parts[0] in mapping:
            problems.append(f"{path}:{lineno}: number {parts[0]} appears twice")
        else:
            mapping[str(int(parts[0]))] = parts[1].strip()
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in the label map:\n{bounded_lines(problems)}")
    return mapping


def content_hash(entry: GalleryEntry) -> str:
    """sha256 of the file's bytes (an array: of its shape and pixels), to spot changed and duplicate images."""
    digest = hashlib.sha256()
    if isinstance(entry.source, np.ndarray):
        digest.update(repr(entry.source.shape).encode())
        digest.update(np.ascontiguousarray(entry.source).tobytes())
    else:
        with open(entry.source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def hash_entry(entry: GalleryEntry, known: Any = None) -> tuple[GalleryEntry, str]:
    """The entry with its file's stat, and its content hash; an unchanged stat reuses ``known``'s hash.

    ``known`` is the indexed record of the same path (or None). Like git's index, a file whose size
    and mtime (ns) are what they were when it was hashed is not read again: a sync of a large gallery
    then reads only the files that changed. The stat is taken before reading, so a file written
    while it is hashed shows a newer stat at the next sync and is read again.
    """
    if isinstance(entry.source, np.ndarray):
        return entry, content_hash(entry)
    st = os.stat(entry.source)
    stat = f"{st.st_size}:{st.st_mtime_ns}"
    entry = replace(entry, file_stat=stat)
    if known is not None and known.file_stat == stat and known.content_hash:
        return entry, known.content_hash
    return entry, content_hash(entry)


def _from_list(path: Path, label_map: str | os.PathLike | None) -> list[GalleryEntry]:
    names = read_label_map(label_map) if label_map else None
    if names is None and (path.parent / LABEL_DICT).is_file():
        names = read_label_map(path.parent / LABEL_DICT)
    entries, problems = [], []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(maxsplit=1)
        where = f"{path}:{lineno}"
        if len(parts) != 2:
            problems.append(f"{where}: expected 'path label', got {line!r}")
            continue
        rel, label = parts[0], parts[1].strip()
        if names is not None and _is_int(label):
            if str(int(label)) not in names:
                problems.append(
                    f"{where}: label {label} is not in the label map ({label_map or path.parent / LABEL_DICT})"
                )
                continue
            label = names[str(int(label))]
        image = os.path.normpath(os.path.join(path.parent, rel))
        entries.append(GalleryEntry(image, label, image, where))
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in the gallery list:\n{bounded_lines(problems)}")
    if not entries:
        raise DatasetError(f"Gallery list {path} is empty: add 'path label' lines.")
    return entries


def _from_folder(folder: Path) -> list[GalleryEntry]:
    loose = sorted(p.name for p in folder.iterdir() if p.is_file() and is_image_file(p.name))
    if loose:
        raise DatasetError(
            f"Gallery folder {folder} holds images outside any label sub-folder ({', '.join(loose[:5])}"
            f"{', ...' if len(loose) > 5 else ''}); move each into a folder named after its label."
        )
    entries = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for image in folder_image_paths(sub):
            entries.append(GalleryEntry(image, sub.name, image, image))
    if not entries:
        raise DatasetError(
            f"Gallery folder {folder} holds no images in label sub-folders (e.g. {folder}/cola/1.jpg)."
        )
    return entries


def _from_python(images: list, labels: Sequence[Any] | None) -> list[GalleryEntry]:
    if labels is None or isinstance(labels, (str, bytes)) or len(labels) != len(images):
        got = "none" if labels is None else (1 if isinstance(labels, (str, bytes)) else len(labels))
        raise UsageError(f"Pass one label per image: {len(images)} image(s), {got} label(s).")
    if not images:
        raise DatasetError("The gallery is empty: pass at least one image and its label.")
    entries = []
    for i, (image, label) in enumerate(zip(images, labels)):
        where = f"images[{i}]"
        if (
            not isinstance(label, (str, int, np.integer))
            or isinstance(label, bool)
            or str(label).strip() == ""
        ):
            raise UsageError(f"labels[{i}] must be a non-empty string; got {label!r}.")
        if isinstance(image, np.ndarray):
            entries.append(GalleryEntry(check_array(image, where), str(label).strip(), None, where))
        elif isinstance(image, (str, os.PathLike)):
            entries.append(GalleryEntry(os.fspath(image), str(label).strip(), os.fspath(image), where))
        else:
            raise UsageError(f"{where} is a {type(image).__name__}; pass an image path or a uint8 BGR array.")
    return entries


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(
            f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8."
        ) from e


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
