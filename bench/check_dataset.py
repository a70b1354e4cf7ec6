"""Time check_dataset's validation on a 50k-image list made by repeating the shared emoji data.

Usage: .venv/bin/python bench/check_dataset.py [--data ../shared/data/emoji-vendors] [--images 50000]

Builds a temporary ShiTuRecDataset whose images/ holds N symlinked copies of the source images/
folder, so every line names a distinct path and every image is really read and decoded. Compares,
in one run: the reference's level of checking (the file exists), our serial decode (1 thread) and
our parallel decode (the default thread count). Files are in the page cache after the warm-up, so
this measures parsing + decoding, not the disk.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paths import bench_dataset  # noqa: E402

from paddlex_feat.data.check import check_dataset, default_num_workers  # noqa: E402
from paddlex_feat.data.lists import parse_list  # noqa: E402


def build_dataset(source: Path, target: Path, n_images: int) -> int:
    """train.txt with ``n_images`` distinct paths; small gallery/query; returns the line count."""
    src_lines = [ln for ln in (source / "all.txt").read_text().splitlines() if ln.strip()]
    if not src_lines:
        src_lines = [
            ln for n in ("train", "gallery", "query") for ln in (source / f"{n}.txt").read_text().splitlines()
        ]
    (target / "images").mkdir(parents=True)
    copies = -(-n_images // len(src_lines))
    lines = []
    for k in range(copies):
        (target / "images" / f"rep{k}").symlink_to(source / "images", target_is_directory=True)
        for ln in src_lines:
            rel, label = ln.split()[:2]
            lines.append(f"images/rep{k}/{rel.split('/', 1)[1]} {label}")
    lines = lines[:n_images]
    (target / "train.txt").write_text("\n".join(lines) + "\n")
    for name in ("gallery", "query"):
        (target / f"{name}.txt").write_text(
            (source / f"{name}.txt").read_text().replace("images/", "images/rep0/")
        )
    return len(lines)


def exists_only(root: Path) -> int:
    """The reference's check: split each line and test that the file exists (no decoding)."""
    count = 0
    for name in ("train", "gallery", "query"):
        entries, _ = parse_list(root / f"{name}.txt")
        count += sum(os.path.exists(root / e.path) for e in entries)
    return count


def main() -> None:
    """Build the dataset, run the three variants, print images/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(bench_dataset()), help="env BENCH_DATASET")
    parser.add_argument("--images", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_check_") as tmp:
        root = Path(tmp) / "ds"
        n_train = build_dataset(Path(args.data), root, args.images)
        exists_only(root)  # warm the page cache and the dentry cache
        timings = {}
        t0 = time.perf_counter()
        n_checked = exists_only(root)
        timings["exists only (reference level)"] = (time.perf_counter() - t0, n_checked)
        variants = (("decode, 1 thread", 1), (f"decode, {default_num_workers()} threads", None))
        # Twice each, alternating, best of two: the machine is shared, so one slow run is noise.
        for label, workers in variants + variants:
            t0 = time.perf_counter()
            report = check_dataset(root, num_workers=workers)
            elapsed = time.perf_counter() - t0
            assert report.passed, report.errors[:3]
            best = timings.get(label, (float("inf"), 0))[0]
            timings[label] = (min(best, elapsed), report.unique_images)
        print(f"\n{n_train} train lines, {report.unique_images} distinct images, cpu_count={os.cpu_count()}")
        serial = timings["decode, 1 thread"][0]
        for label, (seconds, n) in timings.items():
            print(
                f"{label:32s} {seconds:7.2f} s  {n / seconds:9.0f} images/s  x{serial / seconds:.2f} vs 1 thread"
            )


if __name__ == "__main__":
    main()
