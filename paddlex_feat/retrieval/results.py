"""SearchResult: one query's answers, printable and savable as predict's results are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_text

UNKNOWN = "unknown"


class SearchResult(dict):
    """``{'input_path', 'label', 'labels', 'scores', 'ids', 'paths'}`` for one query, best first.

    ``label`` is the top-1 label, or ``"unknown"`` when its score misses the threshold (the top-k
    lists are kept either way, unlike PaddleX, which drops every answer). A failed query (only with
    ``skip_errors``) has empty lists and an ``'error'``.
    """

    def __init__(
        self,
        input_path: str | None,
        labels: list[str],
        scores: list[float],
        ids: list[int],
        paths: list[str | None],
        *,
        label: str | None = None,
        save_stem: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(
            input_path=input_path,
            label=label if label is not None else (labels[0] if labels else UNKNOWN),
            labels=labels,
            scores=scores,
            ids=ids,
            paths=paths,
        )
        if error is not None:
            self["error"] = error
        self.save_stem = save_stem or (Path(input_path).stem if input_path else "query")

    @property
    def label(self) -> str:
        """The top-1 label, or ``"unknown"``."""
        return self["label"]

    @property
    def ok(self) -> bool:
        """Whether the query image could be read."""
        return "error" not in self

    @property
    def json(self) -> dict[str, Any]:
        """JSON-ready content: ``{'res': {...}}``."""
        return {"res": dict(self)}

    def to_str(self, format_json: bool = True, indent: int = 4, ensure_ascii: bool = False) -> str:
        """The text ``print()`` shows."""
        if not format_json:
            return str(self.json)
        return json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii)

    def print(self, format_json: bool = True, indent: int = 4, ensure_ascii: bool = False) -> None:
        """Print the result as indented JSON."""
        print(self.to_str(format_json, indent, ensure_ascii), flush=True)

    def save_to_json(self, save_path: str | Path, indent: int = 4, ensure_ascii: bool = False) -> Path:
        """Write the result; a folder gets ``<stem>_res.json``, a ``*.json`` path is the file."""
        target = Path(save_path)
        if target.suffix.lower() != ".json":
            target = target / f"{self.save_stem}_res.json"
        atomic_write_text(
            target, json.dumps(self.json["res"], indent=indent, ensure_ascii=ensure_ascii) + "\n"
        )
        return target
