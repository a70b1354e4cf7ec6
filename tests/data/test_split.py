"""CheckDataset.split: seeded, by class, atomic, backed up, and no line lost or duplicated."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from paddlex_feat.data.split import split_dataset, validate_percents
from paddlex_feat.utils.errors import ConfigError

LIST_NAMES = ("train", "gallery", "query")


def many_lists(n_classes: int = 20, per_class: int = 4) -> dict[str, list[str]]:
    """Everything in train to start with, so a split must move lines to gallery and query."""
    lines = [f"images/c{c}/{i}.jpg {c}" for c in range(n_classes) for i in range(per_class)]
    return {
        "train": lines[: len(lines) // 2],
        "gallery": lines[len(lines) // 2 :],
        "query": ["images/extra.jpg 0"],
    }


def read(root: Path, name: str) -> list[str]:
    return [line for line in (root / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def all_lines(root: Path, suffix: str = "") -> Counter:
    return Counter(line.strip() for n in LIST_NAMES for line in read(root, f"{n}.txt{suffix}"))


def split_overrides(train: int, gallery: int, query: int, *extra: str) -> list[str]:
    return [
        "CheckDataset.split.enable=True",
        f"CheckDataset.split.train_percent={train}",
        f"CheckDataset.split.gallery_percent={gallery}",
        f"CheckDataset.split.query_percent={query}",
        *extra,
    ]


def test_split_then_check_keeps_every_line_exactly_once(run_check, make_dataset):
    root = make_dataset(many_lists())
    originals = {n: (root / f"{n}.txt").read_bytes() for n in LIST_NAMES}
    before = all_lines(root)
    rc, result = run_check(root, *split_overrides(70, 20, 10))
    assert rc == 0, result
    assert all_lines(root) == before  # same multiset of lines
    for name in LIST_NAMES:
        assert (root / f"{name}.txt.bak").read_bytes() == originals[name]
    split = result["analysis"]["split"]
    attrs = result["attributes"]
    assert (split["train"], split["gallery"], split["query"]) == (
        attrs["train_samples"],
        attrs["gallery_samples"],
        attrs["query_samples"],
    )
    assert sum(before.values()) == attrs["train_samples"] + attrs["gallery_samples"] + attrs["query_samples"]
    assert not list(root.glob(".*.tmp"))  # atomic writes leave no temp files


def test_by_class_keeps_gallery_and_query_in_the_same_classes(make_dataset):
    root = make_dataset(many_lists())
    split_dataset(root, 70, 20, 10, seed=3, by_class=True)
    labels = {n: {int(line.split()[1]) for line in read(root, f"{n}.txt")} for n in LIST_NAMES}
    assert labels["query"] <= labels["gallery"]  # every query can be scored
    assert not labels["train"] & labels["gallery"]  # open-set protocol: evaluation classes unseen in training
    train_share = len(read(root, "train.txt")) / 81
    assert 0.6 <= train_share <= 0.8


def test_random_split_has_the_asked_sizes(make_dataset):
    root = make_dataset(many_lists())
    summary = split_dataset(root, 70, 20, 10, seed=0, by_class=False)
    assert (summary["train"], summary["gallery"], summary["query"]) == (57, 16, 8)  # 81 lines


@pytest.mark.parametrize("by_class", [True, False])
def test_split_is_reproducible_and_seed_dependent(make_dataset, tmp_path, by_class):
    root = make_dataset(many_lists())
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    split_dataset(root, 60, 25, 15, seed=5, by_class=by_class)
    split_dataset(copy, 60, 25, 15, seed=5, by_class=by_class)
    assert all(read(root, f"{n}.txt") == read(copy, f"{n}.txt") for n in LIST_NAMES)
    split_dataset(copy, 60, 25, 15, seed=6, by_class=by_class)
    assert any(read(root, f"{n}.txt") != read(copy, f"{n}.txt") for n in LIST_NAMES)


def test_list_without_final_newline_does_not_merge_lines(make_dataset):
    root = make_dataset(
        {"train": "images/a.jpg 0\nimages/b.jpg 1", "gallery": "images/c.jpg 2", "query": None}
    )
    split_dataset(root, 40, 30, 30, seed=0, by_class=False)
    assert sorted(all_lines(root).elements()) == ["images/a.jpg 0", "images/b.jpg 1", "images/c.jpg 2"]
    assert all((root / f"{n}.txt").read_text().endswith("\n") for n in LIST_NAMES)


def test_first_backup_is_never_replaced(make_dataset):
    root = make_dataset(many_lists())
    original = (root / "train.txt").read_bytes()
    split_dataset(root, 70, 20, 10, seed=0)
    split_dataset(root, 50, 30, 20, seed=1)
    assert (root / "train.txt.bak").read_bytes() == original
    assert all_lines(root) == all_lines(root, ".bak")


@pytest.mark.parametrize(
    "percents", [(50, 50, 0), (60, 30, 20), (101, -1, 0), (None, 50, 50), (True, 49, 50)]
)
def test_validate_percents_refuses(percents):
    with pytest.raises(ConfigError, match="CheckDataset.split"):
        validate_percents(*percents)


def test_validate_percents_accepts():
    assert validate_percents(70, 20, 10) == (70, 20, 10)
