"""Global.mode=evaluate."""

from __future__ import annotations

from ..utils.errors import NotImplementedYetError


def run(cfg: dict) -> dict:
    """Run the evaluate mode; returns the content of `evaluate_result.json`."""
    raise NotImplementedYetError("Global.mode=evaluate is not implemented yet (tracked in issue 5).")
