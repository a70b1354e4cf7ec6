"""The known harmless third-party warnings are silenced at their source; other warnings still show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import warnings
import paddlex_feat  # installs the filters before paddle is imported
import paddle
bn = paddle.nn.BatchNorm1D(3)
bn.train()
for _ in range(3):
    bn(paddle.randn([4, 3]))
warnings.warn("a real warning")
"""


def test_ccache_and_batchnorm_warnings_are_silenced_but_real_ones_show() -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "always::UserWarning", "-c", SCRIPT],  # "always": even repeats would show
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    assert "No ccache found" not in proc.stderr
    assert "track global mean and variance" not in proc.stderr
    assert "UserWarning: a real warning" in proc.stderr
