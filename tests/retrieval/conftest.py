"""Fixtures: the stand-in model's inference folder and small galleries of synthetic images."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference"))
from infer_helpers import save_tiny_model  # noqa: E402
from retrieval_helpers import LABELS, write_image  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inference folder of the stand-in network (built once per session)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """Same network, one weight changed: another model with the same name and shapes."""
    folder = tmp_path_factory.mktemp("other_model")
    for f in tiny_model_dir.iterdir():
        shutil.copy(f, folder / f.name)
    params = bytearray((folder / "inference.pdiparams").read_bytes())
    params[-1] ^= 0x01
    (folder / "inference.pdiparams").write_bytes(bytes(params))
    return folder


@pytest.fixture(scope="session")
def model(tiny_model_dir: Path):
    from paddlex_feat import create_model

    return create_model("PP-ShiTuV2_rec", model_dir=str(tiny_model_dir), batch_size=8, cpu_threads=1)


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """images/ with 12 images (3 per label) and gallery.txt, labels with spaces."""
    root = tmp_path / "shop"
    lines = []
    for i in range(12):
        rel = f"images/p{i:02d}.png"
        write_image(root / rel, i)
        lines.append(f"{rel} {LABELS[i % 4]}\n")
    (root / "gallery.txt").write_text("".join(lines), encoding="utf-8")
    return root / "gallery.txt"


SERVER_TOKEN = "root:Milvus"  # Milvus's default credentials, as Index.token takes them


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory):
    """``(uri, token)`` of a Milvus server in another process on a free loopback port (tests/retrieval/milvus_server.py)."""
    data = tmp_path_factory.mktemp("milvus_server") / "data"
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("milvus_server.py")), str(data), SERVER_TOKEN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = server.stdout.readline()
    assert line.startswith("PORT "), f"the test Milvus server did not start: {line!r}"
    yield f"http://127.0.0.1:{int(line.split()[1])}", SERVER_TOKEN
    server.stdin.close()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture
def server_target(milvus_server):
    """A fresh collection on the test Milvus server, reached by URL and token."""
    from paddlex_feat.retrieval.milvus_store import MilvusTarget

    uri, token = milvus_server
    return MilvusTarget(uri, f"t_{uuid.uuid4().hex[:12]}", token)


@pytest.fixture(params=["faiss", "milvus", "milvus_server"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path):
    """The backend of the behaviour tests: None (faiss, the default), collections in a Milvus Lite file, or
    collections on a Milvus server reached by ``http://127.0.0.1:PORT`` and a token."""
    if request.param == "faiss":
        yield None
        return
    from paddlex_feat.retrieval.milvus_store import MilvusStore, MilvusTarget

    stores = []
    if request.param == "milvus_server":
        uri, token = request.getfixturevalue("milvus_server")
        prefix = f"t_{uuid.uuid4().hex[:12]}"
    else:
        uri, token, prefix = str(tmp_path / "gallery.db"), None, "gallery"

    def in_milvus(dim, metric, plan, train):
        target = MilvusTarget(uri, f"{prefix}_{len(stores)}", token)
        stores.append(MilvusStore.create(target, dim, metric, plan))
        return stores[-1]

    yield in_milvus
    for store in stores:
        store.close()
    assert_no_lite_server_left(tmp_path)


@pytest.fixture
def lite_target(tmp_path: Path):
    """A collection in a fresh Milvus Lite file; the test fails if it leaves the file's server running."""
    from paddlex_feat.retrieval.milvus_store import MilvusTarget

    yield MilvusTarget(str(tmp_path / "gallery.db"), "products")
    assert_no_lite_server_left(tmp_path)


def assert_no_lite_server_left(tmp_path: Path) -> None:
    """Every store closed: no Milvus Lite server thread still runs for a file under ``tmp_path``."""
    from milvus_lite.server_manager import server_manager_instance

    leaked = [p for p in list(server_manager_instance._servers) if p.startswith(str(tmp_path))]
    for path in leaked:  # stop them anyway, so one failure does not slow the rest
        server_manager_instance.release_server(path)
    assert not leaked, f"Milvus Lite servers left running: {leaked}"
