"""Image decoding limits: bytes checked before decoding, pixels read from the header (bombs refused)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import pytest
from conftest import jpeg_b64, png_bytes

from paddlex_feat.serving.errors import ApiError
from paddlex_feat.serving.images import ImageLimits, bytes_from_text, decode_bgr


def png_bomb(width: int, height: int) -> bytes:
    """A valid grayscale PNG of width x height zero pixels: a few hundred KB that inflate to w*h bytes.

    The same 256 zero rows deflate to the same bytes after each full flush, so the stream is one
    block repeated (fast to build) plus the zlib header and the Adler-32 of all-zero data.
    """
    assert height % 256 == 0
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(width + 1) * 256) + deflate.flush(zlib.Z_FULL_FLUSH)
    size = (width + 1) * height
    adler = ((size % 65521) << 16) | 1  # Adler-32 of zeros: a stays 1, b counts the bytes
    data = b"\x78\xda" + block * (height // 256) + deflate.flush() + struct.pack(">I", adler)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_bomb_helper_makes_a_real_png() -> None:
    import cv2

    image = cv2.imdecode(np.frombuffer(png_bomb(300, 512), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape == (512, 300) and not image.any()


def test_base64_image_decodes_to_its_pixels() -> None:
    image = np.full((20, 30, 3), 128, np.uint8)
    data = bytes_from_text(jpeg_b64(image), "image", ImageLimits())
    assert decode_bgr(data, "image", ImageLimits()).shape == (20, 30, 3)


def test_data_url_prefix_is_accepted() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    data = bytes_from_text(
        "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode(), "image", ImageLimits()
    )
    assert decode_bgr(data, "image", ImageLimits()).shape == (8, 8, 3)


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [
        ("", 400, "empty"),
        ("not base64 at all!", 400, "base64"),
        (123, 400, "got int"),
        ("http://10.0.0.1/x.jpg", 400, "Serve.allow_urls=True"),
    ],
)
def test_bad_text_fields_are_400_naming_the_field(text, status, words) -> None:
    with pytest.raises(ApiError) as err:
        bytes_from_text(text, "images[2]", ImageLimits())
    assert err.value.status == status
    assert "images[2]" in err.value.message and words in err.value.message


def test_over_max_bytes_is_413_before_base64_decoding() -> None:
    text = "A" * 4000  # 3000 bytes once decoded
    with pytest.raises(ApiError) as err:
        bytes_from_text(text, "image", ImageLimits(max_bytes=1000))
    assert err.value.status == 413 and "Serve.max_image_bytes" in err.value.message


@pytest.mark.parametrize("side", [10_240, 20_480])  # 100 Mpixel: our limit; 400 Mpixel: past PIL's too
def test_decompression_bomb_is_413_without_decoding(monkeypatch, side: int) -> None:
    bomb = png_bomb(side, side)
    assert len(bomb) < 1_000_000
    decoded = []
    import cv2

    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(1))
    with pytest.raises(ApiError) as err:
        decode_bgr(bomb, "image", ImageLimits(max_pixels=1_000_000))
    assert err.value.status == 413 and "Serve.max_image_pixels" in err.value.message
    assert not decoded  # refused from the header alone


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_image_is_400(cut: float) -> None:
    rng = np.random.default_rng(0)
    full = png_bytes(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ApiError) as err:
        decode_bgr(full[: int(len(full) * cut)], "image", ImageLimits())
    assert err.value.status == 400 and "truncated" in err.value.message


def test_not_an_image_is_400() -> None:
    with pytest.raises(ApiError) as err:
        decode_bgr(b"%PDF-1.4 hello", "image", ImageLimits())
    assert err.value.status == 400 and "not an image" in err.value.message
