"""Global.mode=check_dataset: convert and split if asked, validate, then draw demo images and plots.

Writes under ``{Global.output}/check_dataset/``; returns the content of check_dataset_result.json.
"""

from __future__ import annotations

from pathlib import Path

from ..data.check import (
    CheckReport,
    check_dataset,
    class_counts,
    failure_message,
    find_dataset_root,
    images_per_class,
    problem_details,
)
from ..data.convert import convert_dataset
from ..data.lists import LIST_NAMES, MAX_REPORTED
from ..data.split import split_dataset
from ..data.visualize import plot_histogram, save_demo_images
from ..utils.errors import DatasetError, PaddlexFeatError
from ..utils.logger import logger

CHECK_DIR = "check_dataset"


def run(cfg: dict) -> dict:
    """Run the check_dataset mode; returns the content of `check_dataset_result.json`."""
    try:
        return _run(cfg)
    except PaddlexFeatError as err:
        # Every failure reports check_pass and its errors, whatever stage raised it.
        err.details.setdefault("check_pass", False)
        err.details.setdefault("errors", [str(err)])
        err.details.setdefault("error_count", len(err.details["errors"]))
        raise


def _run(cfg: dict) -> dict:
    glob, options = cfg["Global"], cfg["CheckDataset"]
    output = Path(glob["output"])
    check_dir = output / CHECK_DIR
    root = find_dataset_root(glob["dataset_dir"], exclude=[output])
    check_dir.mkdir(parents=True, exist_ok=True)

    # As in the reference, conversion and splitting come first, so the check sees their result.
    prepared: dict = {}
    if options["convert"]["enable"]:
        split_opts = options["split"]
        prepared["convert"] = convert_dataset(
            options["convert"]["src_dataset_type"],
            root,
            seed=split_opts["seed"],
            by_class=split_opts["by_class"],
        )
    if options["split"]["enable"]:
        s = options["split"]
        prepared["split"] = split_dataset(
            root,
            s["train_percent"],
            s["gallery_percent"],
            s["query_percent"],
            seed=s["seed"],
            by_class=s["by_class"],
        )

    report = check_dataset(root, num_workers=options["num_workers"])
    for warning in report.warnings[:MAX_REPORTED]:
        logger.warning(str(warning))
    if len(report.warnings) > MAX_REPORTED:
        logger.warning(f"... and {len(report.warnings) - MAX_REPORTED} more warnings")
    if not report.passed:
        details = problem_details(report)
        details["dataset_path"] = root.name
        details["dataset_dir"] = str(root.resolve())
        raise DatasetError(failure_message(report), details=details)

    samples = save_demo_images(
        root, report.entries, check_dir, output, per_split=options["sample_num"], seed=glob["seed"]
    )
    stats = {split: images_per_class(report.entries[split]) for split in LIST_NAMES}
    summary = {
        split: {"images": len(report.entries[split]), "classes": stats[split]["classes"]}
        for split in LIST_NAMES
    }
    plot_histogram(
        summary,
        {split: class_counts(report.entries[split]) for split in LIST_NAMES},
        check_dir / "histogram.png",
    )
    logger.info(
        "Check dataset passed: "
        + ", ".join(
            f"{s} {summary[s]['images']} images / {summary[s]['classes']} classes" for s in LIST_NAMES
        )
    )
    return {
        "done_flag": True,
        "check_pass": True,
        "attributes": _attributes(report, samples),
        "analysis": _analysis(report, stats, prepared),
        "dataset_path": root.name,  # the reference gives the folder's base name
        "show_type": "image",
        "dataset_type": "ShiTuRecDataset",
    }


def _attributes(report: CheckReport, samples: dict[str, list[str]]) -> dict:
    attributes = {}
    for split in LIST_NAMES:
        attributes[f"{split}_samples"] = len(report.entries[split])
        attributes[f"{split}_sample_paths"] = samples.get(split, [])
    return attributes


def _analysis(report: CheckReport, stats: dict, prepared: dict) -> dict:
    return {
        "histogram": f"{CHECK_DIR}/histogram.png",
        "dataset_dir": str(report.root.resolve()),
        "num_classes": {split: stats[split]["classes"] for split in LIST_NAMES},
        "images_per_class": {
            split: {k: stats[split][k] for k in ("min", "median", "mean", "max")} for split in LIST_NAMES
        },
        "unique_images": report.unique_images,
        "image_size": report.image_sizes,
        "decode_failures": report.decode_failures,
        "query_classes_without_gallery": len(report.query_classes_without_gallery),
        "warnings": [str(w) for w in report.warnings[:MAX_REPORTED]],
        "warning_count": len(report.warnings),
        **prepared,
    }
