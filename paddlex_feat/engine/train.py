"""Global.mode=train."""

from __future__ import annotations

from ..utils.errors import NotImplementedYetError


def run(cfg: dict) -> dict:
    """Run the train mode; returns the content of `train_result.json`."""
    raise NotImplementedYetError("Global.mode=train is not implemented yet (tracked in issue 6).")
