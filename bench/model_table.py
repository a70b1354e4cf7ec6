"""Benchmark: the seed's model table on this machine (model-only ms at batch 1, normal and high-performance).

For each model (random init, exported at 224) every column runs in its own worker process:

* normal mode: Paddle Inference with oneDNN, fp32;
* high-performance mode, fp32: every installed backend (OpenVINO, ONNX Runtime); the table shows the
  best, which is what ``use_hpip=True`` picks;
* high-performance mode, bf16 (OpenVINO), where the CPU has native bf16;
* high-performance mode, int8 (OpenVINO) for PP-ShiTuV2_rec: the model quantized as
  ``Export.precision=int8`` does it (calibrated on ``--calibration-size`` demo training images; the
  calibration time is in the note), unless ``--no-int8``;
* with ``--paddlex``: PaddleX 3.7.2's normal mode on the same PP-ShiTuV2_rec folder, from
  the reference python (``--ref-python``, default ``.venv-ref/bin/python``), with the same thread count (``PADDLE_PDX_CPU_NUM_THREADS``), and for information
  also as it ships (10 CPU threads);
* on a machine with an NVIDIA GPU and a CUDA build of Paddle, the GPU columns: Paddle Inference,
  Paddle + TensorRT (fp32, when Paddle was built with TensorRT) and ONNX Runtime's CUDA provider
  (when onnxruntime-gpu is installed).

Why workers: runtimes that share one process disturb each other (OpenMP, TBB and ONNX Runtime
pools), and this 2-core virtual machine's speed drifts by up to 2x over seconds as its host gets
busy. So every worker loads its model and warms up, then all of them are timed **round-robin in
short blocks** (``--rounds`` x ``--block`` runs each, order reversed every round, a pause between
blocks so that Paddle's OpenMP threads stop spinning): each column sees the same drift. The
figures are medians over all runs, and the ratio to PaddleX is also given per round (paired).

End-to-end (PP-ShiTuV2_rec, ``--e2e-images`` demo images): ``one`` is one ``predict(path)`` call per
image; ``stream`` is one ``predict(list_of_paths, batch_size=1)`` call, per image.

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
from typing import Any

import numpy as np
from paths import ROOT, ref_python, require_ref_python

sys.path.insert(0, str(ROOT))  # this checkout's package, as the workers use, even if another is installed

DEMO_IMAGES = ROOT / "dataset" / "demo" / "images"
MODELS = ("PP-ShiTuV2_rec", "PP-ShiTuV2_rec_CLIP_vit_base", "PP-ShiTuV2_rec_CLIP_vit_large")
SHITU = "PP-ShiTuV2_rec"
SETTLE_S = 0.25  # between blocks: Paddle's OpenMP threads spin for 200 ms after a run (KMP_BLOCKTIME)

# One column: load the model, warm up, then answer "model N" / "one PATHS" / "stream PATHS" with timings.
_WORKER = """
import json, sys, time
import numpy as np
cfg = json.loads(sys.argv[1])
if cfg["impl"] == "paddle_trt":  # GPU only: Paddle's TensorRT conversion of the program (default fp32)
    import paddle, paddle.inference as pi
    from paddle.tensorrt.export import Input, TensorRTConfig
    shapes = {"min_input_shape": [1, 3, 224, 224], "optim_input_shape": [1, 3, 224, 224],
              "max_input_shape": [8, 3, 224, 224]}
    trt = TensorRTConfig(inputs=[Input(name="x", **shapes)])
    trt.save_model_dir = cfg["trt_dir"] + "/inference"  # a prefix: .json and .pdiparams are added
    paddle.tensorrt.convert(cfg["model_dir"] + "/inference", trt)
    config = pi.Config(trt.save_model_dir + ".json", trt.save_model_dir + ".pdiparams")
    config.enable_use_gpu(256, 0)
    predictor = pi.create_predictor(config)
    handle_in = predictor.get_input_handle(predictor.get_input_names()[0])
    handle_out = predictor.get_output_handle(predictor.get_output_names()[0])
    def run(x):
        handle_in.reshape(list(x.shape)); handle_in.copy_from_cpu(x); predictor.run()
        return handle_out.copy_to_cpu()
