"""Downloads, against servers on 127.0.0.1 only: caching, .part handling, tar extraction, offline failures."""

from __future__ import annotations

import functools
import http.server
import io
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paddle
import pytest

from paddlex_feat.models import build_model
from paddlex_feat.models.weights import load_weights
from paddlex_feat.utils.download import DownloadError, cache_root, download_file


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server for a temporary folder: yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections (via the backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_cache_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PADDLEX_FEAT_HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home"
    monkeypatch.delenv("PADDLEX_FEAT_HOME")
    assert cache_root() == Path.home() / ".cache" / "paddlex_feat"


def test_download_then_reuse_cache_without_network(served, tmp_path: Path, monkeypatch) -> None:
    base, root = served
    payload = bytes(range(256)) * 5000
    (root / "blob.bin").write_bytes(payload)
    monkeypatch.setenv("PADDLEX_FEAT_HOME", str(tmp_path / "cache"))
    path = download_file(f"{base}/blob.bin")
    assert path == tmp_path / "cache" / "blob.bin"
    assert path.read_bytes() == payload
    assert not path.with_name("blob.bin.part").exists()
    (root / "blob.bin").unlink()  # the server no longer has it: only the cache can answer
    assert download_file(f"{base}/blob.bin").read_bytes() == payload


def test_http_error_leaves_no_part_file(served, tmp_path: Path) -> None:
    base, _ = served
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download_file(f"{base}/absent.pdparams", cache)
    assert str(cache / "absent.pdparams") in str(err.value)
    assert list(cache.iterdir()) == []


def test_tar_is_extracted_once(served, tmp_path: Path) -> None:
    base, root = served
    with tarfile.open(root / "model.tar", "w") as tar:
        data = b"Global: {model_name: x}\n"
        info = tarfile.TarInfo("model/inference.yml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cache = tmp_path / "cache"
    folder = download_file(f"{base}/model.tar", cache, extract=True)
    assert folder == cache / "model"
    assert (folder / "model" / "inference.yml").read_bytes() == data
    (root / "model.tar").unlink()
    assert download_file(f"{base}/model.tar", cache, extract=True) == folder


def test_tar_with_escaping_member_is_refused(served, tmp_path: Path) -> None:
    base, root = served
    with tarfile.open(root / "evil.tar", "w") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="unsafe member"):
        download_file(f"{base}/evil.tar", cache, extract=True)
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["evil.tar"]  # no half-extracted folder


def test_load_weights_from_url(served, tmp_path: Path) -> None:
    base, root = served
    paddle.seed(3)
    model = build_model("PP-ShiTuV2_rec", 5)
    paddle.save(model.state_dict(), str(root / "rec.pdparams"))
    report = load_weights(build_model("PP-ShiTuV2_rec", 5), f"{base}/rec.pdparams", cache_dir=tmp_path / "c")
    assert report.path == str(tmp_path / "c" / "rec.pdparams")
    assert len(report.loaded) == len(model.state_dict())


def test_offline_url_fails_fast_with_actionable_message(closed_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port}/PP-ShiTuV2_rec_pretrained.pdparams"
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        load_weights(
            build_model("PP-ShiTuV2_rec", 5), url, cache_dir=tmp_path, config_key="Train.pretrain_weight_path"
        )
    assert time.monotonic() - start < 15
    message = str(err.value)
    assert url in message
    assert str(tmp_path / "PP-ShiTuV2_rec_pretrained.pdparams") in message
    assert "Train.pretrain_weight_path=null" in message
    assert err.value.details == {
        "url": url,
        "cache_path": str(tmp_path / "PP-ShiTuV2_rec_pretrained.pdparams"),
    }


def test_server_that_never_answers_times_out(silent_server: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{silent_server}/weights.pdparams"
    start = time.monotonic()
    with pytest.raises(DownloadError, match="network error") as err:
        download_file(url, tmp_path, timeout=1.0)
    assert time.monotonic() - start < 5
    assert url in str(err.value)
    assert not (tmp_path / "weights.pdparams.part").exists()


def test_export_key_hint_does_not_suggest_the_train_override(closed_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port}/x.pdparams"
    with pytest.raises(DownloadError) as err:
        load_weights(
            build_model("PP-ShiTuV2_rec", 5), url, cache_dir=tmp_path, config_key="Export.weight_path"
        )
    assert "Export.weight_path" in str(err.value)
    assert "Train.pretrain_weight_path" not in str(err.value)
