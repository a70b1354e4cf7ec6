"""MilvusStore against a real Milvus Lite file: idempotent keys, meta checks, foreign collections, bad URIs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paddlex_feat.retrieval.index_types import IndexPlan
from paddlex_feat.retrieval.milvus_store import (
    META_PROPERTY,
    PIP_COMMAND,
    MilvusStore,
    MilvusTarget,
    id_for_hash,
    parse_milvus_url,
    require_pymilvus,
)
from paddlex_feat.retrieval.store import IndexMeta, ItemRecord
from paddlex_feat.utils.errors import GalleryIndexError, UsageError


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def records(n: int, offset: int = 0) -> list[ItemRecord]:
    return [
        ItemRecord(-1, f"label {i % 3}", f"img/{i}.jpg", hashlib.sha256(str(i).encode()).hexdigest())
        for i in range(offset, offset + n)
    ]


def meta(dim: int = 16, model_hash: str = "a" * 64, name: str = "PP-ShiTuV2_rec") -> IndexMeta:
    return IndexMeta(name, model_hash, dim, model_dir="/models/a", backend="milvus")


def test_upserts_by_content_key_search_remove_and_reopen(lite_target):
    vectors, recs = unit_rows(40), records(40)
    with MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta()) as store:
        ids = store.add(vectors, recs)
        assert ids.tolist() == [id_for_hash(r.content_hash) for r in recs]
        assert store.add(vectors[:10], recs[:10]).tolist() == ids[:10].tolist()  # the same images again
        assert store.count() == 40
        scores, found = store.search(vectors[:5], 3)
        assert found[:, 0].tolist() == ids[:5].tolist() and scores[:, 0] == pytest.approx(1.0, abs=1e-5)
        scores, found = store.search(vectors[:1], 60)  # more than stored: padded with -1
        assert (found[0] >= 0).sum() == 40 and found[0, 40:].tolist() == [-1] * 20
        assert store.remove([ids[0], ids[1], 12345]) == 2 and store.count() == 38
        assert np.allclose(store.vectors([ids[2]]), vectors[2:3])
    with MilvusStore.open(lite_target) as store:
        assert store.count() == 38 and store.read_meta().model_hash == "a" * 64
        assert {r.label for r in store.records([ids[3]])} == {"label 0"}


def test_filters_quote_any_label(lite_target):
    odd = ['a "quoted" label', "it's", "back\\slash", "tab\there", "Coca-Cola 330 ml"]
    recs = [ItemRecord(-1, lb, None, hashlib.sha256(lb.encode()).hexdigest()) for lb in odd]
    with MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta()) as store:
        store.add(unit_rows(5), recs)
        assert sorted(r.label for r in store.find(labels=odd[:4])) == sorted(odd[:4])
        assert [r.path for r in store.records()] == [None] * 5


def test_a_collection_of_another_model_or_dimension_is_refused_naming_both(lite_target):
    with MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta()) as store:
        store.add(unit_rows(3), records(3))
    with pytest.raises(GalleryIndexError) as err:
        MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta(model_hash="b" * 64))
    assert "aaaaaaaaaaaa" in str(err.value) and "bbbbbbbbbbbb" in str(err.value)
    with pytest.raises(GalleryIndexError, match="holds 16-d features .* 32-d"):
        MilvusStore.create(lite_target, 32, "IP", IndexPlan("Flat"), meta=meta(dim=32))


def test_damaged_meta_is_an_error_naming_the_property(lite_target):
    with MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta()) as store:
        store.client.alter_collection_properties(
            lite_target.collection, properties={META_PROPERTY: '{"dim": "x"'}
        )
    with pytest.raises(GalleryIndexError, match=f"property {META_PROPERTY} is not valid JSON"):
        MilvusStore.open(lite_target)
    with MilvusStore.create(
        lite_target.__class__(lite_target.uri, "other"), 16, "IP", IndexPlan("Flat")
    ) as store:
        bad = json.dumps({**meta().to_json(), "metric": "COS"})
        store.client.alter_collection_properties("other", properties={META_PROPERTY: bad})
    with pytest.raises(GalleryIndexError, match="metric must be one of"):
        MilvusStore.open(lite_target.__class__(lite_target.uri, "other"))


def user_collection(target: MilvusTarget, fitting: bool) -> None:
    """A collection someone made without paddlex_feat, holding one row."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(target.uri)
    schema = client.create_schema(auto_id=False)
    if fitting:
        schema.add_field("id", DataType.INT64, is_primary=True)
    else:
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=16)
    schema.add_field("label", DataType.VARCHAR, max_length=100)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    client.create_collection(target.collection, schema=schema, index_params=index)
    client.insert(
        target.collection, [{"id": 7 if fitting else "7", "vector": unit_rows(1)[0], "label": "theirs"}]
    )
    close_raw(client, target)


