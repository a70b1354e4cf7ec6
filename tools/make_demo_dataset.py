"""Rebuild dataset/demo/ from the shared emoji-vendors set, reproducibly (seeded).

    python tools/make_demo_dataset.py --src ../shared/data/emoji-vendors --dst dataset/demo

Train: N_TRAIN classes drawn from the shared training classes (both vendors, every variant).
Gallery/query: N_EVAL unseen classes drawn from the shared eval classes, gallery = Twitter,
query = Google. Labels are renumbered densely: train 0..N_TRAIN-1, then the eval classes.
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections import defaultdict
from pathlib import Path

ATTRIBUTION = """# Demo dataset (subset of emoji-vendors)

A small ShiTuRecDataset made by `tools/make_demo_dataset.py` (seed {seed}) from the shared
emoji-vendors set: the same emoji drawn by two vendors, one class per emoji, 64x64 RGB JPEG.

- train: {n_train} classes, {train_images} images (Google and Twitter drawings)
- gallery: {n_eval} classes unseen in training, {gallery_images} images (Twitter drawings)
- query: the same {n_eval} classes, {query_images} images (Google drawings)

Labels are renumbered 0..{last_label}; `classes.tsv` maps each to its emoji.

## Licences and attribution
Source: the npm packages `emoji-datasource-google@16.0.0` and `emoji-datasource-twitter@16.0.0`.
- Google/Noto emoji images (`images/google/`): Apache License 2.0.
- Twemoji images (`images/twitter/`): "Twemoji graphics by Twitter, Inc and other
  contributors, licensed under CC-BY 4.0".
"""


def read_list(path: Path) -> list[tuple[str, int]]:
    """Read `relpath label` lines."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rel, label = line.split()[:2]
            rows.append((rel, int(label)))
    return rows


def main() -> None:
    """Build the demo set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="../shared/data/emoji-vendors")
    parser.add_argument("--dst", default="dataset/demo")
    parser.add_argument("--train-classes", type=int, default=300)
    parser.add_argument("--eval-classes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    src, dst = Path(args.src), Path(args.dst)
    rng = random.Random(args.seed)

    by_class: dict[str, dict[int, list[str]]] = {}
    for split in ("train", "gallery", "query"):
        groups: dict[int, list[str]] = defaultdict(list)
        for rel, label in read_list(src / f"{split}.txt"):
            groups[label].append(rel)
        by_class[split] = groups

    train_classes = sorted(rng.sample(sorted(by_class["train"]), args.train_classes))
    eval_pool = sorted(set(by_class["gallery"]) & set(by_class["query"]))
    eval_classes = sorted(rng.sample(eval_pool, args.eval_classes))
    new_label = {old: i for i, old in enumerate(train_classes + eval_classes)}

    if dst.exists():
        shutil.rmtree(dst)
    (dst / "images").mkdir(parents=True)
    counts = {}
    for split, classes in (("train", train_classes), ("gallery", eval_classes), ("query", eval_classes)):
        lines = []
        for old in classes:
            for rel in sorted(by_class[split][old]):
                target = dst / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, target)
                lines.append(f"{rel} {new_label[old]}\n")
        (dst / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
        counts[split] = len(lines)

    header, *rows = (src / "classes.tsv").read_text(encoding="utf-8").splitlines()
    info = {int(r.split("\t", 1)[0]): r.split("\t", 1)[1] for r in rows}
    tsv = [header.replace("class_id", "class_id\tsource_class_id", 1)]
    tsv += [f"{new}\t{old}\t{info[old]}" for old, new in new_label.items()]
    (dst / "classes.tsv").write_text("\n".join(tsv) + "\n", encoding="utf-8")
    (dst / "README.md").write_text(
        ATTRIBUTION.format(
            seed=args.seed,
            n_train=len(train_classes),
            n_eval=len(eval_classes),
            train_images=counts["train"],
            gallery_images=counts["gallery"],
            query_images=counts["query"],
            last_label=len(new_label) - 1,
        ),
        encoding="utf-8",
    )
    print(f"Wrote {dst}: {counts} images, {len(new_label)} classes")


if __name__ == "__main__":
    main()
