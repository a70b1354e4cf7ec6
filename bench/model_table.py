"""Benchmark: the seed's model table on this machine (model-only ms at batch 1, normal and high-performance).

For each model (random init, exported at 224) it times, in one process and interleaved round by
round so that load from other jobs hits every column alike:

* normal mode: Paddle Inference with oneDNN, fp32;
* high-performance mode, fp32: every installed backend (OpenVINO, ONNX Runtime); the table shows the
  best, which is what ``use_hpip=True`` picks;
* high-performance mode, bf16 (OpenVINO), where the CPU has native bf16;
* with ``--paddlex``: PaddleX 3.7.2's normal mode on the same PP-ShiTuV2_rec folder, in a child
  process of /work/ref_venv that takes timing requests over a pipe (same thread count).

Model-only times are the median of ``--runs`` runs of a [1, 3, 224, 224] tensor after warm-up;
end-to-end times (file path in, normalised feature out, batch 1) use the demo images. The markdown
table goes to bench/results/model_table.md.

    .venv/bin/python bench/model_table.py [--paddlex] [--models PP-ShiTuV2_rec ...] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF_PYTHON = Path("/work/ref_venv/bin/python")
DEMO_IMAGES = ROOT / "dataset" / "demo" / "images"
MODELS = ("PP-ShiTuV2_rec", "PP-ShiTuV2_rec_CLIP_vit_base", "PP-ShiTuV2_rec_CLIP_vit_large")
SHITU = "PP-ShiTuV2_rec"
ROUNDS = 5  # the runs are split into this many interleaved rounds
LAST_TIMES: dict[str, list[float]] = {}  # the raw runs of the latest interleaved() call
SETTLE_S = 0.5  # pause between sides (OpenMP/TBB/ORT pools spin for up to ~200 ms after a run)

# PaddleX side: a small server that answers "model N" / "e2e" requests with timings, one JSON per line.
_PADDLEX_SERVER = """
import json, sys, time
import numpy as np
from paddlex import create_model
cfg = json.loads(sys.argv[1])
model = create_model(model_name=cfg["model_name"], model_dir=cfg["model_dir"], device="cpu")
x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype("float32")
print("READY", flush=True)
for line in sys.stdin:
    cmd, arg = line.split(maxsplit=1)
    times = []
    if cmd == "model":
        for _ in range(int(arg)):
            t = time.perf_counter(); model.runner(x=[x]); times.append(time.perf_counter() - t)
    else:
        for path in json.loads(arg):
            t = time.perf_counter(); list(model.predict(path, batch_size=1)); times.append(time.perf_counter() - t)
    print(json.dumps(times), flush=True)
"""


class PaddleXSide:
    """PaddleX 3.7.2 in its own venv and process, timed on request."""

    def __init__(self, model_dir: Path, threads: int) -> None:
        env = {**os.environ, "PADDLE_PDX_CPU_NUM_THREADS": str(threads), "GLOG_minloglevel": "2"}
        cfg = json.dumps({"model_name": SHITU, "model_dir": str(model_dir)})
        self.proc = subprocess.Popen(
            [str(REF_PYTHON), "-c", _PADDLEX_SERVER, cfg],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd="/tmp",  # never pick up our package from the checkout
            env=env,
        )
        line = ""
        while line.strip() != "READY":
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"PaddleX ({REF_PYTHON}) failed to load {model_dir}")

    def _ask(self, request: str) -> list[float]:
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def model_times(self, runs: int) -> list[float]:
        return self._ask(f"model {runs}")

    def e2e_times(self, paths: list[str]) -> list[float]:
        return self._ask(f"e2e {json.dumps(paths)}")

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def export_model(model_name: str, work_dir: Path) -> Path:
    """Export a randomly initialised model once (reused on later runs)."""
    import paddle

    from paddlex_feat.engine.export import export_inference
    from paddlex_feat.models import build_model

    folder = work_dir / model_name
    if not (folder / "inference.pdiparams").is_file():
        paddle.seed(0)
        model = build_model(model_name, 100)
        model.eval()
        export_inference(model, model_name, folder)
        del model
        gc.collect()
    return folder


def model_size_mb(folder: Path) -> float:
    """Program plus parameters, in MiB (what a user downloads, without the ONNX cache)."""
    files = [folder / "inference.pdiparams", folder / "inference.json", folder / "inference.pdmodel"]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def interleaved(
    sides: dict[str, Callable[[int], list[float]]],
    runs: int,
    rounds: int = ROUNDS,
    stat: Callable = np.median,
) -> dict[str, float]:
    """``stat`` (median) ms per side, each side timed in turn ``rounds`` times (``runs`` runs in all)."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, timed in sides.items():
            # let the previous side's worker threads stop spin-waiting: on 2 cores they steal the CPU
            time.sleep(SETTLE_S)
            times[name] += timed(per_round)
    LAST_TIMES.clear()
    LAST_TIMES.update(times)
    return {name: float(stat(t)) * 1000 for name, t in times.items()}


