"""Benchmark: the HTTP service under concurrent load, against offline ``predict`` in the same run.

Starts ``main.py -o Global.mode=serve`` on loopback, then runs bounded concurrent clients (1, 4,
16, 64 by default; each run capped by --requests and --seconds) that POST one image each to
/features, and prints images/s, p50/p95/p99 latency, errors, the mean batch the model ran and the
server's and client's CPU per request for each level. An overload level (256 clients by default)
checks that the service sheds load with 503s and answers normally right after. ``--soak SECONDS``
adds a soak at 16 clients that samples the server's RSS.

The clients (``bench/http_load.py``) run in their own process, without Paddle: keep-alive HTTP/1.1
connections, request bodies base64-encoded and serialised once before any timing, and each 200
parsed and checked (one 512-float row) as a client would. Their CPU per request is in the table.

The offline reference, in the same run: ``Predictor.predict`` over the same image files at batch
sizes 1, 4, 8 and 16 (after one warm-up pass each), i.e. read each file, decode it (OpenCV),
BGR->RGB, resize and normalise as inference.yml says, run the model and L2-normalise, with the
decoding running ahead on two threads; the same number of math threads as the service. The best
batch size's rate, averaged with a second measurement after the service stopped (the load of a
shared machine drifts), is the reference of the table's "x offline" column. The goal's figure,
"served >= 0.9x offline at 16 clients", comes from --rounds paired rounds: offline at the best
batch size, then 16 clients, alternately, so that each served figure has an offline one measured
under nearly the same load beside it; the median of their ratios is reported.
The served path does all of that plus HTTP, JSON and base64 per request.

    python bench/serve_load.py [--model-dir DIR] [--seconds 10] [--requests 400] [--soak 300]
                               [--hpip onnxruntime]   # both sides on a high-performance backend

Without --model-dir an untrained PP-ShiTuV2_rec (the real network; speed does not depend on the
weights) is exported into --work-dir first. Clients and server share the machine's cores: on a
machine shared with other jobs compare the ratios, not the absolute figures. The server's log is
kept in --work-dir/serve.log.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from paths import ROOT, bench_dataset

sys.path.insert(0, str(ROOT))
HTTP_LOAD = Path(__file__).resolve().parent / "http_load.py"
CONFIG = ROOT / "configs" / "modules" / "image_feature" / "PP-ShiTuV2_rec.yaml"
SHARED_IMAGES = bench_dataset() / "images"  # $BENCH_DATASET, else ../shared/...; the demo when absent


def export_untrained(work_dir: Path, model_name: str = "PP-ShiTuV2_rec") -> Path:
    """An inference folder of the real, randomly initialised network (exported once, reused)."""
    folder = work_dir / model_name
    if not (folder / "inference.pdiparams").is_file():
        import paddle

        from paddlex_feat.engine.export import export_inference
        from paddlex_feat.models import build_model

        paddle.seed(0)
        model = build_model(model_name, 100)
        model.eval()
        export_inference(model, model_name, folder)
    return folder


def image_files(limit: int) -> list[Path]:
    """Real images: the shared emoji set if present, else the demo set."""
    from paddlex_feat.inference.inputs import list_folder_images

    folder = SHARED_IMAGES if SHARED_IMAGES.is_dir() else ROOT / "dataset" / "demo" / "images"
    return list_folder_images(folder)[:limit]


def offline_throughput(predictor: Any, paths: list[Path], batch_sizes: list[int]) -> dict[int, float]:
    """images/s of Predictor.predict over ``paths`` at each batch size (one warm-up pass first)."""
    out = {}
    for b in batch_sizes:
        list(predictor.predict([str(p) for p in paths[: 2 * b]], batch_size=b))  # warm-up
        start = time.perf_counter()
        n = sum(1 for _ in predictor.predict([str(p) for p in paths], batch_size=b))
        out[b] = n / (time.perf_counter() - start)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, work_dir: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """The service as users start it (main.py, Global.mode=serve), once /health answers."""
    import httpx

    port = free_port()
    overrides = {
        "Global.mode": "serve",
        "Global.device": "cpu",
        "Global.output": str(work_dir / "serve_out"),
        "Serve.model_dir": str(model_dir),
        "Serve.port": port,
        "Serve.max_batch_size": args.max_batch_size,
        "Serve.max_wait_ms": args.max_wait_ms,
        "Serve.max_queue": args.max_queue,
        "Serve.workers": args.workers,
        "Serve.cpu_threads": args.threads,
    }
    if args.hpip:
        overrides.update({"Serve.use_hpip": True, "Serve.hpi_config.backend": args.hpip})
    cmd = [sys.executable, str(ROOT / "main.py"), "-c", str(CONFIG)]
    for key, value in overrides.items():
        cmd += ["-o", f"{key}={value}"]
    # the server's own log goes to a file: the evidence for any error in the table
    with open(work_dir / "serve.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"the service exited with {proc.returncode}; run the command by hand: {' '.join(cmd)}"
            )
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service did not answer /health within 120 s")


def load_level(
    url: str, bodies_file: Path, clients: int, max_requests: int, max_seconds: float, pid: int | None = None
) -> dict:
    """``clients`` concurrent clients POSTing /features (bench/http_load.py, in its own process) until
    ``max_requests`` in all or ``max_seconds``; with the server's ``pid``, also the server's CPU time and
    its mean batch size over the level (from /metrics)."""
    cmd = [sys.executable, str(HTTP_LOAD), url + "/features", str(bodies_file)]
    cmd += ["--clients", str(clients), "--requests", str(max_requests), "--seconds", str(max_seconds)]
    before_cpu, before_batches = (cpu_seconds(pid), batch_stats(url)) if pid else (0.0, (0.0, 0.0))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    if pid:
        images, calls = (a - b for a, b in zip(batch_stats(url), before_batches))
        result["server_cpu_s"] = cpu_seconds(pid) - before_cpu
        result["mean_batch"] = images / calls if calls else 0.0
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_stats(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from the service's batch-size histogram."""
    import urllib.request

    text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("paddlex_feat_batch_size_")
    )
    return float(values.get("paddlex_feat_batch_size_sum", 0)), float(
        values.get("paddlex_feat_batch_size_count", 0)
    )


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(url: str, bodies_file: Path, pid: int, seconds: float, clients: int = 16) -> dict:
    """``clients`` clients for ``seconds``, sampling the server's RSS every few seconds."""
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        task = pool.submit(load_level, url, bodies_file, clients, 10**9, seconds)
        while not task.done():
            samples.append((time.monotonic() - start, rss_mb(pid)))
            time.sleep(min(5.0, seconds / 20))
        result = task.result()
    warm = [mb for t, mb in samples if t >= min(30.0, seconds / 5)] or [mb for _, mb in samples]
    result.update(
        rss_first_mb=warm[0], rss_last_mb=warm[-1], rss_max_mb=max(warm), rss_growth=warm[-1] / warm[0] - 1
    )
    return result


