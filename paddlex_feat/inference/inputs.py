"""Predictor inputs: expand paths, folders, URLs and arrays into items, and decode one item to RGB.

Expansion is cheap and done up front, so a missing path or an empty folder fails before any
inference; decoding is done lazily, in worker threads, by ``load_rgb``.
"""

from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Union
from urllib.parse import unquote, urlparse

import cv2
import numpy as np

from ..utils.download import read_with_deadline
from ..utils.errors import PaddlexFeatError, UsageError
from ..utils.image import IMAGE_EXTENSIONS, decode_bgr, read_bgr, read_error_is_io

URL_PREFIXES = ("http://", "https://")
# the default Predict.max_image_bytes: refuse absurd downloads rather than fill memory
MAX_URL_BYTES = 64 * 1024 * 1024

InputLike = Union[str, os.PathLike, np.ndarray]


class ImageReadError(PaddlexFeatError):
    """One input image could not be read or decoded."""


@dataclass(frozen=True)
class InputItem:
    """One image to predict: its place in the stream, where it came from, and the source."""

    index: int
    input_path: str | None  # file path or URL; None for arrays
    array: np.ndarray | None = None
    error: str | None = None  # set when expansion already found the item unusable (skip_errors)

    @property
    def is_url(self) -> bool:
        return self.input_path is not None and self.input_path.lower().startswith(URL_PREFIXES)


def is_image_file(name: str) -> bool:
    """Whether a file name has one of the image extensions, in any case."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_folder_images(folder: Path) -> list[Path]:
    """Every image under ``folder``, recursively, sorted by relative path (hidden entries skipped)."""
    return [Path(p) for p in folder_image_paths(folder)]


def folder_image_paths(folder: str | os.PathLike) -> list[str]:
    """``list_folder_images`` as strings: a 10k-image gallery is listed in milliseconds, not a second."""
    found = []  # (relative posix path, path): strings, as pathlib objects cost ~0.1 ms a file here
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(root, folder).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        found.extend(
            (prefix + f, os.path.join(root, f)) for f in files if not f.startswith(".") and is_image_file(f)
        )
    found.sort()
    return [p for _, p in found]


def check_array(array: np.ndarray, where: str) -> np.ndarray:
    """Validate an array input: uint8, HxW (gray), HxWx1, HxWx3 (BGR) or HxWx4 (BGRA)."""
    if array.dtype != np.uint8:
        hint = " (scale to 0..255 and use .astype(np.uint8))" if array.dtype.kind == "f" else ""
        raise UsageError(
            f"{where}: array has dtype {array.dtype}; pass uint8 BGR pixels as cv2.imread returns{hint}."
        )
    if array.ndim == 4:
        raise UsageError(
            f"{where}: array has shape {array.shape} (4 dims); pass a list of HxWx3 arrays for a batch."
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise UsageError(
            f"{where}: array has shape {array.shape}; expected HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA)."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UsageError(f"{where}: array has shape {array.shape}, an empty image.")
    return array


def expand_inputs(inputs: Any, skip_errors: bool = False) -> list[InputItem]:
    """Turn the user's input (one or a list) into ordered items; problems raise unless ``skip_errors``."""
    if inputs is None:
        raise UsageError(
            "No input given: pass an image path, a folder, a URL, a numpy array or a list of these."
        )
    top = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if not top:
        raise UsageError("The input list is empty: pass at least one image path, folder, URL or array.")
    items: list[InputItem] = []

    def fail(message: str, input_path: str | None) -> None:
        if not skip_errors:
            raise UsageError(message)
        items.append(InputItem(len(items), input_path, error=message))

    for pos, entry in enumerate(top):
        where = f"input[{pos}]" if len(top) > 1 else "input"
        if isinstance(entry, np.ndarray):
            try:
                items.append(InputItem(len(items), None, array=check_array(entry, where)))
            except UsageError as e:
                fail(str(e), None)
            continue
        if not isinstance(entry, (str, os.PathLike)):
            fail(
                f"{where}: {type(entry).__name__} is not an input; pass a path, folder, URL or numpy array.",
                None,
            )
            continue
        text = os.fspath(entry)
        if text.lower().startswith(URL_PREFIXES):
            items.append(InputItem(len(items), text))
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            images = list_folder_images(path)
            if not images:
                fail(
                    f"{where}: folder {text} holds no images ({', '.join(IMAGE_EXTENSIONS)}, any case, "
                    "searched recursively).",
                    text,
                )
            start = len(items)
            items.extend(InputItem(start + k, str(p)) for k, p in enumerate(images))
        elif path.is_file():
            items.append(InputItem(len(items), text))
        else:
            fail(
                f"{where}: {text} does not exist; check the path (relative paths start at {os.getcwd()}).",
                text,
            )
    return items


def download(url: str, timeout: float, max_bytes: int = MAX_URL_BYTES) -> bytes:
    """Fetch a URL's bytes, the whole transfer within ``timeout`` s and at most ``max_bytes``; errors name the URL."""
    try:
        return read_with_deadline(url, timeout, max_bytes)
    except urllib.error.HTTPError as e:
        raise ImageReadError(f"Could not download {url}: HTTP {e.code} {e.reason}.") from e
    except ValueError as e:  # over the size limit
        raise ImageReadError(
            f"Could not download {url}: {e} (Predict.max_image_bytes). Download it and pass the local path, "
            "or raise the limit."
        ) from e
    except (urllib.error.URLError, OSError) as e:  # TimeoutError is an OSError
        reason = getattr(e, "reason", e)
        raise ImageReadError(
            f"Could not download {url}: {reason} (timeout {timeout:g}s for the whole download). Check the "
            "address and the network, or download the image and pass its local path."
        ) from e


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """BGR/BGRA/gray uint8 to 3-channel RGB."""
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_rgb(item: InputItem, url_timeout: float = 10.0, max_bytes: int = MAX_URL_BYTES) -> np.ndarray:
    """Decode one item to an RGB uint8 HxWx3 array; failures name the file or URL."""
    if item.error is not None:
        raise ImageReadError(item.error)
    if item.array is not None:
        return _to_rgb(item.array)
    assert item.input_path is not None
    if item.is_url:
        image, why = decode_bgr(
            np.frombuffer(download(item.input_path, url_timeout, max_bytes), dtype=np.uint8)
        )
    else:
        image, why = read_bgr(item.input_path)  # the one reader of check, training and visualisation
    if image is None and read_error_is_io(why):
        raise ImageReadError(f"Cannot read {item.input_path}: {why}.")
    if image is None:
        raise ImageReadError(
            f"Cannot decode {item.input_path}: it is not a readable image (empty, truncated, or not really "
            f"a {Path(urlparse(item.input_path).path).suffix or 'image'} file). Replace or remove it, "
            "or pass skip_errors=True (Predict.skip_errors=True) to go on without it."
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def input_stem(item: InputItem) -> str:
    """The file-name stem a result is saved under: the file's or URL's stem, ``array_<i>`` for arrays."""
    if item.input_path is None:
        return f"array_{item.index}"
    if item.is_url:
        name = PurePosixPath(unquote(urlparse(item.input_path).path)).stem
        return name or f"url_{item.index}"
    return Path(item.input_path).stem or f"input_{item.index}"
