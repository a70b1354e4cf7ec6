"""Fixtures for dataset tests: tiny on-disk ShiTuRecDatasets and an in-process check_dataset run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddlex_feat.cli import main

ROOT = Path(__file__).resolve().parents[2]
REC_CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def write_jpeg(path: Path, seed: int = 0, size: int = 16) -> None:
    """A small random-colour JPEG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), rng.integers(0, 255, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(buf.tobytes())


def default_lists() -> dict[str, list[str]]:
    """Train classes 0-2 (2 images each); gallery and query share classes 3-4."""
    train = [f"images/train/c{c}_{i}.jpg {c}" for c in range(3) for i in range(2)]
    gallery = [f"images/gallery/c{c}.jpg {c}" for c in (3, 4)]
    query = [f"images/query/c{c}.jpg {c}" for c in (3, 4)]
    return {"train": train, "gallery": gallery, "query": query}


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Build a dataset: every image the lists name is created unless listed in ``skip_images``."""

    def build(
        lists: dict[str, list[str] | str | None] | None = None,
        skip_images: tuple[str, ...] = (),
        name: str = "ds",
    ) -> Path:
        root = tmp_path / name
        (root / "images").mkdir(parents=True)
        lists = default_lists() if lists is None else lists
        seed = 0
        for split, content in lists.items():
            if content is None:
                continue
            text = content if isinstance(content, str) else "".join(f"{line}\n" for line in content)
            (root / f"{split}.txt").write_text(text, encoding="utf-8", newline="")
            for line in text.splitlines():
                fields = line.strip().lstrip("\ufeff").split()
                if not fields or fields[0] in skip_images or ".." in fields[0] or fields[0].startswith("/"):
                    continue
                if not (root / fields[0]).exists():
                    write_jpeg(root / fields[0], seed)
                    seed += 1
        return root

    return build


@pytest.fixture
def run_check(tmp_path: Path) -> Callable[..., tuple[int, dict]]:
    """Run check_dataset through the CLI in-process; returns (exit code, result file content)."""

    def run(dataset_dir: Path | str, *overrides: str) -> tuple[int, dict]:
        output = tmp_path / "out"
        rc = main(
            [
                "-c",
                str(REC_CONFIG),
                "-o",
                "Global.mode=check_dataset",
                "-o",
                f"Global.dataset_dir={dataset_dir}",
                "-o",
                f"Global.output={output}",
                *[arg for o in overrides for arg in ("-o", o)],
            ]
        )
        result_file = output / "check_dataset_result.json"
        if not result_file.exists():  # a usage error (exit 2) writes no result: hand back the log
            return rc, {"log": (output / "check_dataset.log").read_text(encoding="utf-8")}
        return rc, json.loads(result_file.read_text(encoding="utf-8"))

    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to assert that nothing changed on disk."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def disk_snapshot() -> Callable[[Path], dict[str, bytes]]:
    """The ``snapshot`` function, as a fixture (test modules cannot import conftest)."""
    return snapshot


@pytest.fixture
def jpeg_writer() -> Callable[..., None]:
    """The ``write_jpeg`` function, as a fixture."""
    return write_jpeg


class DiskFull:
    """Makes the n-th write or fsync of ``paddlex_feat.utils.io`` fail with ENOSPC, as a full disk does.

    A failing write first writes half its bytes, as a real short write on a full disk leaves them.
    ``hits`` says whether the n-th operation was reached (if not, the run finished before it).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int) -> None:
        import builtins
        import errno
        import os
        import stat

        import paddlex_feat.utils.io as io_module

        self.count, self.fail_at, self.hits = 0, fail_at, False
        real_open, real_fsync = builtins.open, os.fsync
        disk = self

        def tick() -> None:
            disk.count += 1
            if disk.count == disk.fail_at:
                disk.hits = True
                raise OSError(errno.ENOSPC, "No space left on device")

        class ShortWriter:
            def __init__(self, f) -> None:
                self.f = f

            def write(self, data: bytes) -> int:
                try:
                    tick()
                except OSError:
                    self.f.write(data[: len(data) // 2])
                    self.f.flush()
                    raise
                return self.f.write(data)

            def __getattr__(self, name: str):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                self.f.close()

        def fake_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            return ShortWriter(f) if "w" in mode or "a" in mode else f

        def fake_fsync(fd: int) -> None:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):  # syncing a folder after a rename needs no space
                tick()
            real_fsync(fd)

        monkeypatch.setattr(io_module, "open", fake_open, raising=False)
        monkeypatch.setattr(io_module.os, "fsync", fake_fsync)


@pytest.fixture
def disk_full_at(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], DiskFull]:
    """``disk_full_at(n)``: the n-th write/fsync from here on fails with ENOSPC (see DiskFull)."""
    return lambda n: DiskFull(monkeypatch, n)
