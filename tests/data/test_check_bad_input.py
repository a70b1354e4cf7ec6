"""Bad input, one test each: exit code 1, a message naming the file and line, nothing changed on disk."""

from __future__ import annotations

import pytest


def small_lists(**overrides: list[str] | str | None) -> dict:
    lists: dict = {
        "train": ["images/t0.jpg 0", "images/t1.jpg 1", "images/t2.jpg 1"],
        "gallery": ["images/g3.jpg 3"],
        "query": ["images/q3.jpg 3"],
    }
    lists.update(overrides)
    return lists


def assert_usage_error(rc: int, result: dict, *fragments: str) -> None:
    """Exit 2, no result file written (nothing ran), every fragment in the log."""
    assert rc == 2 and set(result) == {"log"}
    for fragment in fragments:
        assert fragment in result["log"], (fragment, result["log"])


def assert_failed(rc: int, result: dict, *fragments: str) -> None:
    """Exit 1, done_flag/check_pass false, every fragment in the message, the first in the errors."""
    assert rc == 1
    assert result["done_flag"] is False
    assert result["check_pass"] is False
    assert result["error_count"] >= 1 and result["errors"]
    for fragment in fragments:
        assert fragment in result["err_msg"], (fragment, result["err_msg"])
    assert any(fragments[0] in e for e in result["errors"]), (fragments[0], result["errors"])


def test_missing_dataset_dir(run_check, tmp_path):
    rc, result = run_check(tmp_path / "nope")
    assert_failed(rc, result, "Global.dataset_dir=", "does not exist")
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("missing", ["train", "gallery", "query"])
def test_each_missing_list(run_check, make_dataset, disk_snapshot, missing):
    root = make_dataset(small_lists(**{missing: None}))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, f"{missing}.txt: missing")
    assert disk_snapshot(root) == before


def test_no_images_folder(run_check, tmp_path, disk_snapshot):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "train.txt").write_text("pics/a.jpg 0\n")
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "No 'images/' folder found")
    assert disk_snapshot(root) == before


def test_several_images_folders(run_check, make_dataset, tmp_path, disk_snapshot):
    roots = [make_dataset(name="a"), make_dataset(name="b")]
    before = [disk_snapshot(r) for r in roots]
    rc, result = run_check(tmp_path)
    assert_failed(rc, result, "Found 2 'images/' folders", "a/images", "b/images")
    assert [disk_snapshot(r) for r in roots] == before


def test_line_with_one_field(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(train=["images/t0.jpg 0", "images/t1.jpg"]))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "train.txt:2: expected 'path label'", "got 1 field(s)")
    assert disk_snapshot(root) == before


def test_line_with_four_fields(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(query=["images/q3.jpg 3 id extra"]))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "query.txt:1: expected 'path label'", "got 4 field(s)")
    assert disk_snapshot(root) == before


def test_third_column_that_is_not_unique(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(gallery=["images/g3.jpg 3 google", "images/g4.jpg 3 google"]))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "gallery.txt:2: third column 'google' repeats line 1")
    assert disk_snapshot(root) == before


def test_non_integer_label(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(train=["images/t0.jpg 0", "images/t1.jpg cat"]))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "train.txt:2: label 'cat' is not an integer")
    assert disk_snapshot(root) == before


def test_missing_image(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(), skip_images=("images/g3.jpg",))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "gallery.txt:1: image images/g3.jpg not found")
    assert disk_snapshot(root) == before


def test_zero_byte_image(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists())
    (root / "images" / "t1.jpg").write_bytes(b"")
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "train.txt:2: image images/t1.jpg is an empty (0-byte) file")
    assert result["decode_failures"] == 1
    assert disk_snapshot(root) == before


def test_truncated_jpeg(run_check, make_dataset, disk_snapshot, jpeg_writer):
    root = make_dataset(small_lists())
    image = root / "images" / "q3.jpg"
    jpeg_writer(image, seed=7, size=64)
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "query.txt:1: image images/q3.jpg cannot be decoded: truncated")
    assert disk_snapshot(root) == before


@pytest.mark.parametrize("bad_path", ["../outside.jpg", "images/../../outside.jpg", "/etc/passwd"])
def test_path_escaping_the_root(run_check, make_dataset, disk_snapshot, bad_path):
    root = make_dataset(small_lists(train=["images/t0.jpg 0", f"{bad_path} 1"]))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, f"train.txt:2: path '{bad_path}' escapes the dataset folder")
    assert disk_snapshot(root) == before


def test_empty_list_file(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(query="\n\n"))
    before = disk_snapshot(root)
    rc, result = run_check(root)
    assert_failed(rc, result, "query.txt: is empty")
    assert disk_snapshot(root) == before


@pytest.mark.parametrize(
    ("percents", "fragment"),
    [
        ((70, 20, 20), "percents sum to 110, not 100"),
        ((80, 20, 0), "query_percent must be an integer > 0"),
        ((70, 30, None), "needs CheckDataset.split.query_percent"),
    ],
)
def test_bad_split_percents_change_nothing(run_check, make_dataset, disk_snapshot, percents, fragment):
    root = make_dataset(small_lists())
    before = disk_snapshot(root)
    keys = ("train_percent", "gallery_percent", "query_percent")
    rc, result = run_check(
        root,
        "CheckDataset.split.enable=True",
        *[f"CheckDataset.split.{k}={'null' if v is None else v}" for k, v in zip(keys, percents)],
    )
    assert_usage_error(rc, result, fragment)
    assert disk_snapshot(root) == before  # no .bak, no rewritten list


def test_split_of_malformed_lists_changes_nothing(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists(train=["images/t0.jpg 0", "images/t1.jpg x"]))
    before = disk_snapshot(root)
    rc, result = run_check(root, "CheckDataset.split.enable=True", *percent_overrides(70, 20, 10))
    assert_failed(rc, result, "train.txt:2: label 'x' is not an integer", "nothing was changed")
    assert disk_snapshot(root) == before


def test_convert_without_label_txt(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists())
    (root / "annotations").mkdir()
    (root / "annotations" / "t0.json").write_text('{"imagePath": "../images/t0.jpg", "flags": {"cat": true}}')
    before = disk_snapshot(root)
    rc, result = run_check(
        root, "CheckDataset.convert.enable=True", "CheckDataset.convert.src_dataset_type=LabelMe"
    )
    assert_failed(rc, result, "missing label.txt")
    assert disk_snapshot(root) == before


def test_convert_from_unsupported_type(run_check, make_dataset, disk_snapshot):
    root = make_dataset(small_lists())
    before = disk_snapshot(root)
    rc, result = run_check(
        root, "CheckDataset.convert.enable=True", "CheckDataset.convert.src_dataset_type=COCO"
    )
    assert_usage_error(rc, result, "src_dataset_type='COCO' is not supported", "Supported: LabelMe")
    assert disk_snapshot(root) == before


def percent_overrides(train: int, gallery: int, query: int) -> list[str]:
    return [
        f"CheckDataset.split.train_percent={train}",
        f"CheckDataset.split.gallery_percent={gallery}",
        f"CheckDataset.split.query_percent={query}",
    ]