elif cfg["impl"] == "paddlex":
    from paddlex import create_model
    model = create_model(model_name=cfg["model_name"], model_dir=cfg["model_dir"], device="cpu")
    run = lambda x: model.runner(x=[x])
else:
    sys.path.insert(0, cfg["root"])
    from paddlex_feat.api import create_model
    kw = {} if cfg["backend"] == "normal" else {
        "use_hpip": True, "hpi_config": {"backend": cfg["backend"], "precision": cfg["precision"]}}
    model = create_model(cfg["model_name"], model_dir=cfg["model_dir"], device=cfg.get("device", "cpu"),
                         cpu_threads=cfg["threads"], **kw)
    run = model.run_batch
x = np.random.default_rng(0).normal(size=(1, 3, 224, 224)).astype("float32")
for _ in range(cfg["warmup"]):
    run(x)
print("READY", flush=True)
for line in sys.stdin:
    cmd, arg = line.split(maxsplit=1)
    times = []
    if cmd == "model":
        for _ in range(int(arg)):
            t = time.perf_counter(); run(x); times.append(time.perf_counter() - t)
    elif cmd == "one":
        for path in json.loads(arg):
            t = time.perf_counter(); list(model.predict(path, batch_size=1)); times.append(time.perf_counter() - t)
    else:
        paths = json.loads(arg)
        t = time.perf_counter(); list(model.predict(paths, batch_size=1))
        times = [(time.perf_counter() - t) / len(paths)]
    print(json.dumps(times), flush=True)
