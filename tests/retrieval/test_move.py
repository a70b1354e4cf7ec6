"""Moving a gallery between a Milvus Lite collection and faiss folders (ours and PaddleX's) without re-embedding."""

from __future__ import annotations

import json

import numpy as np
from retrieval_helpers import LABELS
from test_milvus_build import CONFIG, counting

from paddlex_feat import build_index
from paddlex_feat.cli import main
from paddlex_feat.retrieval import load_index
from paddlex_feat.retrieval.milvus_build import fill_collection
from paddlex_feat.retrieval.milvus_store import MilvusTarget, id_for_hash, vector_hash
from paddlex_feat.retrieval.move import collection_to_folder, folder_to_collection


def test_collection_to_folder_and_back_keeps_items_vectors_and_keys(
    model, gallery, lite_target, tmp_path, monkeypatch
):
    with fill_collection(model, gallery, lite_target)[0] as source:
        original = sorted((r.id, r.label, r.path, r.content_hash) for r in source.items())
        vectors = source.store.vectors([o[0] for o in original])
        source.save(tmp_path / "via_save")  # save() of a Milvus-backed index writes a faiss folder copy
    with load_index(tmp_path / "via_save") as saved:
        assert sorted((r.label, r.path, r.content_hash) for r in saved.items()) == sorted(
            o[1:] for o in original
        )
    embedded = counting(model, monkeypatch)
    folder = collection_to_folder(lite_target, tmp_path / "index")
    assert [r.id for r in folder.items()] == list(range(12))  # PaddleX's numbering in the folder
    assert embedded == []  # nothing re-embedded
    with load_index(tmp_path / "index", model=model) as faiss_index:  # a normal faiss folder, model checked
        paths = sorted(str(p) for p in (gallery.parent / "images").iterdir())
        assert [r["label"] for r in faiss_index.search(paths[:4], top_k=1)] == LABELS
    embedded.clear()  # the queries above were embedded, as they must be
    back = MilvusTarget(lite_target.uri, "back")
    with folder_to_collection(tmp_path / "index", back) as copy:
        assert sorted((r.id, r.label, r.path, r.content_hash) for r in copy.items()) == original
        assert np.allclose(copy.store.vectors([o[0] for o in original]), vectors)
        assert copy.meta.model_hash == folder.meta.model_hash
    with folder_to_collection(tmp_path / "index", back) as again:  # importing twice duplicates nothing
        assert len(again) == 12
    assert embedded == []


def test_a_paddlex_folder_imports_keyed_by_its_vectors(model, gallery, lite_target, tmp_path):
    index = build_index(model, str(gallery))
    index.save(tmp_path / "px")
    (tmp_path / "px" / "items.jsonl").unlink()  # what PaddleX writes: vector.index + id_map.yaml only
    (tmp_path / "px" / "meta.json").unlink()
    faiss_vectors = index.store.vectors(list(range(12)))
    with folder_to_collection(tmp_path / "px", lite_target) as imported:
        assert len(imported) == 12 and imported.meta.model_hash is None
        keys = sorted(id_for_hash(vector_hash(v)) for v in faiss_vectors)
        assert sorted(r.id for r in imported.items()) == keys
        assert sorted(r.label for r in imported.items()) == sorted(LABELS[i % 4] for i in range(12))


def test_cli_copies_a_folder_into_a_collection_and_exports_it(model, gallery, tmp_path):
    build_index(model, str(gallery)).save(tmp_path / "index")
    out = tmp_path / "out"
    common = ["-c", str(CONFIG), "-o", f"Global.output={out}", "-o", "Global.mode=build_index"]
    milvus = [
        "-o",
        "Index.backend=milvus",
        "-o",
        f"Index.uri={tmp_path / 'g.db'}",
        "-o",
        "Index.collection=shop",
    ]
    assert main([*common, *milvus, "-o", f"Index.gallery={tmp_path / 'index'}"]) == 0
    result = json.loads((out / "build_index_result.json").read_text())
    assert result["action"] == "copy" and result["count"] == 12
    url = f"milvus://{tmp_path / 'g.db'}/shop"
    assert main([*common, "-o", f"Index.gallery={url}", "-o", f"Index.path={tmp_path / 'exported'}"]) == 0
    assert json.loads((out / "build_index_result.json").read_text())["count"] == 12
    with load_index(tmp_path / "exported") as exported:
        assert sorted(r.label for r in exported.items()) == sorted(LABELS[i % 4] for i in range(12))


def test_cli_an_index_folder_as_gallery_without_milvus_is_explained(model, gallery, tmp_path):
    build_index(model, str(gallery)).save(tmp_path / "index")
    out = tmp_path / "out"
    rc = main(["-c", str(CONFIG), "-o", f"Global.output={out}", "-o", "Global.mode=build_index",
               "-o", f"Index.gallery={tmp_path / 'index'}"])  # fmt: skip
    assert rc == 2  # a usage error: the log says why, and no result file is touched
    assert "already an index folder" in (out / "build_index.log").read_text()
    assert not (out / "build_index_result.json").exists()
