"""SIGTERM and SIGKILL of a real training run with data-loader workers (issue: orphaned workers).

    python tests/scripts/signals_train.py

1. SIGTERM during an epoch: the run stops like Ctrl-C, prints one line with the resume override,
   exits 143, and leaves no worker behind.
2. SIGKILL of the training process (nothing in it can run): its loader workers die with it.
Exits 0 when both hold. Unit tests cover the pieces (tests/utils/test_signals.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "engine"))
from test_train import CONFIG, make_dataset  # noqa: E402


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_training(dataset: Path, output: Path) -> subprocess.Popen:
    args = [sys.executable, str(ROOT / "main.py"), "-c", str(CONFIG)]
    for o in (
        "Global.mode=train",
        "Global.device=cpu",
        f"Global.dataset_dir={dataset}",
        f"Global.output={output}",
        "Train.pretrain_weight_path=null",
        "Train.num_classes=6",
        "Train.input_size=32",
        "Train.batch_size=8",
        "Train.num_workers=2",
        "Train.warmup_steps=0",
        "Train.epochs_iters=50",
        "Evaluate.num_workers=0",
    ):
        args += ["-o", o]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def wait_for_epoch(proc: subprocess.Popen, epoch: int) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if f"epoch {epoch} step 1/" in line:
            return lines
    raise RuntimeError("training ended early:\n" + "".join(lines[-20:]))


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        dataset = make_dataset(Path(tmp) / "d")
        proc = start_training(dataset, Path(tmp) / "term")
        wait_for_epoch(proc, 2)
        workers = children_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        rc = proc.wait()
        stopped = [line for line in rest.splitlines() if "Stopped by SIGTERM" in line]
        print(f"SIGTERM: exit {rc}; {stopped[-1].split('ERROR ')[-1] if stopped else rest[-500:]}")
        time.sleep(1)
        ok &= rc == 143 and bool(stopped) and "Traceback" not in rest and "Train.resume_path=" in stopped[-1]
        ok &= not any(alive(w) for w in workers)

        proc = start_training(dataset, Path(tmp) / "kill")
        wait_for_epoch(proc, 2)
        workers = children_of(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [w for w in workers if alive(w)]
        print(f"SIGKILL: {len(workers)} worker(s) before, {len(left)} alive after")
        ok &= bool(workers) and not left
        for w in left:
            os.kill(w, signal.SIGKILL)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