def timer(fn: Callable[[], Any]) -> Callable[[int], list[float]]:
    """Wrap a call as 'run it n times, return each duration'."""

    def timed(n: int) -> list[float]:
        out = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return out

    return timed


def e2e_timer(model: Any, paths: list[str]) -> Callable[[int], list[float]]:
    """Per-image end-to-end times over the next ``n`` demo images (cycling)."""
    state = {"next": 0}

    def timed(n: int) -> list[float]:
        chunk = [paths[(state["next"] + i) % len(paths)] for i in range(n)]
        state["next"] += n
        out = []
        for path in chunk:
            start = time.perf_counter()
            for _ in model.predict(path, batch_size=1):
                pass
            out.append(time.perf_counter() - start)
        return out

    return timed


def bench_model(
    model_name: str, folder: Path, args: argparse.Namespace, paths: list[str], bf16: bool
) -> dict[str, Any]:
    """Time every column for one model; returns ms figures and which backend won."""
    from paddlex_feat.api import create_model
    from paddlex_feat.inference.backends import is_installed

    threads = args.threads
    make = lambda **kw: create_model(model_name, model_dir=folder, cpu_threads=threads, **kw)  # noqa: E731
    models = {"normal": make()}
    for backend in ("openvino", "onnxruntime"):
        if is_installed(backend):
            models[f"hp_{backend}"] = make(use_hpip=True, hpi_config={"backend": backend})
    if bf16:
        models["hp_bf16"] = make(use_hpip=True, hpi_config={"backend": "openvino", "precision": "bf16"})
    x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype("float32")
    sides = {name: timer(lambda m=m: m.run_batch(x)) for name, m in models.items()}
    paddlex = PaddleXSide(folder, threads) if args.paddlex and model_name == SHITU else None
    try:
        if paddlex is not None:
            sides["paddlex"] = paddlex.model_times
        for side in sides.values():  # warm-up: kernels, caches, thread pools
            side(args.warmup)
        model_ms = interleaved(sides, args.runs)
        # the fastest run is the least disturbed by other jobs on a shared machine: reported beside
        model_min_ms = {name: min(t) * 1000 for name, t in LAST_TIMES.items()}
        e2e_ms: dict[str, float] = {}
        if model_name == SHITU and args.e2e_images:
            e2e_sides = {name: e2e_timer(m, paths) for name, m in models.items()}
            if paddlex is not None:
                cursor = {"next": 0}

                def paddlex_e2e(n: int) -> list[float]:
                    chunk = [paths[(cursor["next"] + i) % len(paths)] for i in range(n)]
                    cursor["next"] += n
                    return paddlex.e2e_times(chunk)

                e2e_sides["paddlex"] = paddlex_e2e
            for side in e2e_sides.values():
                side(3)
            e2e_ms = interleaved(e2e_sides, args.e2e_images)
    finally:
        if paddlex is not None:
            paddlex.close()
    fp32 = {k: v for k, v in model_ms.items() if k in ("hp_openvino", "hp_onnxruntime")}
    best = min(fp32, key=fp32.get) if fp32 else None
    return {
        "model": model_name,
        "size_mb": model_size_mb(folder),
        "model_ms": model_ms,
        "model_min_ms": model_min_ms,
        "e2e_ms": e2e_ms,
        "best_fp32_backend": best[3:] if best else None,
    }


