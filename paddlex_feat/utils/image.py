"""The one image reader: dataset checks, training/eval datasets, visualisation and the predictor.

Files are read with ``np.fromfile`` + ``cv2.imdecode`` (which copes with non-ASCII paths) and
decoded fully as 8-bit BGR (``IMREAD_COLOR`` also turns 16-bit and grayscale files into 8-bit BGR,
as the reference reads them). Failures come back as a short reason, never as an exception, so each
caller words the error for its own user.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_bgr(path: str | os.PathLike) -> tuple[np.ndarray | None, str | None]:
    """Read and fully decode one image file as BGR uint8: ``(image, None)`` or ``(None, why)``; never raises."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        return None, "not found"
    except IsADirectoryError:
        return None, "is a folder, not an image file"
    except OSError as e:
        return None, f"cannot be read ({e.strerror})"
    return decode_bgr(data)


def decode_bgr(data: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Decode encoded image bytes (uint8) as BGR uint8: ``(image, None)`` or ``(None, why)``; never raises."""
    if data.size == 0:
        return None, "is an empty (0-byte) file"
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as e:
        return None, f"cannot be decoded ({e.err})"
    if image is None:
        return None, f"cannot be decoded: truncated, corrupt or not an image ({data.size} bytes)"
    return image, None


def read_error_is_io(why: str) -> bool:
    """Whether a :func:`read_bgr` reason is about reading the file (not about decoding its bytes)."""
    return why.startswith(("not found", "is a folder", "cannot be read"))
