"""Validate a ShiTuRecDataset: the three lists, their labels, and every image, decoded in parallel.

Every problem is collected (never just the first), each with its list file and line number.
Errors make the check fail; warnings (duplicate lines, query classes without a gallery image)
are reported but do not.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..utils.errors import DatasetError
from ..utils.image import read_bgr
from ..utils.logger import logger, progress
from .lists import LIST_NAMES, MAX_REPORTED, ListEntry, ListProblem, bounded_lines, parse_list

IMAGES_DIR = "images"
DECODE_CHUNK = 64  # images per pool task: amortises the per-future overhead on tiny images


@dataclass(frozen=True)
class DecodeResult:
    """What decoding one image file gave: its (height, width), or why it failed."""

    shape: tuple[int, int] | None
    error: str | None = None


@dataclass
class CheckReport:
    """Everything check_dataset learnt about a dataset."""

    root: Path
    entries: dict[str, list[ListEntry]]
    errors: list[ListProblem] = field(default_factory=list)
    warnings: list[ListProblem] = field(default_factory=list)
    decode_failures: int = 0
    image_sizes: dict[str, list[int]] = field(default_factory=dict)
    unique_images: int = 0
    query_classes_without_gallery: list[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return not self.errors


def find_dataset_root(dataset_dir: str | os.PathLike, exclude: Iterable[str | os.PathLike] = ()) -> Path:
    """The folder holding the one ``images/`` folder: ``dataset_dir`` itself or one below it.

    Folders in ``exclude`` (Global.output, whose demo copies mirror ``images/``) are not searched.
    """
    dataset_dir = Path(dataset_dir)
    skipped = {os.path.realpath(p) for p in exclude}
    if not dataset_dir.is_dir():
        raise DatasetError(
            f"Global.dataset_dir={str(dataset_dir)!r} does not exist or is not a folder. "
            "Point it at the folder that holds images/, train.txt, gallery.txt and query.txt."
        )
    if (dataset_dir / IMAGES_DIR).is_dir():
        return dataset_dir
    found: list[Path] = []
    for current, dirs, _ in os.walk(dataset_dir):
        dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(current, d)) not in skipped]
        if IMAGES_DIR in dirs:
            found.append(Path(current) / IMAGES_DIR)
            dirs.remove(IMAGES_DIR)  # an images/ folder may hold any subtree; don't search inside it
        dirs.sort()
    if len(found) == 1:
        return found[0].parent
    if not found:
        raise DatasetError(
            f"No '{IMAGES_DIR}/' folder found in {dataset_dir}. A ShiTuRecDataset keeps its images "
            f"under {dataset_dir}/{IMAGES_DIR}/ beside train.txt, gallery.txt and query.txt."
        )
    listing = ", ".join(str(p) for p in found[:10])
    raise DatasetError(
        f"Found {len(found)} '{IMAGES_DIR}/' folders under {dataset_dir}: {listing}. "
        "Set Global.dataset_dir to the one dataset folder you mean."
    )


def decode_image(path: str | os.PathLike) -> DecodeResult:
    """Decode one image and keep only its (height, width) or why it failed; never raises."""
    image, error = read_bgr(path)
    return DecodeResult(None if image is None else (int(image.shape[0]), int(image.shape[1])), error)


def _decode_chunk(paths: Sequence[str]) -> list[DecodeResult]:
    return [decode_image(p) for p in paths]


def default_num_workers() -> int:
    """Decode threads: cv2.imdecode releases the GIL, and extra threads hide file-read latency."""
    return max(2, min(16, 2 * (os.cpu_count() or 1)))


def decode_images(paths: Sequence[str], num_workers: int | None = None) -> list[DecodeResult]:
    """Decode ``paths`` on a thread pool, in chunks, with a progress bar; results keep the order."""
    workers = num_workers or default_num_workers()
    chunks = [paths[i : i + DECODE_CHUNK] for i in range(0, len(paths), DECODE_CHUNK)]
    results: list[DecodeResult] = []
    with progress(total=len(paths), desc="decoding images", unit="img") as bar:
        if workers <= 1:
            for chunk in chunks:
                results.extend(_decode_chunk(chunk))
                bar.update(len(chunk))
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            for chunk, chunk_results in zip(chunks, pool.map(_decode_chunk, chunks)):
                results.extend(chunk_results)
                bar.update(len(chunk))
    return results


def _check_uids(name: str, entries: list[ListEntry]) -> list[ListProblem]:
    """A third column is a unique id (used to exclude self-matches): it must be unique in its list."""
    first_line: dict[str, int] = {}
    problems = []
    for entry in entries:
        if entry.uid is None:
            continue
        if entry.uid in first_line:
            problems.append(
                ListProblem(
                    name,
                    entry.lineno,
                    f"third column {entry.uid!r} repeats line {first_line[entry.uid]}; the optional third "
                    "column is a unique id per image. Make it unique or drop the column.",
                )
            )
        else:
            first_line[entry.uid] = entry.lineno
    return problems


def _duplicate_warnings(name: str, entries: list[ListEntry]) -> list[ListProblem]:
    """Repeated lines count an image twice; the same image under two labels is usually a mistake."""
    seen: dict[str, ListEntry] = {}
    warnings = []
    for entry in entries:
        first = seen.get(entry.path)
        if first is None:
            seen[entry.path] = entry
        elif first.label == entry.label:
            warnings.append(
                ListProblem(name, entry.lineno, f"duplicate of line {first.lineno} ({entry.path})", "warning")
            )
        else:
            warnings.append(
                ListProblem(
                    name,
                    entry.lineno,
                    f"{entry.path} has label {entry.label} here but {first.label} at line {first.lineno}",
                    "warning",
                )
            )
    return warnings


def _cross_list_warnings(entries: dict[str, list[ListEntry]]) -> tuple[list[ListProblem], list[int]]:
    """Queries that cannot be scored, and images that are both gallery and query."""
    warnings = []
    gallery_labels = {e.label for e in entries.get("gallery", [])}
    query = entries.get("query", [])
    orphan_counts = Counter(e.label for e in query if e.label not in gallery_labels)
    orphans = sorted(orphan_counts)
    if orphans and gallery_labels:
        examples = ", ".join(str(label) for label in orphans[:10])
        warnings.append(
            ListProblem(
                "query.txt",
                0,
                f"{len(orphans)} query class(es) have no gallery image (e.g. {examples}); their "
                f"{sum(orphan_counts.values())} queries cannot be scored and are left out of recall/mAP",
                "warning",
            )
        )
    gallery_paths = {e.path: e.lineno for e in entries.get("gallery", [])}
    shared = [e for e in query if e.path in gallery_paths]
    if shared:
        first = shared[0]
        warnings.append(
            ListProblem(
                "query.txt",
                first.lineno,
                f"{len(shared)} query image(s) are also gallery images (first: {first.path}, gallery.txt:"
                f"{gallery_paths[first.path]}); each will match itself",
                "warning",
            )
        )
    eval_paths = set(gallery_paths) | {e.path for e in query}
    leaked = [e for e in entries.get("train", []) if e.path in eval_paths]
    if leaked:
        warnings.append(
            ListProblem(
                "train.txt",
                leaked[0].lineno,
                f"{len(leaked)} training image(s) are also in gallery/query (first: {leaked[0].path}); "
                "recall will look better than it is",
                "warning",
            )
        )
    return warnings, orphans


def check_dataset(root: str | os.PathLike, num_workers: int | None = None) -> CheckReport:
    """Validate the lists under ``root`` and decode every image they name."""
    root = Path(root)
    report = CheckReport(root=root, entries={})
    for split in LIST_NAMES:
        list_path = root / f"{split}.txt"
        name = list_path.name
        if not list_path.is_file():
            report.errors.append(
                ListProblem(
                    name,
                    0,
                    f"missing: {list_path} does not exist. Create it with lines 'images/xxx.jpg label', "
                    "or set CheckDataset.split.enable=True to split the lists that exist",
                )
            )
            continue
        entries, problems = parse_list(list_path)
        report.errors.extend(p for p in problems if p.severity == "error")
        report.warnings.extend(p for p in problems if p.severity != "error")
        if not entries and not problems:
            report.errors.append(
                ListProblem(name, 0, "is empty: it lists no images. Add lines 'images/xxx.jpg label'")
            )
        report.errors.extend(_check_uids(name, entries))
        report.warnings.extend(_duplicate_warnings(name, entries))
        report.entries[split] = entries

    _check_images(report, num_workers)
    cross, orphans = _cross_list_warnings(report.entries)
    report.warnings.extend(cross)
    report.query_classes_without_gallery = orphans
    order = {f"{s}.txt": i for i, s in enumerate(LIST_NAMES)}
    report.errors.sort(key=lambda p: (order.get(p.file, len(order)), p.lineno))
    return report


def _check_images(report: CheckReport, num_workers: int | None) -> None:
    """Decode each distinct image once; report every line that names a bad one."""
    unique_paths = sorted({e.path for entries in report.entries.values() for e in entries})
    report.unique_images = len(unique_paths)
    if not unique_paths:
        return
    logger.info(f"Decoding {len(unique_paths)} images under {report.root}")
    results = decode_images([str(report.root / p) for p in unique_paths], num_workers)
    by_path = dict(zip(unique_paths, results))
    bad = {p for p, r in by_path.items() if r.error}
    report.decode_failures = sum(1 for p in bad if by_path[p].error != "not found")
    for split, entries in report.entries.items():
        for entry in entries:
            if entry.path not in bad:
                continue
            error = by_path[entry.path].error
            if error == "not found":
                message = (
                    f"image {entry.path} not found (looked for {report.root / entry.path}); "
                    "fix the path or remove the line"
                )
            else:
                message = f"image {entry.path} {error}; replace the file or remove the line"
            report.errors.append(ListProblem(f"{split}.txt", entry.lineno, message))
    shapes = [r.shape for r in results if r.shape is not None]
    if shapes:
        heights, widths = zip(*shapes)
        report.image_sizes = {
            "min_height": min(heights),
            "max_height": max(heights),
            "min_width": min(widths),
            "max_width": max(widths),
        }


def images_per_class(entries: Iterable[ListEntry]) -> dict[str, float]:
    """Number of classes and min/median/mean/max images per class."""
    counts = list(Counter(e.label for e in entries).values())
    if not counts:
        return {"classes": 0, "min": 0, "median": 0, "mean": 0, "max": 0}
    return {
        "classes": len(counts),
        "min": min(counts),
        "median": statistics.median(counts),
        "mean": round(sum(counts) / len(counts), 3),
        "max": max(counts),
    }


def class_counts(entries: Iterable[ListEntry]) -> list[int]:
    """Images per class, one number per class (order: by label)."""
    per_label: dict[int, int] = defaultdict(int)
    for e in entries:
        per_label[e.label] += 1
    return [per_label[label] for label in sorted(per_label)]


def problem_details(report: CheckReport, limit: int = MAX_REPORTED) -> dict:
    """The keys a failing check adds to the result file: errors and warnings, capped, with totals."""
    return {
        "check_pass": False,
        "errors": [str(p) for p in report.errors[:limit]],
        "error_count": len(report.errors),
        "warnings": [str(p) for p in report.warnings[:limit]],
        "warning_count": len(report.warnings),
        "decode_failures": report.decode_failures,
        "dataset_path": str(report.root),
    }


def failure_message(report: CheckReport, limit: int = MAX_REPORTED) -> str:
    """A readable summary of the errors: up to ``limit`` lines and the total."""
    return (
        f"Dataset check failed for {report.root}: {len(report.errors)} error(s) "
        f"(showing {min(limit, len(report.errors))}):\n{bounded_lines(report.errors, limit)}\n"
        "Fix these lines (file:line) and run check_dataset again."
    )
