"""Pictures check_dataset writes: demo images with their label drawn on, and the histogram.

Offline only: text is rendered with the DejaVu Sans font that matplotlib ships, plots use the
Agg canvas directly (no pyplot, so no global backend state).
"""

from __future__ import annotations

import io
import os
import random
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from ..utils.image import IMAGE_EXTENSIONS, read_bgr
from ..utils.io import atomic_write_bytes
from .lists import ListEntry

DEMO_MIN_SIDE = 224  # tiny images are enlarged so the drawn label stays legible
LABEL_BG_BGR = (0, 0, 255)
LABEL_FG_BGR = (255, 255, 255)


@lru_cache(maxsize=1)
def bundled_font_path() -> str:
    """Path of matplotlib's bundled DejaVu Sans (never downloaded)."""
    return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=True)


def render_text(text: str, size_px: int) -> np.ndarray:
    """Grey-level coverage bitmap (uint8, 0..255) of ``text`` at ``size_px`` pixels."""
    font = FT2Font(bundled_font_path())
    font.set_size(size_px, 72)  # at 72 dpi one point is one pixel
    font.set_text(text, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    return np.asarray(font.get_image(), dtype=np.uint8)


def draw_label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of a BGR image, enlarged if tiny, with ``text`` on a filled box at the top left."""
    height, width = image.shape[:2]
    scale = max(1.0, DEMO_MIN_SIDE / max(1, min(height, width)))
    if scale > 1.0:
        image = cv2.resize(
            image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR
        )
    else:
        image = image.copy()
    height, width = image.shape[:2]
    size_px = max(12, min(48, round(width * 0.08)))
    glyphs = render_text(text, size_px)
    pad = max(2, size_px // 6)
    box_h = min(height, glyphs.shape[0] + 2 * pad)
    box_w = min(width, glyphs.shape[1] + 2 * pad)
    image[:box_h, :box_w] = LABEL_BG_BGR
    glyphs = glyphs[: box_h - pad, : box_w - pad]
    alpha = (glyphs.astype(np.float32) / 255.0)[..., None]
    region = image[pad : pad + glyphs.shape[0], pad : pad + glyphs.shape[1]].astype(np.float32)
    blended = region * (1.0 - alpha) + np.array(LABEL_FG_BGR, np.float32) * alpha
    image[pad : pad + glyphs.shape[0], pad : pad + glyphs.shape[1]] = blended.astype(np.uint8)
    return image


def _encode(image: np.ndarray, suffix: str) -> tuple[bytes, str]:
    """Encode as the source's format where OpenCV can, else PNG."""
    if suffix.lower() in IMAGE_EXTENSIONS:
        ok, buf = cv2.imencode(suffix.lower(), image)
        if ok:
            return buf.tobytes(), suffix
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise OSError("OpenCV could not encode a demo image as PNG")
    return buf.tobytes(), ".png"


def save_demo_images(
    root: str | os.PathLike,
    entries: dict[str, list[ListEntry]],
    check_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    per_split: int = 10,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Draw labels on up to ``per_split`` images per split; returns paths relative to ``output_dir``.

    Each copy keeps its list-relative path under ``demo_img/<split>/``, so files with the same
    name in different folders (or splits) never overwrite each other.
    """
    root, check_dir, output_dir = Path(root), Path(check_dir), Path(output_dir)
    demo_dir = check_dir / "demo_img"
    if demo_dir.is_dir():
        shutil.rmtree(demo_dir)  # our own output: stale samples from an earlier run would mislead
    rng = random.Random(seed)
    sample_paths: dict[str, list[str]] = {}
    for split, split_entries in entries.items():
        chosen = rng.sample(split_entries, min(per_split, len(split_entries)))
        sample_paths[split] = []
        for entry in chosen:
            image, _ = read_bgr(root / entry.path)
            if image is None:
                continue  # the check already decoded it; a file changed meanwhile is not worth failing on
            rel = Path(*entry.path.replace("\\", "/").split("/"))
            data, suffix = _encode(draw_label(image, str(entry.label)), rel.suffix)
            target = (demo_dir / split / rel).with_suffix(suffix)
            atomic_write_bytes(target, data)
            sample_paths[split].append(target.relative_to(output_dir).as_posix())
    return sample_paths


def count_buckets(top: int) -> list[tuple[int, int]]:
    """Ranges of images-per-class: one per value up to 12, then doubling (13-24, 25-48, ...)."""
    if top <= 12:
        return [(v, v) for v in range(1, top + 1)]
    buckets = [(v, v) for v in range(1, 9)]
    lo = 9
    while lo <= top:
        hi = 2 * lo - 2 if lo > 9 else 12
        buckets.append((lo, hi))
        lo = hi + 1
    return buckets


def plot_histogram(
    summary: dict[str, dict[str, int]],
    per_class_counts: dict[str, Sequence[int]],
    path: str | os.PathLike,
) -> None:
    """Two panels: images and classes per split (grouped, annotated bars); images-per-class spread."""
    fig = Figure(figsize=(13, 5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    bars_ax, dist_ax = fig.subplots(1, 2, width_ratios=[1, 1.3])

    splits = list(summary)
    x = np.arange(len(splits))
    width = 0.38
    images = [summary[s]["images"] for s in splits]
    classes = [summary[s]["classes"] for s in splits]
    bars_ax.bar_label(bars_ax.bar(x - width / 2, images, width, label="images"), padding=2)
    bars_ax.bar_label(bars_ax.bar(x + width / 2, classes, width, label="classes"), padding=2)
    bars_ax.set_xticks(x, splits)
    bars_ax.set_ylabel("count")
    bars_ax.set_title("Images and classes per list")
    bars_ax.margins(y=0.12)
    bars_ax.legend()

    top = max((max(c) for c in per_class_counts.values() if len(c)), default=1)
    shown = {split: counts for split, counts in per_class_counts.items() if len(counts)}

    def legend_text(split: str, counts: Sequence[int]) -> str:
        median = float(np.median(counts))
        return f"{split}: {len(counts)} classes, min {min(counts)} / median {median:g} / max {max(counts)}"

    buckets = count_buckets(top)
    x = np.arange(len(buckets))
    bar_w = 0.8 / max(1, len(shown))
    for i, (split, counts) in enumerate(shown.items()):
        arr = np.asarray(counts)
        heights = [int(((arr >= lo) & (arr <= hi)).sum()) for lo, hi in buckets]
        offset = (i - (len(shown) - 1) / 2) * bar_w
        bars = dist_ax.bar(x + offset, heights, bar_w, label=legend_text(split, counts))
        dist_ax.bar_label(
            bars, labels=[str(h) if h else "" for h in heights], fontsize="x-small", padding=2, rotation=90
        )
    dist_ax.set_xticks(x, [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in buckets])
    dist_ax.margins(y=0.1)
    dist_ax.set_xlabel("images per class")
    dist_ax.set_ylabel("number of classes")
    dist_ax.set_title("Images per class (few per class hurts recall)")
    dist_ax.legend(fontsize="small")

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
