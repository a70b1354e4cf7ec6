"""A real read-only output folder and a real full disk, through the CLI; needs root (mounts tmpfs).

    sudo python tests/scripts/unwritable_output.py

Both must end in one paragraph naming the path and the errno, exit 1, and no traceback or "bug".
The unit tests (tests/cli/test_cli.py) raise the same errors at the same places without mounting.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def run_check_dataset(output: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "-c", str(CONFIG), "-o", "Global.mode=check_dataset",
         "-o", f"Global.dataset_dir={ROOT / 'dataset' / 'demo'}", "-o", f"Global.output={output}"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip


def case(options: str, expect: str) -> bool:
    mount = Path(tempfile.mkdtemp(prefix="unwritable."))
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    try:
        proc = run_check_dataset(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()
    lines = [line for line in proc.stderr.splitlines() if "failed" in line]
    print(f"tmpfs -o {options}: exit {proc.returncode}: {lines[-1] if lines else proc.stderr[-400:]}")
    return (
        proc.returncode == 1
        and bool(lines)
        and expect in lines[-1]
        and str(mount) in lines[-1]
        and ("Traceback" not in proc.stderr and "bug" not in proc.stderr)
    )


def main() -> int:
    ok = case("ro,size=1m", "(errno 30 EROFS)") & case("size=64k", "(errno 28 ENOSPC)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
