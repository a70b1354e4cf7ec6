"""Raw-pixel retrieval baseline of a ShiTuRecDataset, the floor a trained feature model must beat.

    python bench/raw_pixel_baseline.py [--dataset dataset/demo] [--size 16]

Features are the query/gallery images resized to SIZE x SIZE (area interpolation), flattened
and mean-centred; metrics are the same recall@k/mAP code the evaluate mode uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddlex_feat.data.lists import read_list  # noqa: E402
from paddlex_feat.metrics.retrieval import retrieval_metrics  # noqa: E402


def pixels(root: Path, entries: list, size: int) -> np.ndarray:
    """[N, size*size*3] float32 raw pixels."""
    rows = [
        cv2.resize(cv2.imread(str(root / e.path)), (size, size), interpolation=cv2.INTER_AREA)
        for e in entries
    ]
    return np.stack(rows).reshape(len(rows), -1).astype(np.float32)


def main() -> None:
    """Print the raw-pixel recall@1, recall@5 and mAP."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(ROOT / "dataset" / "demo"))
    parser.add_argument("--size", type=int, default=16)
    args = parser.parse_args()
    root = Path(args.dataset)
    query, gallery = read_list(root, "query"), read_list(root, "gallery")
    q, g = pixels(root, query, args.size), pixels(root, gallery, args.size)
    mean = np.concatenate([q, g]).mean(axis=0)
    result = retrieval_metrics(q - mean, g - mean, [e.label for e in query], [e.label for e in gallery])
    print(
        f"{root} raw {args.size}x{args.size} pixels: "
        + ", ".join(f"{k} {v:.3f}" for k, v in result.metrics.items())
    )


if __name__ == "__main__":
    main()
