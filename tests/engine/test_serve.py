"""Global.mode=serve: the real CLI process; refuses to start without its model or index; kill -9 keeps every acknowledged add."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "inference"))
from infer_helpers import random_bgr, save_tiny_model  # noqa: E402

from paddlex_feat.cli import main  # noqa: E402

CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_args(tmp: Path, model_dir: Path, index: Path | None, port: int) -> list[str]:
    args = [
        "-c",
        str(CONFIG),
        "-o",
        "Global.mode=serve",
        "-o",
        "Global.device=cpu",
        "-o",
        f"Global.output={tmp / 'out'}",
    ]
    args += ["-o", f"Serve.model_dir={model_dir}", "-o", f"Serve.port={port}", "-o", "Serve.cpu_threads=1"]
    return args + (["-o", f"Serve.index={index}"] if index else [])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("serve_model"))


def test_missing_model_folder_stops_before_listening(tmp_path, capsys) -> None:
    code = main(serve_args(tmp_path, tmp_path / "no_model", None, free_port()))
    assert code == 1
    assert (
        "no_model does not exist"
        in capsys.readouterr().err + (tmp_path / "out" / "serve_result.json").read_text()
    )


def test_missing_index_folder_stops_before_listening(tmp_path, model_dir) -> None:
    code = main(serve_args(tmp_path, model_dir, tmp_path / "no_index", free_port()))
    assert code == 1
    result = (tmp_path / "out" / "serve_result.json").read_text()
    assert '"done_flag": false' in result and "no_index" in result


def test_bad_serve_value_is_named(tmp_path, model_dir, capsys) -> None:
    # a usage error: exit 2, named on stderr, and no result file (nothing ran)
    assert main(serve_args(tmp_path, model_dir, None, free_port()) + ["-o", "Serve.max_batch_size=0"]) == 2
    assert "Serve.max_batch_size must be 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "out" / "serve_result.json").exists()


def test_missing_serve_extra_says_how_to_install(monkeypatch) -> None:
    import importlib.util

    from paddlex_feat.serving import require_serve_deps
    from paddlex_feat.utils.errors import PaddlexFeatError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(PaddlexFeatError, match=r'pip install -e "\.\[serve\]"'):
        require_serve_deps()


def start(tmp: Path, model_dir: Path, index: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "main.py", *serve_args(tmp, model_dir, index, port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not come up")


def jpeg_b64(seed: int) -> str:
    import base64

    import cv2

    return base64.b64encode(cv2.imencode(".jpg", random_bgr(seed))[1].tobytes()).decode()


def test_kill_9_during_adds_loses_no_acknowledged_add(tmp_path, model_dir) -> None:
    from paddlex_feat import build_index, load_index
    from paddlex_feat.inference.predictor import Predictor

    index = build_index(
        Predictor(model_dir), [random_bgr(1000 + i) for i in range(4)], labels=list("abcd"), index_type="Flat"
    )
    folder = index.save(tmp_path / "index")
    proc, url = start(tmp_path, model_dir, folder)
    acknowledged: list[tuple[int, str]] = []
    stop = threading.Event()

    def add_stream() -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(1000):
                if stop.is_set():
                    return
                try:
                    r = client.post(url + "/index/add", json={"images": [jpeg_b64(i)], "labels": [f"add{i}"]})
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 200:
                    acknowledged.append((r.json()["result"]["ids"][0], f"add{i}"))

    writer = threading.Thread(target=add_stream)
    writer.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the stream: some add is in flight
    proc.wait()
    stop.set()
    writer.join()
    assert len(acknowledged) >= 6

    reloaded = load_index(folder)
    stored = {r.id: r.label for r in reloaded.items()}
    missing = [(i, lb) for i, lb in acknowledged if stored.get(i) != lb]
    assert not missing, f"acknowledged adds lost: {missing}"

    # and the service starts again on it (in-process: the same build_service the CLI runs)
    from paddlex_feat.config import load_config
    from paddlex_feat.engine.serve import build_service

    service = build_service(load_config(str(CONFIG), serve_args(tmp_path, model_dir, folder, 1)[3::2]))
    try:
        assert service.index_size() == len(stored) >= 4 + len(acknowledged)
    finally:
        service.close()


def test_idle_keep_alive_connection_outlives_uvicorns_default(tmp_path, model_dir) -> None:
    # a pooled client connection reused after the server's keep-alive timeout meets a reset (the
    # 256-client ReadErrors); the service keeps idle connections longer than uvicorn's 5 s default
    proc, url = start(tmp_path, model_dir, None)
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    try:
        # http.client reads each whole response (headers and body may come in separate packets)
        conn.request("GET", "/health")
        first = conn.getresponse()
        assert first.status == 200 and first.read()
        sock = conn.sock
        time.sleep(6)
        conn.request("GET", "/health")  # the same connection, idle past 5 s
        second = conn.getresponse()
        assert conn.sock is sock, "the client had to open a new connection"
        assert second.status == 200 and second.read()
    finally:
        conn.close()
        proc.terminate()
        proc.wait(timeout=30)
