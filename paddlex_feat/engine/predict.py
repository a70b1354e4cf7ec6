"""Global.mode=predict."""

from __future__ import annotations

from ..utils.errors import NotImplementedYetError


def run(cfg: dict) -> dict:
    """Run the predict mode; returns the content of `predict_result.json`."""
    raise NotImplementedYetError("Global.mode=predict is not implemented yet (tracked in issue 7).")