def cpu_name() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor() or "unknown CPU"
    return platform.processor() or "unknown CPU"


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(results: list[dict], args: argparse.Namespace, bf16: bool, elapsed_s: float) -> str:
    """The table and its note."""
    from paddlex_feat.inference.backends.base import cpu_flags

    names = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}
    flags = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in cpu_flags()]
    lines = [
        f"Model-only inference time at batch 1 (ms, median of {args.runs} runs after {args.warmup} warm-up), "
        f"CPU, {args.threads} threads for every column.",
        "",
        "| model | normal (Paddle Inference, fp32) | high-performance fp32 (best backend) | "
        "high-performance bf16 (OpenVINO) | PaddleX 3.7.2 normal | size MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        ms = r["model_ms"]
        best = r["best_fp32_backend"]
        hp = f"{ms['hp_' + best]:.2f} ({names[best]})" if best else "-"
        lines.append(
            f"| {r['model']} | {fmt(ms.get('normal'))} | {hp} | {fmt(ms.get('hp_bf16'))} | "
            f"{fmt(ms.get('paddlex'))} | {r['size_mb']:.1f} |"
        )
    lines += [
        "",
        "All fp32 backends measured (ms): "
        + "; ".join(
            f"{r['model']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["model_ms"].items()) for r in results
        ),
    ]
    shitu = next((r for r in results if r["model"] == SHITU), None)
    if shitu and shitu["e2e_ms"]:
        e2e = shitu["e2e_ms"]
        lines += [
            "",
            f"End-to-end, {SHITU}, batch 1 (ms per image: read, decode, resize, normalise, model, L2-normalise; "
            f"{args.e2e_images} demo images): " + ", ".join(f"{k} {v:.2f}" for k, v in e2e.items()),
        ]
    if shitu and "paddlex" in shitu["model_ms"]:
        ms, px = shitu["model_ms"], shitu["model_ms"]["paddlex"]
        best = shitu["best_fp32_backend"]
        ratios = [f"normal {px / ms['normal']:.2f}x"]
        if best:
            ratios.append(f"high-performance fp32 {px / ms['hp_' + best]:.2f}x (goal 1.8x)")
        if "hp_bf16" in ms:
            ratios.append(f"high-performance bf16 {px / ms['hp_bf16']:.2f}x (goal 4x)")
        lines += [
            "",
            f"Speed-up over PaddleX 3.7.2 normal mode on {SHITU}, model-only, same run: "
            + ", ".join(ratios)
            + ".",
        ]
        if shitu["e2e_ms"].get("paddlex"):
            e2e = shitu["e2e_ms"]
            lines[-1] += (
                " End-to-end: "
                + ", ".join(f"{k} {e2e['paddlex'] / v:.2f}x" for k, v in e2e.items() if k != "paddlex")
                + "."
            )
        fastest = shitu["model_min_ms"]  # the least disturbed run of each side, on a shared machine
        lines[-1] += (
            " Model-only, fastest run instead of median: "
            + ", ".join(f"{k} {fastest['paddlex'] / v:.2f}x" for k, v in fastest.items() if k != "paddlex")
            + "."
        )
    run_models = [r["model"] for r in results]
    skipped = [m for m in MODELS if m not in run_models]
    lines += [
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores ({', '.join(flags) or 'no AVX-512'}), no GPU used; "
        f"the machine was shared with other jobs while measuring, so compare ratios within this run. "
        f"bf16 column: {'native bf16 on this CPU' if bf16 else 'not measured (no native bf16 on this CPU)'}. "
        f"Models: random init, exported at 224; ran {', '.join(run_models)}"
        + (f"; not run this time: {', '.join(skipped)}" if skipped else "")
        + f". {datetime.date.today().isoformat()}, {elapsed_s / 60:.1f} min.",
        "",
        "Command: `" + " ".join(["python", "bench/model_table.py", *sys.argv[1:]]) + "`",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Export, time and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--paddlex", action="store_true", help="add PaddleX 3.7.2's normal mode (PP-ShiTuV2_rec)"
    )
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--e2e-images", type=int, default=50, help="0 skips the end-to-end timing")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 column")
    parser.add_argument("--work-dir", default="/tmp/pxf_model_table", help="exported models (reused)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_table.md"))
    args = parser.parse_args()

    from paddlex_feat.inference.backends import cpu_has_bf16
    from paddlex_feat.utils.logger import setup_logging

    setup_logging()
    if args.paddlex and not REF_PYTHON.is_file():
        raise SystemExit(f"--paddlex needs PaddleX 3.7.2 at {REF_PYTHON}")
    bf16 = cpu_has_bf16() and not args.no_bf16
    paths = sorted(str(p) for p in DEMO_IMAGES.rglob("*.jpg"))
    start = time.perf_counter()
    results = []
    for name in args.models:
        folder = export_model(name, Path(args.work_dir))
        results.append(bench_model(name, folder, args, paths, bf16))
        gc.collect()
        print(json.dumps(results[-1]), flush=True)
    table = markdown(results, args, bf16, time.perf_counter() - start)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
