"""Fixtures: the stand-in model, a real uvicorn server on a free loopback port, and an HTTP client."""

from __future__ import annotations

import base64
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from infer_helpers import random_bgr, save_tiny_model  # noqa: E402

from paddlex_feat.inference.predictor import Predictor  # noqa: E402


def jpeg_b64(image: np.ndarray) -> str:
    """An image as base64 JPEG text, as a client sends it."""
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode("ascii")


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inference folder of the stand-in network (built once per session)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor(tiny_model_dir, cpu_threads=1)


@pytest.fixture
def images() -> list[np.ndarray]:
    return [random_bgr(i) for i in range(6)]


class LiveServer:
    """A Service's app run by uvicorn in a thread, on a loopback port picked by the kernel."""

    def __init__(self, service) -> None:
        import uvicorn

        from paddlex_feat.serving.app import create_app

        self.service = service
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(service), log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def start_server(
    predictor: Predictor, index_dir: Path, default_index: str | None = None, **settings
) -> LiveServer:
    """A live server for ``predictor`` with ServeSettings overridden by ``settings``."""
    from paddlex_feat.retrieval import model_fingerprint
    from paddlex_feat.serving.service import ServeSettings, Service
    from paddlex_feat.serving.store import IndexStore

    store = IndexStore(default=default_index, index_dir=index_dir, fingerprint=model_fingerprint(predictor))
    return LiveServer(Service(predictor, ServeSettings(**settings), store))


@pytest.fixture
def live(predictor: Predictor, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server with default settings and an empty index folder."""
    server = start_server(predictor, tmp_path / "indexes")
    yield server
    server.stop()


DEMO = Path(__file__).resolve().parents[2] / "dataset" / "demo"


def demo_gallery(n: int = 24) -> tuple[list[str], list[str]]:
    """The first ``n`` demo gallery images (absolute paths) and their labels."""
    lines = (DEMO / "gallery.txt").read_text().split("\n")[:n]
    pairs = [line.split() for line in lines if line.strip()]
    return [str(DEMO / rel) for rel, _ in pairs], [label for _, label in pairs]


@pytest.fixture
def gallery_index(predictor: Predictor, tmp_path: Path) -> Path:
    """A saved Flat index of 24 demo gallery images, built by the stand-in model."""
    from paddlex_feat import build_index

    paths, labels = demo_gallery()
    index = build_index(predictor, paths, labels=labels, index_type="Flat")
    return index.save(tmp_path / "gallery_index")


@pytest.fixture
def indexed(predictor: Predictor, gallery_index: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server whose default index is ``gallery_index``."""
    server = start_server(predictor, tmp_path / "indexes", default_index=str(gallery_index))
    yield server
    server.stop()


def file_b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")