def close_raw(client, target: MilvusTarget) -> None:
    """A plain MilvusClient leaves Milvus Lite's server running: stop it as MilvusStore.close does."""
    from milvus_lite.server_manager import server_manager_instance

    client.close()
    server_manager_instance.release_server(target.uri)


def user_rows(target: MilvusTarget) -> int:
    from pymilvus import MilvusClient

    client = MilvusClient(target.uri)
    try:
        return client.query(target.collection, filter="", output_fields=["count(*)"])[0]["count(*)"]
    finally:
        close_raw(client, target)


def test_a_collection_that_is_not_ours_is_never_written_unless_create_false_and_it_fits(lite_target):
    user_collection(lite_target, fitting=True)
    with pytest.raises(GalleryIndexError, match="not made by paddlex_feat.*Index.create=False"):
        MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta())
    with pytest.raises(GalleryIndexError, match="not made by paddlex_feat"):
        MilvusStore.open(lite_target, writable=True, create=True)
    assert user_rows(lite_target) == 1  # untouched, not dropped
    with MilvusStore.open(lite_target, writable=True, create=False) as store:  # the user opted in
        store.add(unit_rows(2, seed=1), records(2))
        assert store.count() == 3
    misfit = MilvusTarget(lite_target.uri, "theirs_varchar")
    user_collection(misfit, fitting=False)
    with pytest.raises(GalleryIndexError, match="schema does not fit: no INT64 primary key"):
        MilvusStore.open(misfit, writable=True, create=False)
    assert user_rows(misfit) == 1


def test_unreachable_uri_fails_within_the_timeout_and_names_the_embedded_file():
    silent = socket.socket()  # accepts connections and never answers: a firewall or a wrong port
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
    start = time.monotonic()
    try:
        with pytest.raises(GalleryIndexError) as err:
            MilvusStore.open(MilvusTarget(uri, "products"), timeout=2)
    finally:
        silent.close()
    assert time.monotonic() - start < 10
    assert (
        uri in str(err.value)
        and "within 2 s" in str(err.value)
        and "Index.uri=output/gallery.db" in str(err.value)
    )


def test_missing_pymilvus_gives_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # import pymilvus now raises ImportError
    with pytest.raises(GalleryIndexError) as err:
        require_pymilvus()
    assert PIP_COMMAND in str(err.value) and "pip install" in PIP_COMMAND


def test_milvus_lite_refuses_ivf_pq_up_front(lite_target):
    plan = IndexPlan("IVF_PQ", {"nlist": 4, "pq_m": 4, "pq_bits": 8})
    with pytest.raises(GalleryIndexError, match="Milvus Lite .* cannot build IVF_PQ"):
        MilvusStore.create(lite_target, 16, "IP", plan, meta=meta())


def test_hnsw_and_ivf_search_with_the_index_knobs(lite_target, tmp_path):
    vectors, recs = unit_rows(300, seed=2), records(300)
    for plan in (
        IndexPlan("HNSW", {"M": 8, "ef_construction": 40, "ef_search": 64}),
        IndexPlan("IVF", {"nlist": 4, "nprobe": 4}),
    ):
        target = MilvusTarget(lite_target.uri, plan.index_type.lower())
        with MilvusStore.create(
            target,
            16,
            "IP",
            plan,
            meta=IndexMeta(None, None, 16, index_type=plan.index_type, index_params=plan.params),
        ) as store:
            ids = store.add(vectors, recs)
            _, found = store.search(vectors[:20], 1, {"nprobe": 4, "ef_search": 32})
            assert (found[:, 0] == ids[:20]).mean() >= 0.9
            assert store.index_type == plan.index_type


@pytest.mark.parametrize(
    "url, uri, collection",
    [
        ("milvus://milvus:19530/products", "http://milvus:19530", "products"),
        ("milvus://milvus/products", "http://milvus:19530", "products"),
        ("milvus+https://zilliz.example:443/p", "https://zilliz.example:443", "p"),
        ("milvus://output/gallery.db/products", "output/gallery.db", "products"),
        ("milvus:///abs/g.db", "/abs/g.db", "gallery"),
    ],
)
def test_milvus_urls(url, uri, collection):
    target = parse_milvus_url(url)
    assert (target.uri, target.collection) == (uri, collection)


