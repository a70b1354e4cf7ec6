"""Convert a LabelMe-annotated folder into a ShiTuRecDataset (train/gallery/query lists).

Input: ``label.txt`` (line i names class i), ``annotations/*.json`` (LabelMe files; every
``flags`` entry that is true gives the image that class) and ``images/``. Output: the three
lists split 50/30/20, deterministically; existing lists are kept as ``*.bak``.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path

from ..utils.errors import ConfigError, DatasetError
from ..utils.logger import logger
from .lists import MAX_REPORTED, bounded_lines, escapes_root
from .split import assign_lists, write_lists

SUPPORTED_SRC_TYPES = ("LabelMe",)
CONVERT_PERCENTS = (50, 30, 20)  # the reference's fixed train/gallery/query rule


def resolve_src_type(src_dataset_type: str | None) -> str:
    """The canonical name of a supported source type, or a ConfigError listing them."""
    supported = ", ".join(SUPPORTED_SRC_TYPES)
    if not src_dataset_type:
        raise ConfigError(
            "CheckDataset.convert.enable=True but CheckDataset.convert.src_dataset_type is not set. "
            f"Set it to one of: {supported}."
        )
    for name in SUPPORTED_SRC_TYPES:
        if name.lower() == str(src_dataset_type).lower():
            return name
    raise ConfigError(
        f"CheckDataset.convert.src_dataset_type={src_dataset_type!r} is not supported. "
        f"Supported: {supported}."
    )


def read_label_names(label_path: Path) -> tuple[dict[str, int], list[str]]:
    """Class name -> index from label.txt (line i is class i); returns (names, errors)."""
    lines = label_path.read_bytes().decode("utf-8-sig").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines carry no class
    names: dict[str, int] = {}
    errors = []
    for index, raw in enumerate(lines):
        name = raw.strip()
        if not name:
            errors.append(f"label.txt:{index + 1}: blank line; line i names class i-1, so remove it")
        elif name in names:
            errors.append(f"label.txt:{index + 1}: class {name!r} already named at line {names[name] + 1}")
        else:
            names[name] = index
    if not names and not errors:
        errors.append("label.txt: is empty; write one class name a line")
    return names, errors


def resolve_image_path(root: Path, json_rel: str, image_path: str) -> str | None:
    """The image a LabelMe ``imagePath`` names, relative to ``root``; handles Windows separators."""
    text = image_path.strip().replace("\\", "/")
    candidates = []
    if text and not text.startswith("/") and not (len(text) > 1 and text[1] == ":"):
        candidates.append(posixpath.normpath(posixpath.join(posixpath.dirname(json_rel), text)))
        candidates.append(posixpath.normpath(text))
    candidates.append(f"images/{posixpath.basename(text)}")  # LabelMe files moved from another machine
    for rel in candidates:
        if rel and not escapes_root(rel) and (root / rel).is_file():
            return rel
    return None


def read_labelme(root: Path, names: dict[str, int]) -> tuple[list[str], list[str], list[str]]:
    """Lines 'images/x.jpg label' from annotations/*.json; returns (lines, errors, warnings)."""
    lines: list[str] = []
    seen: dict[str, str] = {}  # line -> json file that gave it first
    errors: list[str] = []
    warnings: list[str] = []
    for json_path in sorted((root / "annotations").glob("*.json")):
        json_rel = f"annotations/{json_path.name}"
        try:
            data = json.loads(json_path.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            errors.append(f"{json_rel}: not valid JSON ({e}); fix or remove the file")
            continue
        if not isinstance(data, dict) or not isinstance(data.get("imagePath"), str):
            errors.append(f"{json_rel}: no 'imagePath' string; is this a LabelMe file?")
            continue
        rel = resolve_image_path(root, json_rel, data["imagePath"])
        if rel is None:
            warnings.append(f"{json_rel}: image {data['imagePath']!r} not found under {root}; skipped")
            continue
        flags = data.get("flags") or {}
        if not isinstance(flags, dict):
            errors.append(f"{json_rel}: 'flags' must be an object of class name -> true/false")
            continue
        chosen = [name for name, on in flags.items() if on is True]
        unknown = [name for name in chosen if name not in names]
        if unknown:
            errors.append(f"{json_rel}: flag(s) {unknown} not in label.txt; add them there or fix the flags")
            continue
        if not chosen:
            warnings.append(f"{json_rel}: no flag is true, so {rel} has no class; skipped")
            continue
        for name in chosen:
            line = f"{rel} {names[name]}"
            if line in seen:
                warnings.append(
                    f"{json_rel}: {rel} with class {name!r} already given by {seen[line]}; kept once"
                )
                continue
            seen[line] = json_rel
            lines.append(line)
    return lines, errors, warnings


def convert_dataset(
    src_dataset_type: str | None, root: str | os.PathLike, seed: int = 0, by_class: bool = True
) -> dict:
    """Write train/gallery/query lists from a LabelMe folder; nothing changes on disk on error."""
    resolve_src_type(src_dataset_type)
    root = Path(root)
    missing = [name for name in ("label.txt", "annotations", "images") if not (root / name).exists()]
    if missing:
        raise DatasetError(
            f"Cannot convert {root} from LabelMe: missing {', '.join(missing)}. A LabelMe folder holds "
            "label.txt (one class name a line), annotations/*.json and images/; nothing was changed."
        )
    names, errors = read_label_names(root / "label.txt")
    lines, json_errors, warnings = read_labelme(root, names) if not errors else ([], [], [])
    errors += json_errors
    if not errors and not lines:
        errors.append(f"{root}/annotations holds no usable LabelMe file (*.json with a true flag)")
    if errors:
        raise DatasetError(
            f"LabelMe conversion of {root} failed with {len(errors)} error(s); nothing was changed.\n"
            + bounded_lines(errors),
            details={"errors": errors[:MAX_REPORTED], "error_count": len(errors)},
        )
    for warning in warnings[:MAX_REPORTED]:
        logger.warning(f"convert: {warning}")
    lists = assign_lists(lines, CONVERT_PERCENTS, seed, by_class, what="LabelMe conversion")
    write_lists(root, lists)
    summary = {name: len(split_lines) for name, split_lines in lists.items()}
    logger.info(f"Converted {len(lines)} LabelMe labels of {root} into {summary}")
    return {
        "src_dataset_type": "LabelMe",
        **summary,
        "warnings": warnings[:MAX_REPORTED],
        "warning_count": len(warnings),
    }
