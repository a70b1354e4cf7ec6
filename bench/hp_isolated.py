"""Model-only batch-1 latency of each backend in its own fresh process, PaddleX 3.7.2 included.

    python bench/hp_isolated.py [--model-dir DIR] [--runs 100] [--threads 2] [--rounds 2]

bench/model_table.py keeps every backend alive in one process and interleaves them; on 2 cores
their idle worker threads (OpenMP, TBB, ONNX Runtime) still disturb each other. Here each
backend runs alone in a new process, one after the other, ``--rounds`` times in turn; the
figure is the median over all its runs. PaddleX runs from /work/ref_venv (or --ref-python).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

_TIMING = """
import json, sys, time
import numpy as np
cfg = json.loads(sys.argv[1])
x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype("float32")
for _ in range(20):
    run(x)
times = []
for _ in range(cfg["runs"]):
    t = time.perf_counter(); run(x); times.append(time.perf_counter() - t)
print("RESULT " + json.dumps(times))
"""

_OURS = """
import json, sys
from paddlex_feat.api import create_model
cfg = json.loads(sys.argv[1])
kw = {} if cfg["backend"] == "normal" else {"use_hpip": True, "hpi_config": {"backend": cfg["backend"], "precision": cfg["precision"]}}
model = create_model("PP-ShiTuV2_rec", model_dir=cfg["model_dir"], device="cpu", cpu_threads=cfg["threads"], **kw)
run = model.run_batch
"""

_PADDLEX = """
import json, sys
from paddlex import create_model
cfg = json.loads(sys.argv[1])
model = create_model(model_name="PP-ShiTuV2_rec", model_dir=cfg["model_dir"], device="cpu")
run = lambda x: model.runner(x=[x])
"""

_EXPORT = """
import sys
from paddlex_feat.engine.export import export_inference
from paddlex_feat.models import build_model
model = build_model("PP-ShiTuV2_rec", 10)
export_inference(model, "PP-ShiTuV2_rec", sys.argv[1])
"""


def side(python: str, setup: str, cfg: dict) -> list[float]:
    """Run one backend in a fresh process; returns its per-run seconds."""
    proc = subprocess.run(
        [python, "-c", setup + _TIMING, json.dumps(cfg)], capture_output=True, text=True, cwd=ROOT
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-2000:])
        raise SystemExit(f"{cfg.get('backend', 'paddlex')} failed with exit code {proc.returncode}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    """Time every backend alone and print medians and ratios to PaddleX."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ref-python", default="/work/ref_venv/bin/python")
    args = parser.parse_args()
    model_dir = args.model_dir
    if not model_dir:
        model_dir = str(Path(tempfile.mkdtemp(prefix="pxf_hp_")) / "inference")
        subprocess.run([sys.executable, "-c", _EXPORT, model_dir], check=True, cwd=ROOT, capture_output=True)
    cases = {
        "paddlex normal": (args.ref_python, _PADDLEX, {}),
        "ours normal": (sys.executable, _OURS, {"backend": "normal", "precision": "fp32"}),
        "ours openvino fp32": (sys.executable, _OURS, {"backend": "openvino", "precision": "fp32"}),
        "ours onnxruntime fp32": (sys.executable, _OURS, {"backend": "onnxruntime", "precision": "fp32"}),
        "ours openvino bf16": (sys.executable, _OURS, {"backend": "openvino", "precision": "bf16"}),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (python, setup, extra) in cases.items():
            cfg = {"model_dir": model_dir, "runs": args.runs, "threads": args.threads, **extra}
            times[name] += side(python, setup, cfg)
    base = float(np.median(times["paddlex normal"]))
    print(
        f"PP-ShiTuV2_rec, batch 1, model only, {args.threads} threads, each backend alone in a fresh process"
    )
    print("| backend | median ms | min ms | vs PaddleX normal (median) |")
    print("|---|---|---|---|")
    for name, t in times.items():
        med = float(np.median(t))
        print(f"| {name} | {med * 1000:.2f} | {min(t) * 1000:.2f} | {base / med:.2f}x |")


if __name__ == "__main__":
    main()
