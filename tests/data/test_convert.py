"""LabelMe -> ShiTuRecDataset: Windows paths, missing and repeated images, determinism, .bak files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from paddlex_feat.data.convert import convert_dataset, resolve_image_path, resolve_src_type
from paddlex_feat.utils.errors import ConfigError, DatasetError

CONVERT = ("CheckDataset.convert.enable=True", "CheckDataset.convert.src_dataset_type=LabelMe")
CLASSES = ["cat", "dog", "bird", "fish"]


def make_labelme(root: Path, jpeg_writer, n_per_class: int = 5) -> Path:
    """label.txt, one annotation per image (Windows-style imagePath on odd ones), images/."""
    (root / "annotations").mkdir(parents=True)
    (root / "label.txt").write_text("\n".join(CLASSES) + "\n\n", encoding="utf-8")
    for c, name in enumerate(CLASSES):
        for i in range(n_per_class):
            stem = f"{name}_{i}"
            jpeg_writer(root / "images" / f"{stem}.jpg", seed=10 * c + i)
            image_path = f"..\\images\\{stem}.jpg" if i % 2 else f"../images/{stem}.jpg"
            flags = {other: other == name for other in CLASSES}
            (root / "annotations" / f"{stem}.json").write_text(
                json.dumps({"imagePath": image_path, "flags": flags})
            )
    return root


def lines_of(root: Path) -> Counter:
    return Counter(
        line for n in ("train", "gallery", "query") for line in (root / f"{n}.txt").read_text().splitlines()
    )


def test_labelme_conversion_then_check_passes(run_check, tmp_path, jpeg_writer):
    root = make_labelme(tmp_path / "lm", jpeg_writer)
    rc, result = run_check(root, *CONVERT)
    assert rc == 0, result
    converted = lines_of(root)
    assert sum(converted.values()) == 20
    assert converted["images/dog_1.jpg 1"] == 1  # Windows-style imagePath resolved
    info = result["analysis"]["convert"]
    assert info["train"] + info["gallery"] + info["query"] == 20
    labels = {
        n: {int(line.split()[1]) for line in (root / f"{n}.txt").read_text().splitlines()}
        for n in ("train", "gallery", "query")
    }
    assert labels["query"] <= labels["gallery"]


def test_conversion_is_deterministic_and_follows_50_30_20(tmp_path, jpeg_writer):
    first = make_labelme(tmp_path / "a", jpeg_writer, n_per_class=10)
    second = tmp_path / "b"
    shutil.copytree(first, second)
    convert_dataset("LabelMe", first, seed=0, by_class=False)
    summary = convert_dataset("labelme", second, seed=0, by_class=False)
    assert (summary["train"], summary["gallery"], summary["query"]) == (20, 12, 8)
    for name in ("train", "gallery", "query"):
        assert (first / f"{name}.txt").read_bytes() == (second / f"{name}.txt").read_bytes()


def test_missing_and_repeated_images_are_skipped_with_warnings(tmp_path, jpeg_writer):
    root = make_labelme(tmp_path / "lm", jpeg_writer)
    (root / "images" / "cat_0.jpg").unlink()
    (root / "annotations" / "copy_of_dog_0.json").write_text(
        json.dumps({"imagePath": "C:\\Users\\me\\data\\images\\dog_0.jpg", "flags": {"dog": True}})
    )
    summary = convert_dataset("LabelMe", root, seed=0, by_class=False)
    assert summary["train"] + summary["gallery"] + summary["query"] == 19
    warnings = " ".join(summary["warnings"])
    assert "cat_0.json: image '../images/cat_0.jpg' not found" in warnings
    # Files are read in sorted order, so copy_of_dog_0.json comes first and dog_0.json repeats it.
    assert (
        "dog_0.json: images/dog_0.jpg with class 'dog' already given by annotations/copy_of_dog_0.json"
        in warnings
    )
    assert lines_of(root)["images/dog_0.jpg 1"] == 1


def test_existing_lists_are_kept_as_bak(tmp_path, jpeg_writer):
    root = make_labelme(tmp_path / "lm", jpeg_writer)
    (root / "train.txt").write_text("images/old.jpg 0\n")
    convert_dataset("LabelMe", root, seed=0, by_class=False)
    assert (root / "train.txt.bak").read_text() == "images/old.jpg 0\n"
    assert not (root / "gallery.txt.bak").exists()  # nothing to keep


def test_unknown_flag_is_an_error_and_changes_nothing(tmp_path, jpeg_writer, disk_snapshot):
    root = make_labelme(tmp_path / "lm", jpeg_writer)
    (root / "annotations" / "cat_0.json").write_text(
        json.dumps({"imagePath": "../images/cat_0.jpg", "flags": {"lion": True}})
    )
    before = disk_snapshot(root)
    with pytest.raises(DatasetError, match=r"annotations/cat_0.json: flag\(s\) \['lion'\] not in label.txt"):
        convert_dataset("LabelMe", root)
    assert disk_snapshot(root) == before


def test_blank_line_inside_label_txt_is_an_error(tmp_path, jpeg_writer):
    root = make_labelme(tmp_path / "lm", jpeg_writer)
    (root / "label.txt").write_text("cat\n\ndog\n")
    with pytest.raises(DatasetError, match="label.txt:2: blank line"):
        convert_dataset("LabelMe", root)


def test_resolve_image_path_variants(tmp_path, jpeg_writer):
    jpeg_writer(tmp_path / "images" / "sub" / "x.jpg")
    jpeg_writer(tmp_path / "images" / "y.jpg")
    assert resolve_image_path(tmp_path, "annotations/x.json", "..\\images\\sub\\x.jpg") == "images/sub/x.jpg"
    assert resolve_image_path(tmp_path, "annotations/y.json", "D:\\labelme\\y.jpg") == "images/y.jpg"
    assert resolve_image_path(tmp_path, "annotations/z.json", "../images/z.jpg") is None


def test_src_type_needs_a_supported_value():
    with pytest.raises(ConfigError, match="Set it to one of: LabelMe"):
        resolve_src_type(None)
    assert resolve_src_type("labelme") == "LabelMe"
