"""SearchResult: one query's answers, printable and savable as predict's results are."""

from __future__ import annotations

from pathlib import Path

from ..inference.results import JsonResult

UNKNOWN = "unknown"


class SearchResult(JsonResult):
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
