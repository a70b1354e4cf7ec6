"""Shared test fixtures: paths to the shipped configs and demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "configs" / "modules" / "image_feature"
DEMO_DIR = ROOT / "dataset" / "demo"


@pytest.fixture
def rec_config() -> Path:
    """The shipped PP-ShiTuV2_rec config."""
    return CONFIG_DIR / "PP-ShiTuV2_rec.yaml"
