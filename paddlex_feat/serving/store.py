"""Gallery indexes behind the service (placeholder until the gallery index lands)."""

from __future__ import annotations

from pathlib import Path


class IndexStore:
    def __init__(self, default: str | None, index_dir: Path) -> None:
        self.default = default
        self.index_dir = Path(index_dir)

    def has(self, key: str | None) -> bool:
        return False
