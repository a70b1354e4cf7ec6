"""The load generator of ``serve_load.py``: concurrent keep-alive HTTP/1.1 clients, as cheap as honest.

Runs in its own process (no Paddle, no model) so that it measures the server, not itself. Each
client owns one keep-alive connection and POSTs pre-encoded requests (headers and JSON body
built once) back to back; a response counts as answered only when it is a whole HTTP response
with status 200 whose JSON envelope has errorCode 0 and one feature row of the expected length.
Every failure is recorded with its kind, and connection errors with how many requests the
connection had answered and how long it had been idle, so that a reset can be traced to its cause.

    python bench/http_load.py URL BODIES_FILE --clients 16 --requests 300 --seconds 8 [--dim 512]

``BODIES_FILE`` holds one JSON request body per line; the result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import orjson

MAX_ERROR_DETAILS = 20


class BadResponse(Exception):
    """The server answered something that is not a plain HTTP/1.1 response with a Content-Length."""


@dataclass
class Level:
    """The shared state of one load level's clients (one event loop: no locks needed)."""

    requests: list[bytes]
    max_requests: int
    started: float
    stop_at: float
    dim: int
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)
    error_details: list[dict] = field(default_factory=list)

    def count(self, code: str) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1


def build_requests(host: str, port: int, path: str, bodies: list[bytes]) -> list[bytes]:
    """Whole HTTP/1.1 requests (keep-alive is HTTP/1.1's default), encoded once."""
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        + body
        for body in bodies
    ]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes the connection) of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise BadResponse(f"not an HTTP/1.1 status line: {head[:40]!r}")
    status = int(head[9:12])
    length, close = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise BadResponse("chunked response: this client reads Content-Length bodies only")
    if length is None:
        raise BadResponse("response without Content-Length")
    return status, await reader.readexactly(length), close


def answered(body: bytes, dim: int) -> bool:
    """Whether a 200 body is the envelope of one ``dim``-long feature row (parsed, as a client would)."""
    data = orjson.loads(body)
    feats = data.get("result", {}).get("features") if data.get("errorCode") == 0 else None
    return isinstance(feats, list) and len(feats) == 1 and len(feats[0]) == dim


async def client(level: Level, host: str, port: int) -> None:
    """One keep-alive connection, requests back to back until the level's request or time limit."""
    reader = writer = None
    on_conn, last_done = 0, None
    while level.sent < level.max_requests and time.monotonic() < level.stop_at:
        request = level.requests[level.sent % len(level.requests)]
        level.sent += 1
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
                on_conn, last_done = 0, None
            idle = None if last_done is None else time.monotonic() - last_done
            writer.write(request)
            status, body, close = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, BadResponse) as e:
            kind = type(e).__name__
            level.count(kind)
            if len(level.error_details) < MAX_ERROR_DETAILS:
                level.error_details.append(
                    {
                        "error": kind,
                        "detail": str(e)[:200],
                        "answered_on_connection": on_conn,
                        "idle_s_before_send": None if idle is None else round(idle, 3),
                        "at_s": round(time.monotonic() - level.started, 3),
                    }
                )
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        elapsed = time.perf_counter() - start
        on_conn += 1
        last_done = time.monotonic()
        if status == 200:
            if answered(body, level.dim):
                level.latencies.append(elapsed)
                level.count("200")
            else:
                level.count("bad 200 body")
        else:
            level.count(str(status))
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def run_level(
    url: str, bodies: list[bytes], clients: int, max_requests: int, seconds: float, dim: int
) -> dict:
    """``clients`` concurrent clients; images/s, latency percentiles and every non-200 by kind."""
    parts = urlsplit(url)
    requests = build_requests(parts.hostname, parts.port, parts.path or "/features", bodies)
    now = time.monotonic()
    level = Level(requests, max_requests, now, now + seconds, dim)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    await asyncio.gather(*(client(level, parts.hostname, parts.port) for _ in range(clients)))
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    ok = level.codes.get("200", 0)
    lat = np.asarray(level.latencies) * 1000 if level.latencies else np.zeros(1)
    return {
        "clients": clients,
        "requests": sum(level.codes.values()),
        "ok": ok,
        "codes": level.codes,
        "errors": sum(v for k, v in level.codes.items() if k not in ("200", "503")),
        "shed_503": level.codes.get("503", 0),
        "images_per_s": ok / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
        "seconds": wall,
        "client_cpu_s": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "error_details": level.error_details,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="e.g. http://127.0.0.1:8080/features")
    parser.add_argument("bodies", type=Path, help="one JSON request body per line")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--dim", type=int, default=512, help="feature length a 200 must carry")
    args = parser.parse_args()
    bodies = [line for line in args.bodies.read_bytes().split(b"\n") if line.strip()]
    coro = run_level(args.url, bodies, args.clients, args.requests, args.seconds, args.dim)
    try:
        import uvloop  # the [serve] extra brings it; the plain loop works too, at a higher cost per request

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
