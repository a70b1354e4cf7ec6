"""URL inputs: the timeout bounds the whole download and the size is bounded, against a real local server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from paddlex_feat.inference.inputs import ImageReadError, download

_, _JPEG = cv2.imencode(".jpg", np.full((8, 8, 3), 200, np.uint8))
JPEG = _JPEG.tobytes()


class Handler(BaseHTTPRequestHandler):
    """/trickle: 20 bytes, one every 0.3 s (6 s in all); /big: 4096 bytes, with or without Content-Length; /ok: a JPEG."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = {"/ok": JPEG, "/trickle": b"x" * 20}.get(self.path, b"x" * 4096)
        self.send_response(200)
        if self.path != "/big-unsized":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if self.path == "/trickle":
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
            else:
                self.wfile.write(body)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_timeout_bounds_the_whole_download_of_a_trickling_server(server: str) -> None:
    start = time.monotonic()
    with pytest.raises(
        ImageReadError,
        match=r"trickle: (timed out|the download took longer).*timeout 1s for the whole download",
    ):
        download(f"{server}/trickle", timeout=1.0)  # each byte comes well within 1 s; the whole never does
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("path", ["/big", "/big-unsized"])
def test_size_is_bounded_with_or_without_content_length(server: str, path: str) -> None:
    with pytest.raises(ImageReadError, match=r"more than the limit of 1000 bytes.*max_image_bytes"):
        download(f"{server}{path}", timeout=5.0, max_bytes=1000)


def test_a_normal_download_is_whole(server: str) -> None:
    assert download(f"{server}/ok", timeout=5.0) == JPEG
    assert download(f"{server}/big-unsized", timeout=5.0, max_bytes=4096) == b"x" * 4096
