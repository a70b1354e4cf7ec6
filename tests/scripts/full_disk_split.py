"""Re-split a dataset's lists on a real full disk (a tiny tmpfs) at every fill level; needs root.

    sudo python tests/scripts/full_disk_split.py [--lists dataset/demo]

For each amount of free space from 0 to enough, the split must either fail with ENOSPC and leave
every file as it was (lists untouched, no .bak, no temp file), or succeed with complete backups.
The unit tests inject the same failure at every write (tests/data/test_split_lists.py); this
script shows it on a real file system. Exits 0 when every level behaves, 1 otherwise.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from paddlex_feat.data.split import split_dataset  # noqa: E402

PAGE = 4096


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "filler"}


def fill_leaving(folder: Path, free_bytes: int) -> None:
    """Fill the file system with one file until ``free_bytes`` (rounded to pages) are left."""
    (folder / "filler").unlink(missing_ok=True)
    st = os.statvfs(folder)
    size = max(st.f_bavail * st.f_frsize - free_bytes, 0)
    with open(folder / "filler", "wb") as f:
        f.truncate(0)
        f.write(b"\0" * size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", default="dataset/demo", help="folder holding train/gallery/query.txt")
    args = parser.parse_args()
    mount = Path(tempfile.mkdtemp(prefix="fulldisk."))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    failures = 0
    try:
        need = sum((Path(args.lists) / f"{n}.txt").stat().st_size for n in ("train", "gallery", "query"))
        for free_pages in range(0, 3 * need // PAGE + 12):
            ds = mount / "ds"
            shutil.rmtree(ds, ignore_errors=True)
            ds.mkdir()
            for n in ("train", "gallery", "query"):
                shutil.copy(Path(args.lists) / f"{n}.txt", ds / f"{n}.txt")
            before = snapshot(ds)
            fill_leaving(ds, free_pages * PAGE)
            try:
                split_dataset(ds, 70, 20, 10, seed=0, by_class=False)
                ok = all((ds / f"{n}.bak").read_bytes() == before[n] for n in before)
                outcome = "split done, backups complete" if ok else "split done, BACKUP WRONG"
            except OSError as err:
                ok = err.errno == errno.ENOSPC and snapshot(ds) == before
                outcome = "ENOSPC, nothing changed" if ok else f"{err}: FILES CHANGED"
            failures += not ok
            print(f"free {free_pages * PAGE:>7} bytes: {outcome}")
            (ds / "filler").unlink()
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()
    print("PASS" if not failures else f"FAIL: {failures} fill levels changed the lists")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
