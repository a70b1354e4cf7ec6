"""Images from requests: base64 text, uploads or URLs to BGR pixels, within byte and pixel limits.

A request can hand us anything, so the size is checked before any work: the encoded bytes against
``max_image_bytes`` (base64 by its length, before decoding it), then the width and height read
from the image *header* against ``max_image_pixels``, so a decompression bomb (a small PNG that
inflates to gigapixels) is refused without ever being decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..inference.inputs import ImageReadError, download
from .errors import ApiError

DATA_URL_MARK = ";base64,"  # browsers send data:image/png;base64,....


@dataclass(frozen=True)
class ImageLimits:
    """What the service accepts: encoded bytes, decoded pixels, and whether URLs are fetched."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    allow_urls: bool = False
    url_timeout: float = 10.0


def is_url(text: str) -> bool:
    """Whether an image field is an http(s) URL rather than base64."""
    return text[:8].lower().startswith(("http://", "https://"))


def bytes_from_text(text: object, field: str, limits: ImageLimits) -> bytes:
    """The encoded image in a JSON field: base64 (optionally a data: URL) or, if allowed, an http(s) URL."""
    if not isinstance(text, str):
        raise ApiError(400, f"{field}: expected a base64 string or a URL, got {type(text).__name__}.")
    text = text.strip()
    if not text:
        raise ApiError(400, f"{field}: the image is empty; send the file's bytes in base64.")
    if is_url(text):
        return _fetch_url(text, field, limits)
    if text.startswith("data:") and DATA_URL_MARK in text[:100]:
        text = text.split(DATA_URL_MARK, 1)[1]
    if len(text) // 4 * 3 > limits.max_bytes + 2:  # checked before decoding: no memory spent on it
        raise _too_many_bytes(field, len(text) // 4 * 3, limits)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ApiError(
            400, f"{field}: not valid base64 ({e}); send the image file's bytes base64-encoded, or a URL."
        ) from e
    return check_bytes(data, field, limits)


def check_bytes(data: bytes, field: str, limits: ImageLimits) -> bytes:
    """``data`` if it is non-empty and within ``max_bytes``, else a 400 or 413 naming ``field``."""
    if not data:
        raise ApiError(400, f"{field}: the image is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(field, len(data), limits)
    return data


def _too_many_bytes(field: str, size: int, limits: ImageLimits) -> ApiError:
    return ApiError(
        413,
        f"{field}: the image is {size} bytes, over the limit of {limits.max_bytes} (Serve.max_image_bytes); "
        "send a smaller image.",
    )


def _fetch_url(url: str, field: str, limits: ImageLimits) -> bytes:
    """Download an image URL, only when the service allows URLs."""
    if not limits.allow_urls:
        raise ApiError(
            400,
            f"{field}: image URLs are turned off on this service, so that it cannot be made to reach internal "
            "addresses; send the image as base64 or as an upload, or start the service with "
            "-o Serve.allow_urls=True.",
        )
    try:
        return check_bytes(download(url, limits.url_timeout), field, limits)
    except ImageReadError as e:
        raise ApiError(400, f"{field}: {e}") from e


def header_size(data: bytes, field: str) -> tuple[int, int] | None:
    """(width, height) from the image header without decoding the pixels; None if PIL cannot tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # lazy: reads the header only
                return img.size
    except Image.DecompressionBombError as e:  # past PIL's own, higher, limit: a bomb all the same
        raise ApiError(
            413, f"{field}: {e} (Serve.max_image_pixels); it was not decoded. Send a smaller image."
        ) from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def decode_bgr(data: bytes, field: str, limits: ImageLimits) -> np.ndarray:
    """Decode checked bytes to BGR uint8 pixels: 413 over the pixel limit, 400 if not a whole image."""
    size = header_size(data, field)
    if size is None:
        raise ApiError(
            400, f"{field}: not an image (the bytes are no JPEG, PNG, BMP or WebP); send an image file."
        )
    width, height = size
    if width * height > limits.max_pixels:
        raise ApiError(
            413,
            f"{field}: the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels} (Serve.max_image_pixels); it was not decoded. Send a smaller image.",
        )
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise ApiError(
            400, f"{field}: the image is truncated or corrupt and cannot be decoded; send the whole file."
        )
    return image
