"""Re-split train/gallery/query: seeded, optionally by class, atomic, with the originals kept as .bak.

Every line of the three lists goes to exactly one list; nothing is dropped or duplicated. Nothing
on disk changes until every input has been validated.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

from ..utils.errors import ConfigError, DatasetError
from ..utils.io import atomic_write_many, backup_once
from ..utils.logger import logger
from .lists import LIST_NAMES, MAX_REPORTED, bounded_lines, format_lines, parse_list, read_lines

PERCENT_KEYS = ("train_percent", "gallery_percent", "query_percent")


def validate_percents(train: int | None, gallery: int | None, query: int | None) -> tuple[int, int, int]:
    """Integers > 0 that sum to 100, or a ConfigError naming the keys."""
    values = dict(zip(PERCENT_KEYS, (train, gallery, query)))
    given = ", ".join(f"{k}={v}" for k, v in values.items())
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ConfigError(
            f"CheckDataset.split.enable=True needs {', '.join('CheckDataset.split.' + k for k in missing)} "
            f"(got {given}). Give three integers > 0 that sum to 100, e.g. 70 20 10."
        )
    bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v <= 0]
    if bad:
        raise ConfigError(
            f"CheckDataset.split.{bad[0]} must be an integer > 0 (got {given}); every list needs images. "
            "Give three integers > 0 that sum to 100, e.g. 70 20 10."
        )
    total = train + gallery + query  # type: ignore[operator]
    if total != 100:
        raise ConfigError(
            f"CheckDataset.split percents sum to {total}, not 100 ({given}). "
            "Give three integers > 0 that sum to 100, e.g. 70 20 10."
        )
    return train, gallery, query  # type: ignore[return-value]


def _label_of(line: str) -> int:
    return int(line.split()[1])


def assign_random(lines: list[str], percents: tuple[int, int, int], seed: int) -> dict[str, list[str]]:
    """Shuffle the sorted lines with ``seed`` and cut them by percent (the reference's rule, seeded)."""
    pool = sorted(lines)  # sorting first makes the result independent of the lists' current order
    random.Random(seed).shuffle(pool)
    train_end = round(len(pool) * percents[0] / 100)
    gallery_end = train_end + round(len(pool) * percents[1] / 100)
    return {
        "train": sorted(pool[:train_end]),
        "gallery": sorted(pool[train_end:gallery_end]),
        "query": sorted(pool[gallery_end:]),
    }


def assign_by_class(lines: list[str], percents: tuple[int, int, int], seed: int) -> dict[str, list[str]]:
    """Whole classes to train; the other classes shared by gallery and query, so every query can score.

    Train classes are disjoint from gallery/query classes (the open-set protocol of retrieval
    benchmarks and of the demo data). Within each evaluation class, images are divided
    gallery:query by their percents, keeping at least one gallery image per class.
    """
    rng = random.Random(seed)
    by_label: dict[int, list[str]] = defaultdict(list)
    for line in sorted(lines):
        by_label[_label_of(line)].append(line)
    labels = sorted(by_label)
    rng.shuffle(labels)
    target_train = round(len(lines) * percents[0] / 100)
    out: dict[str, list[str]] = {name: [] for name in LIST_NAMES}
    query_share = percents[2] / (percents[1] + percents[2])
    for i, label in enumerate(labels):
        members = by_label[label]
        is_last = i == len(labels) - 1
        if len(out["train"]) < target_train and not is_last:
            out["train"].extend(members)
            continue
        rng.shuffle(members)
        n_query = 0 if len(members) == 1 else min(len(members) - 1, max(1, round(len(members) * query_share)))
        out["query"].extend(members[:n_query])
        out["gallery"].extend(members[n_query:])
    return {name: sorted(split_lines) for name, split_lines in out.items()}


def _pool_lines(root: Path) -> tuple[list[str], list[Path]]:
    """Lines of the lists that exist, after checking they parse (so nothing is split that is broken)."""
    present = [root / f"{name}.txt" for name in LIST_NAMES if (root / f"{name}.txt").is_file()]
    if not present:
        raise DatasetError(
            f"Nothing to split: none of train.txt, gallery.txt, query.txt exists in {root}. "
            "Create at least one list with lines 'images/xxx.jpg label'."
        )
    errors = []
    for path in present:
        _, problems = parse_list(path)
        errors.extend(str(p) for p in problems if p.severity == "error")
    if errors:
        raise DatasetError(
            f"Cannot split: the lists have {len(errors)} error(s); nothing was changed.\n{bounded_lines(errors)}\n"
            "Fix these lines and run again.",
            details={"errors": errors[:MAX_REPORTED], "error_count": len(errors)},
        )
    lines = [line for path in present for line in read_lines(path)]
    return lines, present


def write_lists(root: str | os.PathLike, lists: dict[str, list[str]]) -> None:
    """Back up each existing list once (``*.bak``), then replace the lists all or none.

    On any error (a full disk at any point) the lists are unchanged and the backups this call made
    are removed again, so nothing on disk changes.
    """
    root = Path(root)
    made: list[Path] = []
    try:
        for name in lists:
            had_backup = (root / f"{name}.txt.bak").exists()
            bak = backup_once(root / f"{name}.txt")
            if bak is not None and not had_backup:
                made.append(bak)
        atomic_write_many(
            {root / f"{name}.txt": format_lines(lines).encode("utf-8") for name, lines in lists.items()}
        )
    except BaseException:
        for bak in made:
            bak.unlink(missing_ok=True)
        raise
    for bak in made:
        logger.info(f"Original {bak.name[: -len('.bak')]} kept as {bak}")


def split_dataset(
    root: str | os.PathLike,
    train_percent: int | None,
    gallery_percent: int | None,
    query_percent: int | None,
    seed: int = 0,
    by_class: bool = True,
) -> dict:
    """Pool the three lists and re-split them; returns the new sizes. Nothing changes on error."""
    percents = validate_percents(train_percent, gallery_percent, query_percent)
    root = Path(root)
    lines, _ = _pool_lines(root)
    lists = assign_lists(lines, percents, seed, by_class, what="split")
    write_lists(root, lists)
    summary = {name: len(lines) for name, lines in lists.items()}
    logger.info(f"Split {len(lines)} lines of {root} into {summary} (seed {seed}, by_class={by_class})")
    return {**summary, "percents": list(percents), "seed": seed, "by_class": by_class}


def assign_lists(
    lines: list[str], percents: tuple[int, int, int], seed: int, by_class: bool, what: str
) -> dict[str, list[str]]:
    """Split ``lines`` and refuse a result with an empty list, before anything is written."""
    assign = assign_by_class if by_class else assign_random
    lists = assign(lines, percents, seed)
    empty = [name for name, split_lines in lists.items() if not split_lines]
    if empty:
        hint = (
            " With by_class=True, gallery and query need classes with 2+ images outside train; "
            "set CheckDataset.split.by_class=False or add images."
            if by_class
            else " Add images or raise that percent."
        )
        raise DatasetError(
            f"The {what} of {len(lines)} lines would leave {', '.join(n + '.txt' for n in empty)} empty; "
            f"nothing was changed.{hint}"
        )
    return lists
