"""The README's demo training figure: wall time, recall@1 per epoch and the best epoch, with date and machine.

    python bench/demo_training.py                      # the README's first command (8 epochs at 64 px)
    python bench/demo_training.py --epochs 1 --input-size 224 --cpu-processes 1 --no-dy2st   # 224 px, one epoch

Runs ``main.py`` exactly as the README shows (offline: from scratch on ``dataset/demo``) in a fresh
output folder and writes ``bench/results/demo_training.md``. The run is deterministic (seeded), so
the recall figures repeat; the time depends on the machine and its load, which the file records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"


def machine() -> str:
    """CPU model and core count (and load), as the README states it."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    flags = Path("/proc/cpuinfo").read_text()
    extras = [
        name for flag, name in (("avx512f", "AVX-512"), ("amx_bf16", "AMX-bf16")) if f" {flag}" in flags
    ]
    return f"{model}, {os.cpu_count()} cores{', ' + ', '.join(extras) if extras else ''}, load {os.getloadavg()[0]:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--cpu-processes", type=int, default=2)
    parser.add_argument("--no-dy2st", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "demo_training.md"))
    args = parser.parse_args()
    output = Path(tempfile.mkdtemp(prefix="demo_training."))
    overrides = [
        "Global.mode=train", "Global.device=cpu", "Train.pretrain_weight_path=null",
        f"Train.input_size={args.input_size}", "Train.batch_size=64", "Train.learning_rate=0.04",
        "Train.warmup_steps=1", f"Train.epochs_iters={args.epochs}", f"Train.cpu_processes={args.cpu_processes}",
        f"Train.dy2st={not args.no_dy2st}", f"Global.output={output}",
    ]  # fmt: skip
    command = [sys.executable, "main.py", "-c", str(CONFIG.relative_to(ROOT))]
    for o in overrides:
        command += ["-o", o]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    minutes, secs = divmod(round(seconds), 60)  # whole minutes: ":.0f" of seconds / 60 rounded 6.7 up to 7
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    recall = {r["epoch"]: r["metrics"]["recall1"] for r in rows if r["type"] == "epoch" and r.get("metrics")}
    best = json.loads((output / "train_result.json").read_text())["best_epoch"]
    text = (
        f"# README demo training ({time.strftime('%Y-%m-%d')}, {machine()})\n\n"
        f"`{' '.join(command[1:3])} ... {' '.join('-o ' + o for o in overrides[:-1])}`\n\n"
        f"- wall time: {minutes} min {secs} s ({args.epochs} epoch{'s' if args.epochs != 1 else ''}, input {args.input_size})\n"
        f"- recall@1 per epoch: {', '.join(f'{e}: {v:.3f}' for e, v in sorted(recall.items()))}\n"
        f"- best epoch: {best} (recall@1 {recall.get(best, float('nan')):.3f})\n"
    )
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