def table(rows: list[dict], offline_best: float) -> str:
    """The README's table; the last three columns say where the CPU time went."""
    lines = [
        "| clients | requests | images/s | x offline | p50 ms | p95 ms | p99 ms | p99/p50 | 503 | errors "
        "| mean batch | server CPU ms/request | client CPU ms/request |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n = max(r["requests"], 1)
        lines.append(
            f"| {r['clients']} | {r['requests']} | {r['images_per_s']:.1f} | {r['images_per_s'] / offline_best:.2f} | "
            f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['p99_ms'] / max(r['p50_ms'], 1e-9):.2f} | "
            f"{r['shed_503']} | {r['errors']} | {r['mean_batch']:.1f} | {1000 * r['server_cpu_s'] / n:.1f} | "
            f"{1000 * r['client_cpu_s'] / n:.2f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/pxf_serve_bench"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument(
        "--overload", type=int, default=256, help="clients for the load-shedding check (0: skip)"
    )
    parser.add_argument("--requests", type=int, default=400, help="most requests per level")
    parser.add_argument("--seconds", type=float, default=10.0, help="most seconds per level")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=5, help="paired rounds of offline then 16 clients (the goal's ratio)"
    )
    parser.add_argument("--soak", type=float, default=0.0, help="seconds of soak at 16 clients (0: skip)")
    parser.add_argument(
        "--hpip", default=None, help="a high-performance backend (onnxruntime, openvino) for both sides"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    args = parser.parse_args()
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        if text:
            lines.extend([text, ""])  # one markdown paragraph (or the whole table) each

    say(f"Date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {machine()}")
    say(f"Command: `python bench/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}`")
    say(
        f"Service: max_batch_size {args.max_batch_size}, max_wait_ms {args.max_wait_ms}, max_queue "
        f"{args.max_queue}, workers {args.workers}, {args.threads} math threads, backend "
        f"{args.hpip or 'paddle'}; load average at start "
        f"{os.getloadavg()[0]:.1f}"
    )

    args.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir or export_untrained(args.work_dir)
    paths = image_files(args.images)
    # the request bodies are encoded once, before anything is timed; the client process reads them
    bodies = args.work_dir / "bodies.jsonl"
    bodies.write_text(
        "".join(json.dumps({"images": [base64.b64encode(p.read_bytes()).decode()]}) + "\n" for p in paths)
    )
    from paddlex_feat.inference.predictor import Predictor

    hpi = {"use_hpip": True, "hpi_config": {"backend": args.hpip}} if args.hpip else {}
    predictor = Predictor(model_dir, cpu_threads=args.threads, **hpi)
    offline = offline_throughput(predictor, paths, [1, 4, 8, 16])
    best_batch = max(offline, key=offline.get)
    say(f"offline predict images/s by batch size: {', '.join(f'{b}: {v:.1f}' for b, v in offline.items())}")

    proc, url = start_server(model_dir, args.work_dir, args)
    report: dict = {"offline": offline, "best_batch": best_batch, "threads": args.threads, "levels": []}
    try:
        load_level(url, bodies, 2 * args.max_batch_size, 4 * args.max_batch_size, 20)  # warm-up
        for clients in args.clients:
            report["levels"].append(load_level(url, bodies, clients, args.requests, args.seconds, proc.pid))
        if args.overload:
            over = load_level(
                url, bodies, args.overload, max(args.requests, 2 * args.overload), args.seconds, proc.pid
            )
            after = load_level(url, bodies, 4, 40, 10, proc.pid)
            report["overload"], report["after_overload"] = over, after
            report["levels"].append(over)
        # the goal's ratio on a shared machine: offline and 16 clients alternately, so that each
        # served figure has an offline one measured under (nearly) the same load beside it
        report["paired"] = []
        for _ in range(args.rounds):
            offline_now = offline_throughput(predictor, paths, [best_batch])[best_batch]
            served = load_level(url, bodies, 16, args.requests, args.seconds, proc.pid)
            report["paired"].append({"offline": offline_now, "served": served})
        if args.soak:
            report["soak"] = soak(url, bodies, proc.pid, args.soak)
        report["server_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # offline again, after the service stopped: on a shared machine the load drifts, so the
    # reference is the mean of the two measurements at the best batch size
    after = offline_throughput(predictor, paths, [best_batch])[best_batch]
    report["offline_after"] = after
    before = offline[best_batch]
    offline[best_batch] = (before + after) / 2
    best = offline[best_batch]
    say(
        f"offline best: {best:.1f} images/s at batch {best_batch} ({args.threads} threads; mean of "
        f"{before:.1f} before and {after:.1f} after the service ran); "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    say()
    say(table(report["levels"], best))
    say()
    at16 = next((r for r in report["levels"] if r["clients"] == 16), None)
    if at16:
        say(
            f"16 clients: {at16['images_per_s'] / best:.2f}x offline (goal >= 0.90), errors {at16['errors']} "
            f"(goal 0), p99/p50 {at16['p99_ms'] / at16['p50_ms']:.2f} (goal <= 3)"
        )
    if report["paired"]:
        ratios = [r["served"]["images_per_s"] / r["offline"] for r in report["paired"]]
        say(
            f"paired rounds (offline at batch {best_batch}, then 16 clients, {args.rounds} times): "
            + "; ".join(
                f"served {r['served']['images_per_s']:.1f} / offline {r['offline']:.1f} = {q:.2f}x"
                f" (mean batch {r['served']['mean_batch']:.1f}, errors {r['served']['errors']})"
                for r, q in zip(report["paired"], ratios)
            )
            + f"; median {float(np.median(ratios)):.2f}x (goal >= 0.90)"
        )
    if args.overload:
        over, after = report["overload"], report["after_overload"]
        say(
            f"{args.overload} clients: {over['shed_503']} answered 503, {over['errors']} errors; right after: "
            f"{after['ok']}/{after['requests']} answered 200; server alive: {report['server_alive']}"
        )
    for level in report["levels"]:
        for detail in level["error_details"]:
            say(f"{level['clients']} clients, error: {detail}")
    if args.soak:
        s = report["soak"]
        say(
            f"soak {args.soak:.0f} s at 16 clients: {s['ok']} answered, {s['errors']} errors, RSS "
            f"{s['rss_first_mb']:.0f} -> {s['rss_last_mb']:.0f} MB ({100 * s['rss_growth']:+.1f}%, goal within 10%)"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text("\n".join(lines))
    return 0


def machine() -> str:
    """CPU model and core count, from /proc (what the figures depend on)."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


if __name__ == "__main__":
    sys.exit(main())
