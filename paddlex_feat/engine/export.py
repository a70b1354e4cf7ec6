"""Global.mode=export."""

from __future__ import annotations

from ..utils.errors import NotImplementedYetError


def run(cfg: dict) -> dict:
    """Run the export mode; returns the content of `export_result.json`."""
    raise NotImplementedYetError("Global.mode=export is not implemented yet (tracked in issue 7).")
