"""Investigation: client-side ReadErrors at 256 clients come from the server's keep-alive timeout.

Runs the service with a given uvicorn keep-alive timeout and floods it with 256 clients that share
an httpx connection pool (the load client ``serve_load.py`` used before ``http_load.py``), several
times, and prints the answers by kind. A pooled connection can sit idle while its client is busy
elsewhere; when the server closes it at the keep-alive timeout just as the client sends on it, the
request meets a closed socket and the client reads a reset (httpx ``ReadError``). The shorter the
timeout, the more often: the service keeps idle connections 75 s (``engine/serve.py``).

    python bench/serve_keepalive.py --keep-alive 1 5 75 [--reps 3] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import time
from pathlib import Path

from paths import ROOT
from serve_load import CONFIG, export_untrained, free_port, image_files

sys.path.insert(0, str(ROOT))


def serve(model_dir: str, port: int, keep_alive: float, out: str) -> None:
    """The service as Global.mode=serve builds it, with uvicorn's keep-alive set to ``keep_alive``."""
    import uvicorn

    from paddlex_feat.config.loader import load_config
    from paddlex_feat.engine.serve import build_service
    from paddlex_feat.serving.app import create_app

    overrides = [
        "Global.mode=serve",
        "Global.device=cpu",
        f"Global.output={out}",
        f"Serve.model_dir={model_dir}",
    ]
    service = build_service(load_config(CONFIG, overrides))
    service.warm_up()
    uvicorn.run(
        create_app(service), host="127.0.0.1", port=port, access_log=False, timeout_keep_alive=keep_alive
    )


async def flood(url: str, bodies: list[bytes], clients: int, max_requests: int, seconds: float) -> dict:
    """``clients`` loops sharing one httpx pool; answers counted by status or exception name."""
    import httpx

    codes: dict[str, int] = {}
    sent = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < max_requests and time.monotonic() < stop_at:
            body = bodies[sent % len(bodies)]
            sent += 1
            try:
                response = await http.post(url, content=body, headers={"content-type": "application/json"})
                code = str(response.status_code)
            except httpx.HTTPError as e:
                code = type(e).__name__
            codes[code] = codes.get(code, 0) + 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep-alive", type=float, nargs="+", default=[1.0, 5.0, 75.0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clients", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/pxf_serve_bench"))
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)  # internal: the server process
    args = parser.parse_args()
    if args.serve:
        model_dir, port, keep_alive, out = args.serve
        serve(model_dir, int(port), float(keep_alive), out)
        return 0
    import httpx

    args.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir or export_untrained(args.work_dir)
    bodies = [
        json.dumps({"images": [base64.b64encode(p.read_bytes()).decode()]}).encode() for p in image_files(100)
    ]
    for keep_alive in args.keep_alive:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", str(model_dir), str(port), str(keep_alive)]
        proc = subprocess.Popen(cmd + [str(args.work_dir / "keepalive_out")], stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            runs = [
                asyncio.run(
                    flood(
                        f"http://127.0.0.1:{port}/features",
                        bodies,
                        args.clients,
                        2 * args.clients,
                        args.seconds,
                    )
                )
                for _ in range(args.reps)
            ]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        errors = sum(n for run in runs for code, n in run.items() if code not in ("200", "503"))
        print(
            f"keep-alive {keep_alive:g} s, {args.clients} clients x {args.reps}: {runs}; client errors in all: {errors}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
