"""Filling a Milvus Lite collection with a real (stand-in) model: shards, resume, sync, model checks, the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from retrieval_helpers import LABELS, write_image

from paddlex_feat import create_model
from paddlex_feat.cli import main
from paddlex_feat.retrieval import load_index
from paddlex_feat.retrieval.milvus_build import (
    IndexOptions,
    InsertedVectors,
    fill_collection,
    measure_collection_recall,
    shard_slice,
)
from paddlex_feat.retrieval.milvus_store import MilvusTarget, id_for_hash
from paddlex_feat.utils.errors import GalleryIndexError
from paddlex_feat.utils.logger import logger

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def items(index) -> list[tuple]:
    return sorted((r.id, r.label, r.path, r.content_hash) for r in index.items())


def counting(model, monkeypatch, fail_on_call: int | None = None) -> list[str]:
    """Record what the model embeds; optionally die on the n-th predict call, as a killed build would."""
    embedded: list[str] = []
    original = model.predict
    calls = []

    def predict(sources, **kw):
        calls.append(1)
        if fail_on_call is not None and len(calls) == fail_on_call:
            raise RuntimeError("the machine went away")
        embedded.extend(sources)
        return original(sources, **kw)

    monkeypatch.setattr(model, "predict", predict)
    return embedded


def test_shard_slices_are_deterministic_and_cover_the_list_once():
    entries = list(range(10))
    slices = [shard_slice(entries, (i, 3)) for i in (1, 2, 3)]
    assert slices == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert sorted(sum(slices, [])) == entries and shard_slice(entries, None) == entries


def test_two_shards_fill_the_same_collection_as_one_full_build(model, gallery, lite_target):
    one = MilvusTarget(lite_target.uri, "one_shot")
    with fill_collection(model, gallery, one, chunk=5)[0] as full:
        expected, vectors = items(full), full.store.vectors([i[0] for i in items(full)])
    for i in (1, 2):
        index, report = fill_collection(model, gallery, lite_target, shard=(i, 2), chunk=5)
        index.close()
        assert len(report.added) == 6
    with load_index(uri=lite_target.uri, collection=lite_target.collection, model=model) as sharded:
        assert items(sharded) == expected and len(expected) == 12
        assert np.allclose(sharded.store.vectors([i[0] for i in expected]), vectors)
        assert sharded.meta.model_hash == full.meta.model_hash and sharded.meta.count == 12
        paths = sorted(str(p) for p in (gallery.parent / "images").iterdir())
        assert [r["label"] for r in sharded.search(paths[:4], top_k=1)] == LABELS


def test_a_repeated_shard_reads_embeds_and_duplicates_nothing(model, gallery, lite_target, monkeypatch):
    import paddlex_feat.retrieval.gallery as gallery_module

    fill_collection(model, gallery, lite_target, shard=(1, 2))[0].close()
    embedded = counting(model, monkeypatch)
    read = []
    original = gallery_module.content_hash
    monkeypatch.setattr(gallery_module, "content_hash", lambda e: read.append(e.path) or original(e))
    index, report = fill_collection(model, gallery, lite_target, shard=(1, 2))
    with index:
        assert embedded == [] and report.added == [] and report.unchanged == 6 and len(index) == 6
        assert read == []  # unchanged size and mtime: the files are not even read again


def test_a_build_that_dies_resumes_where_the_collection_stopped(model, gallery, lite_target, monkeypatch):
    counting(model, monkeypatch, fail_on_call=3)  # chunks of 4 images: the third chunk dies
    with pytest.raises(RuntimeError, match="went away"):
        fill_collection(model, gallery, lite_target, chunk=4)
    with load_index(uri=lite_target.uri, collection=lite_target.collection) as half:
        assert len(half) == 8  # two chunks were stored
    monkeypatch.undo()
    embedded = counting(model, monkeypatch)
    index, report = fill_collection(model, gallery, lite_target, chunk=4)
    with index:
        assert len(embedded) == 4 and report.unchanged == 8 and len(index) == 12


def test_without_a_shard_the_build_syncs(model, gallery, lite_target, monkeypatch):
    fill_collection(model, gallery, lite_target)[0].close()
    lines = gallery.read_text(encoding="utf-8").splitlines()
    write_image(gallery.parent / "images" / "p01.png", 301)  # changed pixels
    lines = [ln for ln in lines if "p02.png" not in ln]  # deleted
    lines[2] = lines[2].replace("Pepsi max 1.5 l", "Pepsi zero")  # same pixels, new label
    gallery.write_text("\n".join(lines) + "\n", encoding="utf-8")
    embedded = counting(model, monkeypatch)
    index, report = fill_collection(model, gallery, lite_target)
    with index:
        assert [Path(p).name for p in embedded] == ["p01.png"]
        assert len(index) == 11 and len(report.removed) == 2 and report.unchanged == 9
        labels = {Path(r.path).name: r.label for r in index.items()}
        assert labels["p03.png"] == "Pepsi zero" and "p02.png" not in labels


def test_another_model_is_refused_naming_both(model, gallery, lite_target, other_model_dir):
    fill_collection(model, gallery, lite_target, shard=(1, 2))[0].close()
    other = create_model("PP-ShiTuV2_rec", model_dir=str(other_model_dir))
    with pytest.raises(GalleryIndexError) as err:
        fill_collection(other, gallery, lite_target, shard=(2, 2))
    assert str(other_model_dir) in str(err.value) and "built by PP-ShiTuV2_rec" in str(err.value)
    with pytest.raises(GalleryIndexError, match=str(other_model_dir)):
        load_index(uri=lite_target.uri, collection=lite_target.collection, model=other)


def test_create_false_needs_the_collection(model, gallery, lite_target):
    with pytest.raises(GalleryIndexError, match="has no collection 'products'.*Index.create=False"):
        fill_collection(model, gallery, lite_target, create=False)


def cli(tmp_path: Path, *overrides: str) -> tuple[int, dict]:
    out = tmp_path / "out"
    rc = main(["-c", str(CONFIG), "-o", f"Global.output={out}", *sum((["-o", o] for o in overrides), [])])
    mode = next(o.split("=", 1)[1] for o in overrides if o.startswith("Global.mode="))
    result = out / f"{mode}_result.json"
    return rc, json.loads(result.read_text()) if result.exists() else {}


def test_cli_builds_in_shards_and_searches_a_collection(tmp_path, gallery, tiny_model_dir):
    common = [
        "Index.backend=milvus",
        f"Index.uri={tmp_path / 'gallery.db'}",
        "Index.collection=products",
        f"Index.model_dir={tiny_model_dir}",
        "Global.device=cpu",
    ]
    for shard in ("1/2", "2/2"):
        rc, result = cli(
            tmp_path, "Global.mode=build_index", f"Index.gallery={gallery}", f"Index.shard={shard}", *common
        )
        assert rc == 0 and result["num_added"] == 6 and result["action"] == "fill"
    assert result["count"] == 12
    query = gallery.parent / "images" / "p05.png"
    rc, result = cli(tmp_path, "Global.mode=search", f"Predict.input={query}", "Index.top_k=2", *common)
    assert (
        rc == 0
        and result["results"][0]["label"] == LABELS[1]
        and result["results"][0]["paths"][0] == str(query)
    )


@pytest.mark.parametrize("shard", ["3/2", "0/0", "a/b", "1/0", "2"])
def test_cli_malformed_shard_is_a_usage_error(tmp_path, capsys, shard):
    rc, _ = cli(tmp_path, "Global.mode=build_index", "Index.backend=milvus", f"Index.shard={shard}")
    assert rc == 2 and f"Index.shard={shard!r} is not a shard" in capsys.readouterr().err


def test_cli_shard_needs_the_milvus_backend(tmp_path, capsys):
    rc, _ = cli(tmp_path, "Global.mode=build_index", "Index.shard=1/2")
    assert rc == 2 and "needs -o Index.backend=milvus" in capsys.readouterr().err


def test_an_ann_build_records_its_recall_at_10_and_a_later_sync_measures_it_again(
    model, gallery, lite_target
):
    options = IndexOptions(index_type="HNSW")
    index, _ = fill_collection(model, gallery, lite_target, options=options)
    index.close()
    with load_index(uri=lite_target.uri, collection=lite_target.collection) as built:
        how = built.meta.extra["recall_at_10"]
        assert built.meta.index_type == "HNSW" and 0.0 <= built.meta.recall_at_10 <= 1.0
        assert how["exact_from"] == "the vectors this build inserted" and how["queries"] == how["rows"] == 12
    write_image(gallery.parent / "images" / "p01.png", 301)  # one changed image: the rest is not re-inserted
    index, _ = fill_collection(model, gallery, lite_target, options=options)
    with index:
        how = index.meta.extra["recall_at_10"]
        assert how["exact_from"] == "the collection read back" and how["rows"] == 12
        assert 0.0 <= index.meta.recall_at_10 <= 1.0


def test_a_flat_collection_is_exact_and_nothing_is_read(model, gallery, lite_target, monkeypatch):
    from paddlex_feat.retrieval.milvus_store import MilvusStore

    monkeypatch.setattr(
        MilvusStore, "iter_vectors", lambda *a, **k: pytest.fail("Flat needs no exact answers")
    )
    with fill_collection(model, gallery, lite_target, options=IndexOptions(index_type="Flat"))[0] as index:
        assert index.meta.recall_at_10 == 1.0 and index.meta.extra["recall_at_10"]["exact"] is True


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_collection_recall_is_the_share_of_exact_neighbours_found_from_either_source(lite_target, caplog):
    from paddlex_feat.retrieval.index_types import IndexPlan
    from paddlex_feat.retrieval.milvus_store import MilvusStore
    from paddlex_feat.retrieval.store import IndexMeta, ItemRecord

    vectors = unit_rows(400, 16, seed=3)  # uniform noise and 1 of 16 lists probed: recall well under 1
    records = [ItemRecord(-1, "x", None, hashlib.sha256(str(i).encode()).hexdigest()) for i in range(400)]
    plan = IndexPlan("IVF", {"nlist": 16, "nprobe": 1})
    meta = IndexMeta(None, None, 16, index_type="IVF", index_params=plan.params)
    with MilvusStore.create(lite_target, 16, "IP", plan, meta=meta) as store:
        inserted = InsertedVectors()
        inserted.add(store.add(vectors, records), vectors)
        logged, how = measure_collection_recall(store, inserted)
        read, how_read = measure_collection_recall(store, None)
        inserted.close()
        # the same figure, computed here by a full sort over the vectors and the index's own answers
        query_ids, queries = store.sample_vectors(200)
        keys = np.array([id_for_hash(r.content_hash) for r in records])
        exact = keys[np.argsort(-(queries @ vectors.T), axis=1)[:, :10]]
        _, found = store.search(queries, 10)
        expected = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.tolist(), found.tolist())])
        assert read == pytest.approx(expected) and how_read["exact_from"] == "the collection read back"
        assert 0.2 < read < 0.95 and how["exact_from"] == "the vectors this build inserted"
        assert abs(logged - read) < 0.15  # other query samples of the same index
        logger.addHandler(caplog.handler)  # the toolkit's logger does not propagate
        caplog.set_level(logging.INFO, logger=logger.name)
        try:
            skipped, how = measure_collection_recall(store, None, max_read=100)
        finally:
            logger.removeHandler(caplog.handler)
        assert (
            skipped is None and "400 rows" in how["skipped"] and "recall@10 at build skipped" in caplog.text
        )


def test_two_shards_through_a_server_url_equal_one_build_and_record_recall(model, gallery, server_target):
    one = MilvusTarget(server_target.uri, server_target.collection + "_one", server_target.token)
    with fill_collection(model, gallery, one)[0] as full:
        expected = items(full)
    for i in (1, 2):  # one after another: Milvus Lite's server takes one writer per collection at a time
        fill_collection(model, gallery, server_target, shard=(i, 2), options=IndexOptions(index_type="HNSW"))[
            0
        ].close()
    with load_index(
        uri=server_target.uri, collection=server_target.collection, token=server_target.token
    ) as sharded:
        assert items(sharded) == expected and sharded.meta.index_type == "HNSW"
        how = sharded.meta.extra["recall_at_10"]  # shard 2 saw shard 1's rows: the collection was read back
        assert how["exact_from"] == "the collection read back" and how["rows"] == 12
        assert 0.0 <= sharded.meta.recall_at_10 <= 1.0


def test_cli_builds_and_searches_on_a_server_by_url_and_token(
    tmp_path, gallery, tiny_model_dir, server_target, capsys
):
    common = [
        "Index.backend=milvus",
        f"Index.uri={server_target.uri}",
        f"Index.token={server_target.token}",
        f"Index.collection={server_target.collection}",
        f"Index.model_dir={tiny_model_dir}",
        "Global.device=cpu",
    ]
    rc, result = cli(tmp_path, "Global.mode=build_index", f"Index.gallery={gallery}", *common)
    assert rc == 0 and result["num_added"] == 12 and result["count"] == 12
    query = gallery.parent / "images" / "p06.png"
    rc, result = cli(tmp_path, "Global.mode=search", f"Predict.input={query}", "Index.top_k=1", *common)
    assert rc == 0 and result["results"][0]["label"] == LABELS[2]
    rc, result = cli(tmp_path, "Global.mode=search", f"Predict.input={query}", *common[:2], *common[3:])
    assert rc != 0 and result.get("done_flag") is False  # no token: refused, and the result file says so
    assert "refused the credentials (none were given)" in capsys.readouterr().err
