"""The index folder: PaddleX's files plus ours, atomic saves, PaddleX folders, and every damaged-folder case."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
import yaml

from paddlex_feat.retrieval import GalleryIndex, load_index
from paddlex_feat.retrieval.folder import save_store
from paddlex_feat.utils.errors import GalleryIndexError


def unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def saved(tmp_path):
    index = GalleryIndex.from_vectors(
        unit(6), ["a b", "c", "d", "e", "f", "g"], paths=[f"{i}.jpg" for i in range(6)]
    )
    return index.save(tmp_path / "idx")


def test_folder_holds_paddlex_files_and_ours(saved):
    assert sorted(p.name for p in saved.iterdir()) == [
        "id_map.yaml",
        "items.jsonl",
        "meta.json",
        "vector.index",
    ]
    info = yaml.safe_load((saved / "id_map.yaml").read_text(encoding="utf-8"))
    assert info == {
        "id_map": {0: "a b", 1: "c", 2: "d", 3: "e", 4: "f", 5: "g"},
        "metric_type": "IP",
        "index_type": "Flat",
    }
    assert isinstance(faiss.read_index(str(saved / "vector.index")), faiss.IndexIDMap2)
    first = json.loads((saved / "items.jsonl").read_text().splitlines()[0])
    assert first == {"id": 0, "label": "a b", "path": "0.jpg", "content_hash": None, "file_stat": None}
    assert json.loads((saved / "meta.json").read_text())["count"] == 6


def test_a_paddlex_folder_loads_and_keeps_its_ids(tmp_path):
    x = unit(5)
    index = faiss.IndexIDMap2(faiss.index_factory(8, "Flat", faiss.METRIC_INNER_PRODUCT))
    index.add_with_ids(x, np.array([0, 1, 2, 4, 7], dtype=np.int64))  # after PaddleX removed 3, 5, 6
    folder = tmp_path / "px"
    folder.mkdir()
    faiss.write_index(index, str(folder / "vector.index"))
    id_map = {"id_map": {0: "a", 1: "b", 2: "c", 4: "d", 7: "e f"}, "metric_type": "IP", "index_type": "Flat"}
    (folder / "id_map.yaml").write_text(yaml.safe_dump(id_map))
    loaded = load_index(folder)
    assert loaded.meta.model_hash is None and len(loaded) == 5
    assert loaded.search_vectors(x[4], top_k=1)[0]["labels"] == ["e f"]
    assert loaded.add_vectors(unit(1, seed=3), ["new"]) == [8]  # max + 1


def test_missing_path_and_a_folder_that_is_not_an_index(tmp_path):
    with pytest.raises(GalleryIndexError, match="does not exist. Build one first"):
        load_index(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(
        GalleryIndexError,
        match=r"not an index folder: vector.index and id_map.yaml missing \(it holds: notes.txt\)",
    ):
        load_index(tmp_path / "other")
    index = GalleryIndex.from_vectors(unit(2), ["a", "b"])
    with pytest.raises(GalleryIndexError, match="is not an index folder"):
        index.save(tmp_path / "other")  # never replaces a folder of the user's
    assert (tmp_path / "other" / "notes.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: "{not json", r"meta.json:1:2: meta.json is not valid JSON"),
        (lambda m: json.dumps({**m, "dim": "512"}), r"dim must be a positive integer; got '512'"),
        (lambda m: json.dumps({**m, "index_type": "HNSW64"}), r"index_type must be one of"),
        (lambda m: json.dumps({**m, "colour": 1}), r"unknown key\(s\) colour"),
        (lambda m: json.dumps({**m, "dim": 16}), r"says dim 16, metric IP, but vector.index is 8-d"),
        (lambda m: json.dumps([m]), r"expected a JSON object"),
    ],
)
def test_corrupt_or_hand_edited_meta(saved, edit, message):
    meta = json.loads((saved / "meta.json").read_text())
    (saved / "meta.json").write_text(edit(meta))
    with pytest.raises(GalleryIndexError, match=message):
        load_index(saved)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id_map: {0: a\n  bad: [", r"id_map.yaml:\d+: id_map.yaml is not valid YAML"),
        ("id_map: {0: a}\nmetric_type: IP\n", r"expected the keys id_map, metric_type and index_type"),
        ("id_map: {x: a}\nmetric_type: IP\nindex_type: Flat\n", r"id_map key 'x' is not an integer"),
        (
            "id_map: {0: a, 1: c}\nmetric_type: IP\nindex_type: Flat\n",
            r"holds 6 vectors but id_map.yaml lists 2 ids",
        ),
        (
            "id_map: {0: a, 1: c, 2: d, 3: e, 4: f, 9: g}\nmetric_type: IP\nindex_type: Flat\n",
            r"ids in vector.index and id_map.yaml differ",
        ),
        (
            "id_map: {0: a, 1: c, 2: d, 3: e, 4: f, 5: g}\nmetric_type: IP\nindex_type: Flat\n",
            r"disagree on ids or labels",
        ),
        ("id_map: {0: a}\nmetric_type: cosine\nindex_type: Flat\n", r"metric_type 'cosine' is not supported"),
    ],
)
def test_corrupt_or_hand_edited_id_map(saved, text, message):
    (saved / "id_map.yaml").write_text(text)
    with pytest.raises(GalleryIndexError, match=message):
        load_index(saved)


def test_items_count_differs_from_the_faiss_file(saved):
    lines = (saved / "items.jsonl").read_text().splitlines()
    (saved / "items.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(GalleryIndexError, match="items.jsonl has 5 items but vector.index holds 6 vectors"):
        load_index(saved)
    (saved / "items.jsonl").write_text("\n".join(lines[:-1] + ["{broken"]) + "\n")
    with pytest.raises(GalleryIndexError, match=r"items.jsonl:6: not an item record"):
        load_index(saved)
    (saved / "items.jsonl").unlink()
    with pytest.raises(GalleryIndexError, match="items.jsonl is missing"):
        load_index(saved)


def test_a_damaged_faiss_file(saved):
    (saved / "vector.index").write_bytes(b"\0" * 100)
    with pytest.raises(GalleryIndexError, match="vector.index is not a readable faiss index"):
        load_index(saved)


def test_a_failed_save_leaves_the_old_index_whole(saved, monkeypatch):
    index = load_index(saved)
    index.add_vectors(unit(1, seed=9), ["new"])

    def crash(path):
        (path and __import__("pathlib").Path(path).mkdir()) or None
        raise OSError("disk full")

    monkeypatch.setattr(index.store, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        index.save(saved)
    assert len(load_index(saved)) == 6
    assert [p.name for p in saved.parent.iterdir() if p.name.startswith(".")] == []  # no temp folder left


def test_an_interrupted_swap_is_finished_on_load(saved):
    old = saved.parent / f".{saved.name}.old-1234abcd"
    saved.rename(old)  # what a kill between the two fallback renames leaves
    assert len(load_index(saved)) == 6 and saved.is_dir() and not old.exists()


def test_save_replaces_an_existing_index_in_place(saved):
    index = load_index(saved)
    index.remove([0])
    save_store(index.store, index.meta, saved)
    assert len(load_index(saved)) == 5


def test_id_map_is_written_as_yaml_dump_writes_it():
    from paddlex_feat.retrieval.faiss_store import _yaml_text, dump_id_map

    labels = ["a b", "yes", "null", "123", "1.5", "a: b", "#x", "'q", '"d', "- d", "*a", "&b", "%c", "@d"]
    labels += [
        "x" * 200 + " y" * 60,
        "😀 emoji",
        "tab\there",
        "中文 标签",
        "bell\x07",
        "[a]",
        "{b}",
        "?",
        "!t",
        "~",
    ]
    id_map = {i * 3 + 1: lb for i, lb in enumerate(labels + labels[:4])}  # repeated labels, gaps in ids
    for labels_of in (id_map, {0: "line\nbreak", 2: "c"}, {}):
        text = dump_id_map(labels_of, "IP", "HNSW32")
        whole = {"id_map": labels_of, "metric_type": "IP", "index_type": "HNSW32"}
        assert text == _yaml_text(whole) and yaml.safe_load(text) == whole


def test_an_unchanged_folder_loads_without_parsing_its_yaml(saved, monkeypatch):
    import paddlex_feat.retrieval.folder as folder_module

    parsed = []
    original = folder_module.read_id_map
    monkeypatch.setattr(folder_module, "read_id_map", lambda p: parsed.append(p) or original(p))
    assert [r.label for r in load_index(saved).items()] == ["a b", "c", "d", "e", "f", "g"]
    assert parsed == []  # both files hash as meta.json recorded: the labels come from items.jsonl
    # items.jsonl edited by hand (id_map.yaml not): the hashes differ, the full check runs and refuses it
    items = (saved / "items.jsonl").read_text(encoding="utf-8")
    (saved / "items.jsonl").write_text(items.replace('"label": "c"', '"label": "x"'), encoding="utf-8")
    with pytest.raises(GalleryIndexError, match="disagree on ids or labels"):
        load_index(saved)
    assert len(parsed) == 1
