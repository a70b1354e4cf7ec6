"""check_dataset on good data: result keys and counts, demo images, histogram, warnings, limits."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from paddlex_feat.data.check import check_dataset, decode_images, find_dataset_root

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "dataset" / "demo"
REFERENCE_KEYS = {
    "done_flag",
    "check_pass",
    "attributes",
    "analysis",
    "dataset_path",
    "show_type",
    "dataset_type",
}
ATTRIBUTE_KEYS = {
    f"{split}_{key}" for split in ("train", "gallery", "query") for key in ("samples", "sample_paths")
}


def test_demo_dataset_passes_with_true_counts_and_readable_pictures(run_check, tmp_path):
    rc, result = run_check(DEMO)
    assert rc == 0
    assert set(result) == REFERENCE_KEYS
    assert set(result["attributes"]) == ATTRIBUTE_KEYS
    assert result["done_flag"] is True and result["check_pass"] is True
    assert (result["show_type"], result["dataset_type"], result["dataset_path"]) == (
        "image",
        "ShiTuRecDataset",
        "demo",
    )
    attrs = result["attributes"]
    assert (attrs["train_samples"], attrs["gallery_samples"], attrs["query_samples"]) == (1070, 185, 185)
    output = tmp_path / "out"
    for split in ("train", "gallery", "query"):
        paths = attrs[f"{split}_sample_paths"]
        assert len(paths) == 10
        assert len(set(paths)) == 10
        for rel in paths:
            assert rel.startswith("check_dataset/demo_img/")
            image = cv2.imread(str(output / rel))
            assert image is not None and min(image.shape[:2]) >= 224  # enlarged so the label is legible
    analysis = result["analysis"]
    assert analysis["histogram"] == "check_dataset/histogram.png"
    histogram = cv2.imread(str(output / analysis["histogram"]))
    assert histogram is not None and histogram.shape[1] > histogram.shape[0]
    assert analysis["num_classes"] == {"train": 300, "gallery": 100, "query": 100}
    assert analysis["images_per_class"]["train"]["min"] >= 1
    assert analysis["decode_failures"] == 0
    assert analysis["unique_images"] == 1440


def test_demo_image_has_label_drawn(run_check, tmp_path, make_dataset):
    root = make_dataset()
    rc, result = run_check(root)
    assert rc == 0
    rel = result["attributes"]["gallery_sample_paths"][0]
    drawn = cv2.imread(str(tmp_path / "out" / rel))
    original = cv2.imread(str(root / rel.split("/gallery/", 1)[1]))
    enlarged = cv2.resize(original, drawn.shape[1::-1])
    corner_diff = abs(drawn[:20, :20].astype(int) - enlarged[:20, :20].astype(int)).mean()
    far_diff = abs(drawn[-20:, -20:].astype(int) - enlarged[-20:, -20:].astype(int)).mean()
    assert corner_diff > 30 > far_diff  # label box in the corner, the rest untouched


def test_same_file_name_in_two_folders_gives_two_demo_images(run_check, make_dataset, tmp_path):
    lists = {
        "train": ["images/a/x.jpg 0", "images/b/x.jpg 1"],
        "gallery": ["images/g/x.jpg 2"],
        "query": ["images/q/x.jpg 2"],
    }
    rc, result = run_check(make_dataset(lists))
    assert rc == 0
    paths = result["attributes"]["train_sample_paths"]
    assert sorted(paths) == [
        "check_dataset/demo_img/train/images/a/x.jpg",
        "check_dataset/demo_img/train/images/b/x.jpg",
    ]
    assert all((tmp_path / "out" / p).is_file() for p in paths)


def test_crlf_bom_blank_lines_and_missing_final_newline_are_accepted(run_check, make_dataset):
    lists = {
        "train": "\ufeffimages/t0.jpg 0\r\n\r\nimages/t1.jpg 1\r\n   \r\nimages/t2.jpg 1",
        "gallery": "images/g0.jpg 2\r\n",
        "query": "\ufeffimages/q0.jpg 2",
    }
    rc, result = run_check(make_dataset(lists))
    assert rc == 0, result
    assert result["attributes"]["train_samples"] == 3
    assert result["analysis"]["num_classes"]["train"] == 2  # '1\r' did not become a separate label


def test_third_column_unique_id_is_allowed(run_check, make_dataset):
    lists = default_with(gallery=["images/g3.jpg 3 id-1", "images/g4.jpg 4 id-2"])
    rc, result = run_check(make_dataset(lists))
    assert rc == 0, result
    assert result["attributes"]["gallery_samples"] == 2


def test_duplicate_lines_and_unscorable_queries_warn_but_pass(run_check, make_dataset):
    lists = default_with(
        train=["images/t0.jpg 0", "images/t1.jpg 1", "images/t0.jpg 0", "images/g3.jpg 3"],
        gallery=["images/g3.jpg 3"],
        query=["images/q3.jpg 3", "images/q9.jpg 9"],
    )
    rc, result = run_check(make_dataset(lists))
    assert rc == 0
    warnings = result["analysis"]["warnings"]
    assert any(w.startswith("train.txt:3: duplicate of line 1") for w in warnings)
    assert any("1 query class(es) have no gallery image (e.g. 9)" in w for w in warnings)
    assert result["analysis"]["query_classes_without_gallery"] == 1
    assert any(w.startswith("train.txt:4: 1 training image(s) are also in gallery/query") for w in warnings)
    assert result["analysis"]["warning_count"] == len(warnings) == 3


def test_errors_are_all_collected_but_only_twenty_reported(run_check, make_dataset):
    train = [f"images/t{i}.jpg {i % 2}" for i in range(30)]
    lists = default_with(train=train)
    root = make_dataset(lists, skip_images=tuple(f"images/t{i}.jpg" for i in range(25)))
    rc, result = run_check(root)
    assert rc == 1
    assert result["check_pass"] is False and result["done_flag"] is False
    assert result["error_count"] == 25
    assert len(result["errors"]) == 20
    assert result["errors"][0].startswith("train.txt:1: image images/t0.jpg not found")
    assert "... and 5 more" in result["err_msg"]


def test_parallel_and_serial_decoding_agree(make_dataset, jpeg_writer):
    root = make_dataset()
    (root / "images" / "bad.jpg").write_bytes(b"not an image")
    paths = sorted(str(p) for p in (root / "images").rglob("*.jpg"))
    serial = decode_images(paths, num_workers=1)
    parallel = decode_images(paths, num_workers=4)
    assert serial == parallel
    assert sum(r.error is not None for r in parallel) == 1


def test_dataset_root_is_found_one_folder_down(make_dataset):
    root = make_dataset()
    assert find_dataset_root(root.parent) == root
    assert check_dataset(root).passed


def default_with(**overrides: list[str]) -> dict[str, list[str]]:
    """Small valid lists with some replaced."""
    lists = {
        "train": ["images/t0.jpg 0", "images/t1.jpg 1"],
        "gallery": ["images/g3.jpg 3"],
        "query": ["images/q3.jpg 3"],
    }
    lists.update(overrides)
    return lists


def test_output_folder_inside_the_searched_folder_is_not_taken_for_a_dataset(
    run_check, make_dataset, tmp_path
):
    make_dataset()
    # The first run writes demo copies under out/check_dataset/demo_img/*/images/; the second must not see them.
    assert run_check(tmp_path)[0] == 0
    rc, result = run_check(tmp_path)
    assert rc == 0, result.get("err_msg")


def test_demo_images_skip_a_file_removed_after_the_check(tmp_path: Path) -> None:
    # check_dataset decodes everything first; a file that disappears before the demo images are
    # drawn must be skipped, not crash the run
    from paddlex_feat.data.lists import ListEntry
    from paddlex_feat.data.visualize import save_demo_images

    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.full((8, 8, 3), 90, np.uint8))
    entries = {"train": [ListEntry("images/a.jpg", 0, 1), ListEntry("images/gone.jpg", 1, 2)]}
    saved = save_demo_images(tmp_path, entries, tmp_path / "check", tmp_path)
    assert [Path(p).name for p in saved["train"]] == ["a.jpg"]
