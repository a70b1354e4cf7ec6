"""Paddle inference folder -> ONNX, converted once with paddle2onnx and cached by a hash of the model.

The ONNX file goes beside the model (``inference.onnx`` plus ``inference.onnx.meta.json``), or into
the cache dir when the folder is read-only. The meta file records the SHA-256 of the program and
parameter files it came from and of the ONNX file itself, so a re-export invalidates the cache and a
corrupt (truncated, overwritten) ONNX file is detected, logged and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ...utils.errors import ModelError
from ...utils.io import atomic_target, atomic_write_json
from ...utils.logger import logger
from .base import PIP_EXTRA, BackendUnavailableError, is_installed, pip_command

ONNX_NAME = "inference.onnx"
META_NAME = "inference.onnx.meta.json"
OPSET = 11  # paddle2onnx raises it by itself where an operator needs a newer one
CONVERT_TIMEOUT_S = 1800  # CLIP large (1.2 GB of weights) takes minutes on 2 cores

# Run in a child process: paddle2onnx aborts the whole process (SIGABRT) on an unsupported operator.
# Polygraphy folding is off: it may pip-install packages at run time, and the runtimes fold anyway.
_CONVERT_SCRIPT = """
import sys
import paddle2onnx
program, params, out, opset = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = paddle2onnx.export(program, params, save_file=None, opset_version=opset, optimize_tool=None)
if not data:
    sys.exit("paddle2onnx returned an empty model")
with open(out, "wb") as f:
    f.write(data)
"""


def file_sha256(*paths: Path) -> str:
    """SHA-256 over the contents of ``paths`` in order (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(4 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_folder(source_hash: str, cache_dir: Path | None = None) -> Path:
    """Where a read-only model's ONNX goes: ``<cache_dir or $PADDLEX_FEAT_HOME>/onnx/<hash prefix>``."""
    from ...utils.download import cache_root

    return Path(cache_dir or cache_root()) / "onnx" / source_hash[:24]


def is_writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (tried for real: access() lies on some mounts)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".pxf-write-probe.")
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def onnx_model_path(model_dir: Path, program: Path, params: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX file of an inference folder: the cached one when valid, else a fresh conversion."""
    source_hash = file_sha256(program, params)
    beside, fallback = Path(model_dir), cache_folder(source_hash, cache_dir)
    for folder in (beside, fallback):
        cached = _valid_cached(folder, source_hash)
        if cached is not None:
            logger.info(f"Using the cached ONNX model {cached} (matches the model's hash {source_hash[:12]})")
            return cached
    target = beside if is_writable(beside) else fallback
    if target is fallback:
        logger.info(f"{beside} is read-only; caching the ONNX model in {fallback}")
    return convert(program, params, target, source_hash)


def _valid_cached(folder: Path, source_hash: str) -> Path | None:
    """The cached ONNX in ``folder`` if it was made from this model and is intact; logs why not."""
    onnx_path, meta_path = folder / ONNX_NAME, folder / META_NAME
    if not onnx_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        recorded_source, recorded_onnx = meta["source_sha256"], meta["onnx_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        logger.warning(f"{meta_path} is missing or unreadable ({e}); rebuilding {onnx_path}")
        return None
    if recorded_source != source_hash:
        logger.info(f"{onnx_path} was converted from an older export of this model; rebuilding it")
        return None
    actual = file_sha256(onnx_path)
    if actual != recorded_onnx:
        logger.warning(
            f"Cached ONNX model {onnx_path} is corrupt: its SHA-256 is {actual[:12]}, the meta file "
            f"{meta_path.name} says {recorded_onnx[:12]}; rebuilding it"
        )
        return None
    return onnx_path


def convert(program: Path, params: Path, folder: Path, source_hash: str) -> Path:
    """Convert with paddle2onnx in a child process and write ``folder/inference.onnx`` and its meta."""
    if not is_installed("paddle2onnx"):
        raise BackendUnavailableError(
            "Converting the model to ONNX for use_hpip=True needs paddle2onnx, which is not installed. "
            f"Install the high-performance extra with `{PIP_EXTRA}` (or `{pip_command('paddle2onnx')}`), "
            "or use normal mode: use_hpip=False.",
            details={"missing_package": "paddle2onnx", "pip_command": pip_command("paddle2onnx")},
        )
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = folder / ONNX_NAME
    logger.info(f"Converting {program.parent} to ONNX with paddle2onnx (once; cached by hash)")
    with atomic_target(onnx_path) as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", _CONVERT_SCRIPT, str(program), str(params), str(tmp), str(OPSET)],
            capture_output=True,
            text=True,
            timeout=CONVERT_TIMEOUT_S,
        )
        if proc.returncode != 0 or tmp.stat().st_size == 0:
            raise ModelError(
                f"paddle2onnx could not convert {program} to ONNX ({_reason(proc)}), so use_hpip=True cannot "
                "run this model. Use normal mode (use_hpip=False, Paddle Inference), which runs every "
                "exported model, or hpi_config={'backend': 'paddle'}.",
                details={"converter_exit_code": proc.returncode},
            )
        onnx_hash = file_sha256(tmp)
    from importlib.metadata import version

    meta = {
        "source_sha256": source_hash,
        "onnx_sha256": onnx_hash,
        "program": program.name,
        "paddle2onnx": version("paddle2onnx"),
        "opset": OPSET,
    }
    atomic_write_json(folder / META_NAME, meta)
    logger.info(f"Wrote {onnx_path} ({onnx_path.stat().st_size / 2**20:.1f} MB)")
    return onnx_path


def _reason(proc: subprocess.CompletedProcess) -> str:
    """paddle2onnx's own error line, or the tail of its output, and how the process ended."""
    text = (proc.stdout or "") + "\n" + (proc.stderr or "")
    lines = [line.strip() for line in text.splitlines()]
    # paddle2onnx's own "[ERROR]" line says most; a Python "...Error:" line is next best
    errors = [line for line in lines if "[ERROR]" in line] or [line for line in lines if "Error:" in line]
    said = errors[-1] if errors else " ".join(text.split()[-30:])
    ended = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    return f"{ended}: {said[:300]}" if said else ended
