"""Global.mode=check_dataset."""

from __future__ import annotations

from ..utils.errors import NotImplementedYetError


def run(cfg: dict) -> dict:
    """Run the check_dataset mode; returns the content of `check_dataset_result.json`."""
    raise NotImplementedYetError("Global.mode=check_dataset is not implemented yet (tracked in issue 3).")
