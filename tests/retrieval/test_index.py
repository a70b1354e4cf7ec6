"""GalleryIndex with a real (stand-in) model: build, search, add, remove, upsert, sync, and bad input.

The tests that take ``index`` or ``store_factory`` run on each backend (faiss, a collection in a Milvus
Lite file, and one on a Milvus server reached by URL and token; see conftest.py). Ids differ between backends (PaddleX's 0, 1, 2, ... in faiss, content
keys in Milvus), so those tests look ids up with ``ids_of``; PaddleX's numbering has its own faiss test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from retrieval_helpers import LABELS, write_image

from paddlex_feat import build_index, create_model, load_index
from paddlex_feat.retrieval import GalleryIndex
from paddlex_feat.utils.errors import DatasetError, GalleryIndexError


@pytest.fixture
def index(model, gallery, store_factory):
    return build_index(model, str(gallery), store_factory=store_factory)


def image_paths(gallery):
    return sorted(str(p) for p in (gallery.parent / "images").iterdir())


def ids_of(index, gallery) -> list[int]:
    """The id of each gallery image p00..p11, whatever the backend numbers them."""
    by_path = {r.path: r.id for r in index.items()}
    return [by_path[p] for p in image_paths(gallery)]


def reopen(index, tmp_path, model=None):
    """The same index opened again: a saved and reloaded folder, or the collection opened anew."""
    if index.store.backend == "milvus":
        target = index.store.target
        index.close()
        return load_index(uri=target.uri, collection=target.collection, token=target.token, model=model)
    index.save(tmp_path / "idx")
    return load_index(tmp_path / "idx", model=model)


def test_each_gallery_image_finds_itself_with_its_label(index, gallery):
    assert len(index) == 12 and index.meta.index_type == "Flat" and index.meta.recall_at_10 == 1.0
    results = index.search(image_paths(gallery), top_k=3)
    assert [r["input_path"] for r in results] == image_paths(gallery)  # one per query, in input order
    for i, res in enumerate(results):
        assert (
            res["ids"][0] == ids_of(index, gallery)[i]
            and res["label"] == LABELS[i % 4]
            and res.label == res["labels"][0]
        )
        assert res["scores"][0] == pytest.approx(1.0, abs=1e-4) and res["scores"] == sorted(
            res["scores"], reverse=True
        )
        assert len(res["labels"]) == len(res["scores"]) == len(res["ids"]) == len(res["paths"]) == 3
    assert json.loads(json.dumps(results[0].json))["res"]["labels"][0] == "Coca-Cola 330 ml"


def test_meta_records_the_model(index, tiny_model_dir):
    meta = index.meta
    assert meta.model_name == "PP-ShiTuV2_rec" and len(meta.model_hash) == 64
    assert meta.input_size == [32, 32] and meta.dim == 512 and meta.metric == "IP"
    assert meta.preprocess[0]["ResizeImage"]["size"] == [32, 32] and meta.model_dir == str(
        tiny_model_dir.resolve()
    )


def test_top_k_larger_than_the_gallery_gives_fewer_results_without_padding(index, gallery):
    res = index.search(image_paths(gallery)[:1], top_k=50)[0]
    assert len(res["ids"]) == 12 and -1 not in res["ids"] and None not in res["paths"]


def test_threshold_says_unknown_but_keeps_the_top_k(index, gallery):
    res = index.search(image_paths(gallery)[:1], top_k=2, score_threshold=1.5)[0]
    assert res["label"] == "unknown" and len(res["labels"]) == 2 and res["labels"][0] == LABELS[0]
    index.meta.score_threshold = 0.0
    assert index.search(image_paths(gallery)[:1], top_k=2)[0]["label"] == LABELS[0]


def test_ids_are_paddlex_sequential_and_never_reused(model, gallery, tmp_path):
    index = build_index(model, str(gallery))  # faiss: PaddleX's numbering
    assert [r.id for r in index.items()] == list(range(12))
    index.remove([11])  # the highest id: PaddleX's max+1 would hand it out again
    report = index.add(model, [str(write_image(tmp_path / "new.png", 100))], labels=["Red Bull"])
    assert report.added == [12]
    res = index.search([str(tmp_path / "new.png")], top_k=1)[0]
    assert res["ids"] == [12] and res["label"] == "Red Bull"
    index.save(tmp_path / "idx")
    again = load_index(tmp_path / "idx", model=model)
    assert again.add(model, [str(write_image(tmp_path / "n2.png", 101))], labels=["x"]).added == [13]


def test_adding_an_image_already_there_adds_no_duplicate(model, index, gallery, tmp_path):
    copy = tmp_path / "copy.png"
    copy.write_bytes((gallery.parent / "images" / "p03.png").read_bytes())
    report = index.add(model, [str(copy)], labels=["again"])
    same = f"same content as id {ids_of(index, gallery)[3]}"
    assert report.added == [] and same in report.duplicates[0] and len(index) == 12


def test_remove_by_id_path_and_label(index, gallery):
    paths, ids = image_paths(gallery), ids_of(index, gallery)
    assert index.remove([ids[0]]) == 1
    assert index.remove(paths=[paths[1]]) == 1
    assert index.remove(labels=["Sprite"]) == 3  # images 2, 6, 10
    assert len(index) == 7
    hits = {i for r in index.search(paths, top_k=12) for i in r["ids"]}
    assert hits == {ids[k] for k in (3, 4, 5, 7, 8, 9, 11)}


def test_removing_something_unknown_removes_nothing_and_lists_it(index):
    with pytest.raises(GalleryIndexError) as err:
        index.remove([next(index.items()).id, 99], labels=["Sprite", "discontinued item"])
    assert "Nothing was removed" in str(err.value) and "id 99" in str(err.value)
    assert "'discontinued item'" in str(err.value) and len(index) == 12


def test_upsert_replaces_a_changed_image_under_a_new_id(model, index, gallery):
    target = gallery.parent / "images" / "p05.png"
    old = ids_of(index, gallery)[5]
    write_image(target, 500)
    report = index.upsert(model, [str(target)], labels=["Fanta orange"])
    assert report.removed == [old] and len(report.added) == 1 and report.added != [old]
    assert (index.store.backend != "faiss" or report.added == [12]) and len(index) == 12  # faiss: max + 1
    assert index.search([str(target)], top_k=1)[0]["ids"] == report.added


def test_sync_embeds_only_what_changed(model, index, gallery, monkeypatch):
    ids = ids_of(index, gallery)
    lines = gallery.read_text(encoding="utf-8").splitlines()
    write_image(gallery.parent / "images" / "p01.png", 301)  # changed pixels
    write_image(gallery.parent / "images" / "new.png", 302)  # new image
    lines = [ln for ln in lines if "p02.png" not in ln]  # deleted
    lines[2] = lines[2].replace("Pepsi max 1.5 l", "Pepsi zero")  # same pixels, new label
    lines.append("images/new.png Sprite")
    gallery.write_text("\n".join(lines) + "\n", encoding="utf-8")
    embedded = []
    original = model.predict
    monkeypatch.setattr(model, "predict", lambda items, **kw: embedded.extend(items) or original(items, **kw))
    report = index.sync(model, str(gallery))
    assert sorted(embedded) == sorted(str(gallery.parent / "images" / n) for n in ("p01.png", "new.png"))
    assert report.unchanged == 9 and sorted(report.removed) == sorted(ids[1:4]) and len(report.added) == 3
    assert len(index) == 12
    labels = {r.path.rsplit("/", 1)[-1]: r.label for r in index.items()}
    assert labels["p03.png"] == "Pepsi zero" and labels["new.png"] == "Sprite" and "p02.png" not in labels


def test_searching_with_another_model_names_both(index, tmp_path, other_model_dir):
    other = create_model("PP-ShiTuV2_rec", model_dir=str(other_model_dir))
    with pytest.raises(GalleryIndexError) as err:
        reopen(index, tmp_path, model=other)
    assert str(other_model_dir) in str(err.value) and "built by PP-ShiTuV2_rec" in str(err.value)


def test_feature_dimension_mismatch_is_an_error(index):
    with pytest.raises(GalleryIndexError, match="128 dimensions .* 512-d"):
        index.search_vectors(np.zeros((1, 128), np.float32))
    with pytest.raises(GalleryIndexError, match="128 dimensions"):
        index.add_vectors(np.zeros((1, 128), np.float32), ["x"])


def test_empty_gallery_is_an_error(model, tmp_path):
    (tmp_path / "g.txt").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        build_index(model, str(tmp_path / "g.txt"))


def test_unreadable_gallery_image_stops_or_is_skipped_and_listed(model, gallery, store_factory):
    (gallery.parent / "images" / "p04.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"gallery.txt:5: cannot read .*p04.png"):
        build_index(model, str(gallery))
    index = build_index(model, str(gallery), skip_errors=True, store_factory=store_factory)
    assert len(index) == 11 and "gallery.txt:5" in index.last_report.errors[0]
    (gallery.parent / "images" / "p04.png").unlink()
    with pytest.raises(DatasetError, match=r"gallery.txt:5: cannot read .*No such file"):
        build_index(model, str(gallery))


def test_arrays_build_and_search(model, store_factory):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(3)]
    index = GalleryIndex.build(model, images, labels=["a", "b", "c"], store_factory=store_factory)
    assert [r["label"] for r in index.search(images, top_k=1)] == ["a", "b", "c"]


def test_sync_reads_only_files_whose_stat_changed(model, index, gallery, monkeypatch):
    import paddlex_feat.retrieval.gallery as gallery_module

    read = []
    original = gallery_module.content_hash
    monkeypatch.setattr(gallery_module, "content_hash", lambda e: read.append(e.path) or original(e))
    changed = gallery.parent / "images" / "p07.png"
    old = ids_of(index, gallery)[7]
    write_image(changed, 700)
    report = index.sync(model, str(gallery))
    assert read == [str(changed)] and report.unchanged == 11 and report.removed == [old]
    # same bytes under a new mtime: read again, but nothing changes and the id stays
    touched = gallery.parent / "images" / "p08.png"
    touched.write_bytes(touched.read_bytes())
    read.clear()
    assert index.sync(model, str(gallery)).unchanged == 12 and read == [str(touched)]


def test_recall_at_10_is_measured_through_the_built_index_on_each_backend(store_factory):
    x = np.random.default_rng(5).standard_normal((800, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # uniform noise, 1 of 20 lists probed: far from exact
    index = GalleryIndex.from_vectors(x, ["a"] * 800, index_type="IVF", nprobe=1, store_factory=store_factory)
    try:
        # Milvus searches rows whose segment index is not built yet by brute force: 1.0 would mean no index
        assert index.meta.index_type == "IVF" and 0.1 < index.meta.recall_at_10 < 0.9
    finally:
        index.close()


def test_sync_trusts_size_and_mtime_unless_rehash(model, tmp_path):
    import os

    paths = []
    for i, label in enumerate(["a", "b", "c"]):
        paths.append(tmp_path / "g" / label / f"{i}.bmp")
        write_image(paths[-1], i)  # bmp: every 40 x 48 image has the same file size
    index = build_index(model, str(tmp_path / "g"))
    old_id = {r.path: r.id for r in index.items()}[str(paths[0])]
    st = paths[0].stat()
    write_image(paths[0], 99)  # other pixels, same size (40 x 48 bmp) ...
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the old mtime put back
    assert paths[0].stat().st_size == st.st_size
    # git's rule: size and mtime unchanged, so the stored hash stands and nothing is read or embedded
    assert index.sync(model, str(tmp_path / "g")).unchanged == 3
    report = index.sync(model, str(tmp_path / "g"), rehash=True)  # every file read: the change is found
    assert report.removed == [old_id] and len(report.added) == 1 and report.unchanged == 2
