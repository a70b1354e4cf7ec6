"""Where the benchmarks find what lies outside the repo: each a flag's default, from the environment.

Every default is relative to this checkout, so a newcomer reruns a bench script without editing it:

* ``REF_PYTHON``: the reference venv's python (PaddleX 3.7.2, PaddleClas 2.6.0), default
  ``.venv-ref/bin/python`` as ``tools/make_ref_venv.sh`` builds it (``REF_VENV`` moves both).
* ``BENCH_DATASET``: the shared ShiTuRecDataset, default ``../shared/data/emoji-vendors`` (the shared
  data beside the repo).
* ``PADDLECLAS_REPO``: a PaddleClas git dir for the 2.6.0 sources, default ``../PaddleClas/.git``
  (``git clone https://github.com/PaddlePaddle/PaddleClas ../PaddleClas``).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ref_python() -> Path:
    """The reference venv's python: $REF_PYTHON, else $REF_VENV/bin/python, else .venv-ref/bin/python."""
    if os.environ.get("REF_PYTHON"):
        return Path(os.environ["REF_PYTHON"])
    return Path(os.environ.get("REF_VENV", ROOT / ".venv-ref")) / "bin" / "python"


def bench_dataset() -> Path:
    """The shared emoji-vendors dataset: $BENCH_DATASET, else ../shared/data/emoji-vendors."""
    return Path(os.environ.get("BENCH_DATASET", ROOT.parent / "shared" / "data" / "emoji-vendors"))


def paddleclas_repo() -> Path:
    """A PaddleClas git dir: $PADDLECLAS_REPO, else ../PaddleClas/.git."""
    return Path(os.environ.get("PADDLECLAS_REPO", ROOT.parent / "PaddleClas" / ".git"))


def require_ref_python(python: str | os.PathLike) -> Path:
    """``python`` if it exists, else exit with how to build the reference venv."""
    path = Path(python)
    if not path.is_file():
        raise SystemExit(
            f"No reference python at {path}. Build it with tools/make_ref_venv.sh (-> .venv-ref/), "
            "or point --ref-python / REF_PYTHON at one."
        )
    return path