def test_bad_milvus_url_and_collection_name():
    with pytest.raises(UsageError, match="names no host"):
        parse_milvus_url("milvus:///products")
    with pytest.raises(UsageError, match="not a valid Milvus collection name"):
        MilvusStore.open(MilvusTarget("x.db", "my-products"))


WRITER = """
import hashlib, sys
import numpy as np
from paddlex_feat.retrieval.index_types import IndexPlan
from paddlex_feat.retrieval.milvus_store import MilvusStore, MilvusTarget
from paddlex_feat.retrieval.store import IndexMeta, ItemRecord
store = MilvusStore.create(MilvusTarget(sys.argv[1], "k"), 16, "IP", IndexPlan("Flat"), meta=IndexMeta("m", "a" * 64, 16))
for b in range(10_000):
    x = np.random.default_rng(b).standard_normal((100, 16)).astype("float32")
    store.add(x, [ItemRecord(-1, "l", None, hashlib.sha256(f"{b}-{i}".encode()).hexdigest()) for i in range(100)])
    print(b, flush=True)
"""


def test_kill_9_during_a_build_keeps_every_acknowledged_batch_whole(tmp_path):
    root = Path(__file__).resolve().parents[2]
    db = str(tmp_path / "killed.db")
    env = {**os.environ, "PYTHONPATH": str(root)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, db],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    acked = -1
    for line in writer.stdout:
        acked = int(line)
        if acked >= 4:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    with MilvusStore.open(MilvusTarget(db, "k")) as store:
        count = store.count()
    assert count % 100 == 0 and count >= (acked + 1) * 100  # whole batches, none acknowledged then lost


def test_creating_without_a_model_over_a_filled_collection_is_refused(lite_target):
    with MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"), meta=meta()) as store:
        store.add(unit_rows(3), records(3))
    with pytest.raises(GalleryIndexError, match="already holds 3 items"):
        MilvusStore.create(lite_target, 16, "IP", IndexPlan("Flat"))  # a store_factory knows no model


def test_a_server_by_url_and_token_stores_searches_and_reopens(server_target, monkeypatch):
    vectors, recs = unit_rows(30, seed=4), records(30)
    with MilvusStore.create(server_target, 16, "IP", IndexPlan("Flat"), meta=meta()) as store:
        ids = store.add(vectors, recs)
        assert store.add(vectors[:5], recs[:5]).tolist() == ids[:5].tolist() and store.count() == 30
    host = server_target.uri.removeprefix("http://")
    monkeypatch.setenv(
        "MILVUS_TOKEN", server_target.token
    )  # the token from the environment, as in CI secrets
    with MilvusStore.open(parse_milvus_url(f"milvus://{host}/{server_target.collection}")) as store:
        _, found = store.search(vectors[:3], 1)
        assert found[:, 0].tolist() == ids[:3].tolist() and store.read_meta().model_hash == "a" * 64


def test_a_server_refuses_a_wrong_or_missing_token_and_the_error_says_index_token(server_target):
    with MilvusStore.create(server_target, 16, "IP", IndexPlan("Flat"), meta=meta()):
        pass
    for token, given in (("root:wrong", "Index.token / MILVUS_TOKEN"), (None, "none were given")):
        start = time.monotonic()
        with pytest.raises(GalleryIndexError) as err:
            MilvusStore.open(MilvusTarget(server_target.uri, server_target.collection, token), timeout=5)
        assert time.monotonic() - start < 5
        assert f"Milvus at {server_target.uri} refused the credentials ({given})" in str(err.value)
        assert "-o Index.token=" in str(err.value)


def test_a_closed_port_fails_within_the_timeout_and_names_the_uri():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    uri = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()  # nothing listens there now: connection refused, retried by gRPC until the timeout
    start = time.monotonic()
    with pytest.raises(GalleryIndexError) as err:
        MilvusStore.open(MilvusTarget(uri, "products"), timeout=2)
    assert time.monotonic() - start < 10
    assert f"Cannot reach Milvus at {uri} within 2 s" in str(
        err.value
    ) and "Index.uri=output/gallery.db" in str(err.value)
