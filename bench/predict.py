"""Benchmark: our predictor vs PaddleX 3.7.2's on the same exported folder, in one run.

Each side runs in its own process and venv (ours: ``--our-python``, default this python; PaddleX:
``--ref-python``, default ``.venv-ref/bin/python``), one after the
other, with the same number of CPU math threads. Reported per side:

* model-only ms/img at batch 1 (a prepared [1, 3, 224, 224] tensor, no pre/post-processing);
* end-to-end ms/img at batch 1 (file path in, normalised feature out) over --e2e-images images;
* images/s at batch 8 over --num-images images of the shared emoji data.

    .venv/bin/python bench/predict.py [--model-dir DIR] [--num-images 500] [--threads N]

Without --model-dir an (untrained) PP-ShiTuV2_rec is exported into a temp folder first. The
machine may be shared with other jobs while this runs: compare the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from paths import bench_dataset, ref_python, require_ref_python

ROOT = Path(__file__).resolve().parents[1]

# The timing code both sides run; only how the model is created and called differs.
_COMMON = """
import json, sys, time
import numpy as np
cfg = json.loads(sys.argv[1])
paths = cfg["paths"]

def timed(fn, repeat):
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat

x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype("float32")
for _ in range(10):
    run_model(x)
model_ms = timed(lambda: run_model(x), cfg["model_repeat"]) * 1000

e2e = paths[: cfg["e2e_images"]]
list(predict(paths[:5], 1))
start = time.perf_counter()
n = sum(1 for _ in predict(e2e, 1))
e2e_ms = (time.perf_counter() - start) / n * 1000

list(predict(paths[:8], 8))
start = time.perf_counter()
n8 = sum(1 for _ in predict(paths, 8))
ips = n8 / (time.perf_counter() - start)
print("RESULT " + json.dumps({"model_ms_b1": model_ms, "e2e_ms_b1": e2e_ms, "images_per_s_b8": ips, "images": n8}))
"""

_OURS = """
import json, sys
from paddlex_feat.api import create_model
cfg = json.loads(sys.argv[1])
model = create_model(cfg["model_name"], model_dir=cfg["model_dir"], device="cpu", cpu_threads=cfg["threads"])
run_model = model.run_batch
def predict(paths, batch_size):
    return model.predict(paths, batch_size=batch_size)
"""

_PADDLEX = """
import json, sys
from paddlex import create_model
cfg = json.loads(sys.argv[1])
model = create_model(model_name=cfg["model_name"], model_dir=cfg["model_dir"], device="cpu")
def run_model(x):
    return model.runner(x=[x])
def predict(paths, batch_size):
    return model.predict(paths, batch_size=batch_size)
"""

_EXPORT = """
import sys
from paddlex_feat.engine.export import export_inference
from paddlex_feat.models import build_model
model = build_model(sys.argv[1], 10)
model.eval()
export_inference(model, sys.argv[1], sys.argv[2])
"""


def run_side(python: Path, setup: str, cfg: dict, env: dict) -> dict:
    """Run one side in its own process; returns its RESULT line."""
    proc = subprocess.run(
        [str(python), "-c", setup + _COMMON, json.dumps(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{python} failed with exit code {proc.returncode}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> int:
    """Run both sides and print a table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir")
    parser.add_argument("--model-name", default="PP-ShiTuV2_rec")
    parser.add_argument("--images", default=str(bench_dataset() / "images"), help="env BENCH_DATASET")
    parser.add_argument("--our-python", default=sys.executable)
    parser.add_argument("--ref-python", default=str(ref_python()), help="env REF_PYTHON")
    parser.add_argument("--num-images", type=int, default=500)
    parser.add_argument("--e2e-images", type=int, default=100)
    parser.add_argument("--model-repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    model_dir = args.model_dir
    if not model_dir:
        model_dir = str(Path(tempfile.mkdtemp(prefix="pxf_bench_")) / "inference")
        subprocess.run([args.our_python, "-c", _EXPORT, args.model_name, model_dir], check=True, cwd=ROOT)
    paths = sorted(str(p) for p in Path(args.images).rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    paths = paths[:: max(1, len(paths) // args.num_images)][: args.num_images]
    cfg = {
        "model_name": args.model_name,
        "model_dir": model_dir,
        "paths": paths,
        "threads": args.threads,
        "e2e_images": args.e2e_images,
        "model_repeat": args.model_repeat,
    }
    # the same math-thread count for both; PaddleX reads it from this variable (its default is 10)
    env = {**os.environ, "PADDLE_PDX_CPU_NUM_THREADS": str(args.threads), "GLOG_minloglevel": "2"}
    ours = run_side(Path(args.our_python), _OURS, cfg, env)
    theirs = run_side(require_ref_python(args.ref_python), _PADDLEX, cfg, env)

    rows = [
        ("model-only ms/img, batch 1", "model_ms_b1", False),
        ("end-to-end ms/img, batch 1", "e2e_ms_b1", False),
        (f"images/s, batch 8 ({len(paths)} imgs)", "images_per_s_b8", True),
    ]
    print(f"model {args.model_name}, {args.threads} CPU threads, folder {model_dir}")
    print(f"{'metric':36} {'paddlex_feat':>12} {'PaddleX 3.7.2':>14} {'speed-up':>9}")
    for label, key, higher_is_better in rows:
        ratio = ours[key] / theirs[key] if higher_is_better else theirs[key] / ours[key]
        print(f"{label:36} {ours[key]:12.2f} {theirs[key]:14.2f} {ratio:8.2f}x")
    print(json.dumps({"ours": ours, "paddlex": theirs, "threads": args.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
