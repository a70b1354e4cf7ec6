"""ShiTuRecDataset list files: ``relative/path.jpg label [unique_id]``, one image a line.

The one parser every mode uses. It never stops at the first problem: it returns every
entry it could read plus every problem, each with its file and line number.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..utils.errors import DatasetError

LIST_NAMES = ("train", "gallery", "query")
MAX_REPORTED = 20


@dataclass(frozen=True)
class ListEntry:
    """One readable line of a list file."""

    path: str  # as written, relative to the dataset folder
    label: int
    lineno: int
    uid: str | None = None  # optional third column, for self-match exclusion


@dataclass(frozen=True)
class ListProblem:
    """A problem on one line of a list file (``lineno`` 0 means the whole file)."""

    file: str
    lineno: int
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.lineno}" if self.lineno else self.file
        return f"{where}: {self.message}"


def escapes_root(rel: str) -> bool:
    """True if ``rel`` is absolute or climbs out of the dataset folder with ``..``."""
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":"):
        return True
    depth = 0
    for part in rel.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def parse_list(list_path: str | os.PathLike) -> tuple[list[ListEntry], list[ListProblem]]:
    """Read a list file; tolerates CRLF, a UTF-8 BOM and blank lines, and reports the rest."""
    list_path = Path(list_path)
    name = list_path.name
    entries: list[ListEntry] = []
    problems: list[ListProblem] = []
    try:
        text = list_path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return [], [
            ListProblem(name, 0, f"is not UTF-8 text ({e.reason} at byte {e.start}). Save it as UTF-8.")
        ]
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3):
            problems.append(
                ListProblem(
                    name,
                    lineno,
                    f"expected 'path label' (or 'path label unique_id'), "
                    f"got {len(fields)} field(s): {line!r}",
                )
            )
            continue
        rel, label_text = fields[0], fields[1]
        try:
            label = int(label_text)
        except ValueError:
            problems.append(
                ListProblem(
                    name,
                    lineno,
                    f"label {label_text!r} is not an integer; labels are class numbers 0, 1, 2, ...",
                )
            )
            continue
        if escapes_root(rel):
            problems.append(
                ListProblem(
                    name,
                    lineno,
                    f"path {rel!r} escapes the dataset folder; use a path relative to it, inside it",
                )
            )
            continue
        entries.append(ListEntry(rel, label, lineno, fields[2] if len(fields) == 3 else None))
    return entries, problems


def bounded_lines(items: Sequence[object], limit: int = MAX_REPORTED) -> str:
    """Up to ``limit`` items, indented one a line, then '... and N more' when some were left out."""
    shown = "\n".join(f"  {item}" for item in items[:limit])
    return shown + (f"\n  ... and {len(items) - limit} more" if len(items) > limit else "")


def format_problems(problems: list[ListProblem], limit: int = MAX_REPORTED) -> str:
    """Up to ``limit`` problems, one a line, and the total count."""
    return f"{len(problems)} problem(s):\n{bounded_lines(problems, limit)}"


def read_list(dataset_dir: str | os.PathLike, split: str, required: bool = True) -> list[ListEntry]:
    """Entries of ``{dataset_dir}/{split}.txt``; raises DatasetError on a missing, empty or bad list."""
    path = Path(dataset_dir) / f"{split}.txt"
    if not path.is_file():
        if not required:
            return []
        raise DatasetError(
            f"{path} does not exist. A ShiTuRecDataset needs {split}.txt with lines "
            "'images/xxx.jpg label'; run -o Global.mode=check_dataset for a full report."
        )
    entries, problems = parse_list(path)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DatasetError(f"{path} has {format_problems(errors)}")
    if not entries and required:
        raise DatasetError(f"{path} is empty: it lists no images.")
    return entries


def read_lines(list_path: str | os.PathLike) -> list[str]:
    """Non-blank lines of a list file, stripped of line endings, BOM and outer spaces, in file order."""
    text = Path(list_path).read_bytes().decode("utf-8-sig")
    return [line.strip() for line in text.splitlines() if line.strip()]


def format_lines(lines: list[str]) -> str:
    """List-file text for ``lines``: one a line, each ending with a newline."""
    return "".join(f"{line}\n" for line in lines)


def no_query_can_match(query: Sequence[ListEntry], gallery: Sequence[ListEntry]) -> str | None:
    """Why no query can be scored against the gallery (no shared class), or None if some can.

    Evaluation leaves out same-id gallery images, so a query whose only same-class gallery image
    carries its own id cannot match either.
    """
    ids_by_label: dict[int, list[str | None]] = {}
    for e in gallery:
        ids_by_label.setdefault(e.label, []).append(e.uid)
    for q in query:
        if any(uid is None or uid != q.uid for uid in ids_by_label.get(q.label, ())):
            return None
    return (
        f"no class of query.txt ({len({q.label for q in query})} classes) has an image in gallery.txt "
        f"({len(ids_by_label)} classes), so recall and mAP cannot be computed. query.txt and gallery.txt "
        "must share classes with the same labels; -o Global.mode=check_dataset lists them"
    )