"""


class Worker:
    """One column in its own process, timed on request."""

    def __init__(self, python: Path, cfg: dict[str, Any], threads: int) -> None:
        env = {**os.environ, "PADDLE_PDX_CPU_NUM_THREADS": str(threads), "GLOG_minloglevel": "2"}
        if cfg.get("paddlex_default_threads"):  # PaddleX as it ships: 10 CPU threads unless told otherwise
            del env["PADDLE_PDX_CPU_NUM_THREADS"]
        self.proc = subprocess.Popen(
            [str(python), "-c", _WORKER, json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd="/tmp",  # PaddleX's side must never import our package from the checkout
            env=env,
        )
        line = ""
        while line.strip() != "READY":
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"worker {cfg} failed to start (run its setup by hand to see why)")

    def ask(self, cmd: str, arg: Any) -> list[float]:
        """Send one request; returns the seconds it reports."""
        self.proc.stdin.write(f"{cmd} {json.dumps(arg)}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def round_robin(workers: dict[str, Worker], rounds: int, request: Any) -> dict[str, list[list[float]]]:
    """Per column, per round, the seconds of its block; ``request(name, round)`` gives (cmd, arg)."""
    times: dict[str, list[list[float]]] = {name: [] for name in workers}
    names = list(workers)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:  # no column always goes first
            time.sleep(SETTLE_S)
            times[name].append(workers[name].ask(*request(name, r)))
    return times


def summarise(times: dict[str, list[list[float]]], base: str | None) -> dict[str, dict[str, float]]:
    """Median, p10 and min ms per column; with ``base``, the per-round paired ratio base/column."""
    out = {}
    for name, blocks in times.items():
        flat = np.concatenate(blocks) * 1000
        row = {
            "median": float(np.median(flat)),
            "p10": float(np.percentile(flat, 10)),
            "min": float(flat.min()),
        }
        if base in times:
            ratios = [np.median(b0) / np.median(b) for b0, b in zip(times[base], blocks)]
            row["paired_ratio"] = float(np.median(ratios))
        out[name] = row
    return out


def paired(times: dict[str, list[list[float]]], num: str, den: str) -> float | None:
    """Median over rounds of median(num)/median(den): how many times faster ``den`` is, drift cancelled."""
    if num not in times or den not in times:
        return None
    return float(np.median([np.median(a) / np.median(b) for a, b in zip(times[num], times[den])]))


def quantize_int8(folder: Path, model_name: str, calibration_size: int) -> dict[str, Any]:
    """The int8 model as Export.precision=int8 writes it (reused while its hashes match); returns its metadata."""
    from paddlex_feat.config.loader import load_config
    from paddlex_feat.engine import quantize
    from paddlex_feat.inference.backends.int8 import int8_model_path, read_int8_meta

    program, params = folder / "inference.json", folder / "inference.pdiparams"
    try:
        int8_model_path(folder, program, params)
        return read_int8_meta(folder)
    except Exception:  # none yet, or stale: build it
        pass
    config = ROOT / "configs" / "modules" / "image_feature" / f"{model_name}.yaml"
    cfg = load_config(
        config,
        [
            f"Global.dataset_dir={ROOT / 'dataset' / 'demo'}",
            "Export.precision=int8",
            f"Export.calibration_size={calibration_size}",
            "Export.allow_accuracy_drop=True",  # random weights: the recall check is informative only
            "Export.max_recall_drop=1.0",  # ... so one quantization, no fp32-layer retry
        ],
    )
    quantize.export_int8(cfg, quantize.check_int8_request(cfg), folder, program, params, "random-init")
    return read_int8_meta(folder)


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


def columns(model_name: str, folder: Path, args: argparse.Namespace, bf16: bool) -> dict[str, tuple]:
    """Column name -> (python, worker config) for one model."""
    from paddlex_feat.inference.backends import is_installed

    base = {
        "model_name": model_name,
        "model_dir": str(folder),
        "threads": args.threads,
        "warmup": args.warmup,
    }
    ours = {**base, "impl": "ours", "root": str(ROOT), "precision": "fp32"}
    cols: dict[str, tuple] = {}
    if args.paddlex and model_name == SHITU:
        cols["paddlex"] = (Path(args.ref_python), {**base, "impl": "paddlex"})
        cols["paddlex_default"] = (
            Path(args.ref_python),
            {**base, "impl": "paddlex", "paddlex_default_threads": True},
        )
    cols["normal"] = (Path(sys.executable), {**ours, "backend": "normal"})
    for backend in ("openvino", "onnxruntime"):
        if is_installed(backend):
            cols[f"hp_{backend}"] = (Path(sys.executable), {**ours, "backend": backend})
    if bf16:
        cols["hp_bf16"] = (Path(sys.executable), {**ours, "backend": "openvino", "precision": "bf16"})
    if model_name == SHITU and not args.no_int8:  # the backend use_hpip picks for int8 on the CPU
        cols["hp_int8"] = (Path(sys.executable), {**ours, "backend": "openvino", "precision": "int8"})
    if args.gpu:  # the GPU columns: Paddle Inference, Paddle + TensorRT, ONNX Runtime CUDA
        gpu = {**ours, "device": "gpu:0"}
        cols["gpu_paddle"] = (Path(sys.executable), {**gpu, "backend": "normal"})
        if args.gpu["tensorrt"]:
            trt_dir = str(Path(args.work_dir) / f"{model_name}_trt")
            cols["gpu_paddle_trt"] = (Path(sys.executable), {**gpu, "impl": "paddle_trt", "trt_dir": trt_dir})
        if args.gpu["ort_cuda"]:
            cols["gpu_onnxruntime"] = (Path(sys.executable), {**gpu, "backend": "onnxruntime"})
    return cols


def gpu_support() -> dict[str, bool] | None:
    """What this machine can time on an NVIDIA GPU (None: no GPU or a CPU-only Paddle)."""
    import paddle

    if not paddle.device.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0:
        return None
    from paddlex_feat.inference.backends import is_installed

    trt_version = tuple(paddle.inference.get_trt_compile_version()) if hasattr(paddle, "inference") else ()
    ort_cuda = False
    if is_installed("onnxruntime"):
        from paddlex_feat.inference.backends.onnxruntime_runner import cuda_provider_available

        ort_cuda = cuda_provider_available()
    return {"tensorrt": any(trt_version), "ort_cuda": ort_cuda}


def bench_model(
    model_name: str, folder: Path, args: argparse.Namespace, paths: list[str], bf16: bool
) -> dict[str, Any]:
    """Time every column of one model; returns the summaries and which fp32 backend won."""
    workers: dict[str, Worker] = {}
    try:
        for name, (python, cfg) in columns(model_name, folder, args, bf16).items():
            workers[name] = Worker(python, cfg, args.threads)  # one at a time: loading is not timed
        base = "paddlex" if "paddlex" in workers else None
        model_times = round_robin(workers, args.rounds, lambda n, r: ("model", args.block))
        model = summarise(model_times, base)
        best_col = min(
            (k for k in model if k in ("hp_openvino", "hp_onnxruntime")),
            key=lambda k: model[k]["median"],
            default=None,
        )
        int8_ratios = {"model": int8_paired(model_times, best_col)}
        e2e: dict[str, dict] = {}
        if model_name == SHITU and args.e2e_images:
            chunk = max(1, args.e2e_images // args.rounds)

            def one(name: str, r: int) -> tuple[str, list[str]]:
                return "one", [paths[(r * chunk + i) % len(paths)] for i in range(chunk)]

            one_times = round_robin(workers, args.rounds, one)
            e2e["one"] = summarise(one_times, base)
            int8_ratios["one"] = int8_paired(one_times, best_col)
            stream = paths[: args.e2e_images]
            stream_times = round_robin(workers, max(3, args.rounds // 4), lambda n, r: ("stream", stream))
            e2e["stream"] = summarise(stream_times, base)
            int8_ratios["stream"] = int8_paired(stream_times, best_col)
    finally:
        for worker in workers.values():
            worker.close()
    return {
        "model": model_name,
        "size_mb": model_size_mb(folder),
        "model_ms": model,
        "e2e_ms": e2e,
        "best_fp32_backend": best_col[3:] if best_col else None,
        "int8_paired": int8_ratios if "hp_int8" in model else {},
    }


def int8_paired(times: dict[str, list[list[float]]], best_fp32: str | None) -> dict[str, float | None]:
    """int8's paired speed-ups over the best hp fp32 backend (goal 1.8x) and PaddleX normal (goal 2.5x)."""
    return {
        "over_hp_fp32": paired(times, best_fp32, "hp_int8") if best_fp32 else None,
        "over_paddlex": paired(times, "paddlex", "hp_int8"),
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


def fmt(row: dict | None, key: str = "median") -> str:
    return "-" if row is None else f"{row[key]:.2f}"


def markdown(results: list[dict], args: argparse.Namespace, bf16: bool, elapsed_s: float) -> str:
    """The table and its notes."""
    from paddlex_feat.inference.backends.base import cpu_flags

    names = {"openvino": "OpenVINO", "onnxruntime": "ONNX Runtime"}
    flags = [
        f
        for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        if f in cpu_flags()
    ]
    runs = args.rounds * args.block
    lines = [
        f"Model-only inference time at batch 1 (ms, median of {runs} runs after {args.warmup} warm-up, "
        f"timed round-robin in {args.rounds} blocks of {args.block}), CPU, {args.threads} threads for every column.",
        "",
        "| model | normal (Paddle Inference, fp32) | high-performance fp32 (best backend) | "
        "high-performance bf16 (OpenVINO) | high-performance int8 (OpenVINO) | PaddleX 3.7.2 normal | size MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ms, best = r["model_ms"], r["best_fp32_backend"]
        hp = f"{ms['hp_' + best]['median']:.2f} ({names[best]})" if best else "-"
        lines.append(
            f"| {r['model']} | {fmt(ms.get('normal'))} | {hp} | {fmt(ms.get('hp_bf16'))} | "
            f"{fmt(ms.get('hp_int8'))} | {fmt(ms.get('paddlex'))} | {r['size_mb']:.1f} |"
        )
    if args.gpu is not None:
        lines += [
            "",
            "GPU, batch 1, model only (ms, median): Paddle Inference | Paddle + TensorRT fp32 | ONNX Runtime CUDA",
            "",
            "| model | Paddle Inference | Paddle + TensorRT | ONNX Runtime CUDA |",
            "|---|---|---|---|",
        ]
        for r in results:
            ms = r["model_ms"]
            lines.append(
                f"| {r['model']} | {fmt(ms.get('gpu_paddle'))} | {fmt(ms.get('gpu_paddle_trt'))} | "
                f"{fmt(ms.get('gpu_onnxruntime'))} |"
            )
    lines += ["", "Every column, model only (ms: median / p10 / fastest):", ""]
    for r in results:
        lines.append(
            f"- {r['model']}: "
            + "; ".join(
                f"{k} {v['median']:.2f} / {v['p10']:.2f} / {v['min']:.2f}" for k, v in r["model_ms"].items()
            )
        )
    shitu = next((r for r in results if r["model"] == SHITU), None)
    if shitu and "paddlex" in shitu["model_ms"]:
        ms, best = shitu["model_ms"], shitu["best_fp32_backend"]
        px = ms["paddlex"]

        def ratios(col: str) -> str:
            return (
                f"{px['median'] / ms[col]['median']:.2f}x (paired per round {ms[col]['paired_ratio']:.2f}x, "
                f"p10 {px['p10'] / ms[col]['p10']:.2f}x)"
            )

        parts = [f"normal {ratios('normal')}"]
        if best:
            parts.append(f"high-performance fp32 ({names[best]}) {ratios('hp_' + best)}, goal 1.8x")
        if "hp_bf16" in ms:
            parts.append(f"high-performance bf16 {ratios('hp_bf16')}, goal 4x")
        if "hp_int8" in ms:
            parts.append(f"high-performance int8 {ratios('hp_int8')}")
        lines += [
            "",
            f"Speed-up over PaddleX 3.7.2 normal mode, {SHITU}, model only, same run: "
            + "; ".join(parts)
            + ".",
        ]
        if "paddlex_default" in ms:
            pxd = ms["paddlex_default"]["median"]
            lines[-1] += (
                f" PaddleX as it ships (its default of 10 CPU threads, not {args.threads}): {pxd:.2f} ms, "
                + ", ".join(
                    f"{k} {pxd / ms[k]['median']:.2f}x"
                    for k in ("normal", f"hp_{best}", "hp_bf16", "hp_int8")
                    if k in ms
                )
                + " (for information; the goals use the same thread count)."
            )
    if shitu and shitu["e2e_ms"]:
        for kind, what in (
            ("one", "one `predict(path)` call per image"),
            ("stream", f"one `predict(paths, batch_size=1)` call over {args.e2e_images} images"),
        ):
            e2e = shitu["e2e_ms"][kind]
            text = ", ".join(f"{k} {v['median']:.2f}" for k, v in e2e.items())
            if "paddlex" in e2e:
                text += "; speed-up over PaddleX (ratio of medians, paired per round): " + ", ".join(
                    f"{k} {e2e['paddlex']['median'] / v['median']:.2f}x / {v['paired_ratio']:.2f}x"
                    for k, v in e2e.items()
                    if k not in ("paddlex", "paddlex_default")
                )
            lines += [
                "",
                f"End-to-end, {SHITU}, ms per image ({what}; read, decode, resize, normalise, model, L2): {text}.",
            ]
    if shitu and shitu["int8_paired"]:
        lines += ["", int8_note(shitu, args)]
    run_models = [r["model"] for r in results]
    skipped = [m for m in MODELS if m not in run_models]
    lines += [
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores ({', '.join(flags) or 'no AVX-512'}), "
        + (f"GPU: {args.gpu_name}. " if args.gpu is not None else "no GPU (the GPU columns need one). ")
        + f"bf16 column: {'native bf16 on this CPU' if bf16 else 'not measured (no native bf16 on this CPU)'}. "
        f"Models: random init, exported at 224; ran {', '.join(run_models)}"
        + (f"; not run this time: {', '.join(skipped)}" if skipped else "")
        + f". {datetime.date.today().isoformat()}, {elapsed_s / 60:.1f} min.",
        "",
        "Command: `" + " ".join(["python", "bench/model_table.py", *sys.argv[1:]]) + "`",
    ]
    return "\n".join(lines) + "\n"


def int8_note(shitu: dict[str, Any], args: argparse.Namespace) -> str:
    """The int8 goals, paired per round in the same interleaved run, and how the int8 model was made."""

    def ratio(kind: str, key: str) -> str:
        value = shitu["int8_paired"].get(kind, {}).get(key)
        return "-" if value is None else f"{value:.2f}x"

    meta = shitu.get("int8_meta") or {}
    calib, acc = meta.get("calibration", {}), meta.get("accuracy", {})
    cos = acc.get("query_cosine") or acc.get("calibration_cosine") or {}
    kinds = [
        ("model", "model only"),
        ("one", "end to end, one call per image"),
        ("stream", "end to end, streamed"),
    ]
    return (
        f"int8 ({SHITU}, OpenVINO, batch 1), paired per round: "
        + "; ".join(
            f"{what} {ratio(k, 'over_hp_fp32')} over hp fp32 (goal 1.8x), "
            f"{ratio(k, 'over_paddlex')} over PaddleX normal (goal 2.5x)"
            for k, what in kinds
        )
        + f". The int8 model: NNCF post-training quantization calibrated on {calib.get('images', '?')} demo "
        f"training images in {calib.get('seconds', '?')} s (decode + quantize, this shared machine), "
        f"layers kept in fp32: {', '.join(k['node'] for k in meta.get('fp32_layers', [])) or 'none'}; feature "
        f"cosine to fp32 mean {cos.get('mean', '?')}, min {cos.get('min', '?')} (random weights: recall is "
        "checked with a trained model, see the README)."
    )


def main() -> int:
    """Export, time and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument(
        "--paddlex", action="store_true", help="add PaddleX 3.7.2's normal mode (PP-ShiTuV2_rec)"
    )
    parser.add_argument("--ref-python", default=str(ref_python()), help="env REF_PYTHON")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=10, help="round-robin rounds")
    parser.add_argument("--block", type=int, default=5, help="back-to-back runs per column per round")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--e2e-images", type=int, default=50, help="0 skips the end-to-end timing")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 column")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 column")
    parser.add_argument("--calibration-size", type=int, default=300, help="int8 calibration images")
    parser.add_argument("--work-dir", default="/tmp/pxf_model_table", help="exported models (reused)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_table.md"))
    args = parser.parse_args()

    from paddlex_feat.inference.backends import cpu_has_bf16

    if args.paddlex:
        require_ref_python(args.ref_python)
    bf16 = cpu_has_bf16() and not args.no_bf16
    args.gpu = gpu_support()
    if args.gpu is not None:
        import paddle

        args.gpu_name = paddle.device.cuda.get_device_name(0)
    paths = sorted(str(p) for p in DEMO_IMAGES.rglob("*.jpg"))
    start = time.perf_counter()
    results = []
    for name in args.models:
        folder = export_model(name, Path(args.work_dir))
        meta = (
            quantize_int8(folder, name, args.calibration_size) if name == SHITU and not args.no_int8 else None
        )
        results.append({**bench_model(name, folder, args, paths, bf16), "int8_meta": meta})
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
