"""Gallery input: list files (labels with spaces, label maps), folders, Python lists, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from retrieval_helpers import write_image

from paddlex_feat.retrieval.gallery import content_hash, read_gallery, read_label_map
from paddlex_feat.utils.errors import DatasetError, UsageError


def test_list_labels_keep_their_spaces_and_paths_resolve_beside_the_list(gallery):
    entries = read_gallery(gallery)
    assert len(entries) == 12
    assert entries[0].label == "Coca-Cola 330 ml" and entries[3].label == "Pepsi max 1.5 l"
    assert entries[0].path == str(gallery.parent / "images" / "p00.png")
    assert entries[5].where == f"{gallery}:6"


def test_numeric_labels_become_names_through_label_dict_beside_the_list(tmp_path):
    write_image(tmp_path / "a.png", 1)
    (tmp_path / "g.txt").write_text("a.png 3\n")
    (tmp_path / "label_dict.txt").write_text("3 Red Bull 250 ml\n")
    assert read_gallery(tmp_path / "g.txt")[0].label == "Red Bull 250 ml"


def test_an_explicit_label_map_wins_and_an_unmapped_number_is_an_error(tmp_path):
    write_image(tmp_path / "a.png", 1)
    (tmp_path / "g.txt").write_text("a.png 3\na.png 4\n")
    (tmp_path / "names.txt").write_text("3 three\n")
    with pytest.raises(DatasetError, match=r"g.txt:2: label 4 is not in the label map"):
        read_gallery(tmp_path / "g.txt", label_map=tmp_path / "names.txt")


def test_bad_label_map_lines_are_listed_with_their_line(tmp_path):
    (tmp_path / "m.txt").write_text("0 zero\nnot-a-number x\n0 again\n")
    with pytest.raises(DatasetError) as err:
        read_label_map(tmp_path / "m.txt")
    assert "m.txt:2" in str(err.value) and "m.txt:3: number 0 appears twice" in str(err.value)


def test_a_line_without_label_names_file_and_line(tmp_path):
    (tmp_path / "g.txt").write_text("a.png label\nb.png\n")
    with pytest.raises(DatasetError, match=r"g.txt:2: expected 'path label'"):
        read_gallery(tmp_path / "g.txt")


def test_empty_list_and_missing_gallery_are_errors(tmp_path):
    (tmp_path / "g.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="is empty"):
        read_gallery(tmp_path / "g.txt")
    with pytest.raises(DatasetError, match="does not exist"):
        read_gallery(tmp_path / "nope.txt")


def test_folder_subfolders_are_labels_and_loose_images_are_refused(tmp_path):
    write_image(tmp_path / "Coca Cola" / "1.png", 1)
    write_image(tmp_path / "Coca Cola" / "deep" / "2.png", 2)
    write_image(tmp_path / "Sprite" / "3.png", 3)
    entries = read_gallery(tmp_path)
    assert [e.label for e in entries] == ["Coca Cola", "Coca Cola", "Sprite"]
    write_image(tmp_path / "loose.png", 4)
    with pytest.raises(DatasetError, match="outside any label sub-folder"):
        read_gallery(tmp_path)


def test_python_lists_need_one_label_per_image():
    img = np.zeros((8, 8, 3), np.uint8)
    entries = read_gallery([img, "x.jpg"], labels=["black", "x"])
    assert entries[0].path is None and entries[1].path == "x.jpg"
    with pytest.raises(UsageError, match="2 image"):
        read_gallery([img, "x.jpg"], labels=["one"])
    with pytest.raises(UsageError, match="labels\\[0\\]"):
        read_gallery([img], labels=[""])


def test_content_hash_follows_the_bytes_not_the_name(tmp_path):
    a = write_image(tmp_path / "a.png", 1)
    b = tmp_path / "b.png"
    b.write_bytes(a.read_bytes())
    ea, eb = read_gallery(([str(a), str(b)], ["x", "y"]))
    assert content_hash(ea) == content_hash(eb)
    write_image(b, 2)
    assert content_hash(ea) != content_hash(read_gallery(([str(b)], ["y"]))[0])
