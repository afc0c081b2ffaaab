"""A real HTTP server on 127.0.0.1 that answers OpenAI API requests from cassettes, with latency.

Benchmarks need real sockets, real connection pools and real waiting, but no API key and no
network. This server speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) on
asyncio to serve thousands of requests per second from one core::

    python -m labkit.serve ex05 ex05_inbox --latency 0.05 --jitter 0.01 --rpm 12000

prints ``labkit.serve listening on http://127.0.0.1:PORT/v1`` and serves until stopped (or
``--max-seconds``). Point a client at it with ``base_url=http://127.0.0.1:PORT/v1``. Each answer
is the recording made for what shapes the request's answer (as labkit.replay matches; repeats
cycle, as in replay), sent after a delay from :class:`labkit.faults.Latency`. ``--rpm`` makes it
enforce a requests-per-minute limit the way the API does (a bucket refilled at rpm/60 per second
holding one second of requests), answering 429 with ``retry-after-ms`` when it is empty.
``GET /labkit/stats`` returns counters (requests, peak in flight, 429s, misses, and the CPU
seconds the serving process has used) and ``POST /labkit/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .faults import Latency
from .ratelimit import TokenBucket
from .replay import Cassette, canonical_json, load_cassette, resolve_cassette, shape_key

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required", 429: "Too Many Requests"}


@dataclass
class Stats:
    """What the server saw since the last reset."""

    requests: int = 0
    answered: int = 0
    rate_limited: int = 0
    misses: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    cpu_s: float = 0.0  # CPU (user + system) of the whole serving process since the reset


class CassetteServer:
    """Serves cassettes over HTTP/1.1 on asyncio (one instance per event loop)."""

    def __init__(
        self,
        cassettes: Sequence[str | Path],
        *,
        latency: Latency | None = None,
        rpm: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.cassettes: list[Cassette] = [load_cassette(resolve_cassette(c)) for c in cassettes]
        self.latency = latency or Latency(base=0.0)
        self.rpm = rpm
        self.bucket = TokenBucket(rpm / 60, rpm / 60) if rpm else None
        self.host, self.port = host, port
        self.stats = Stats()
        self._cpu0 = time.process_time()
        self._turns: dict[tuple[int, str], int] = {}
        self._server: asyncio.AbstractServer | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connection, self.host, self.port, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ------------------------------------------------------------------ HTTP
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    await self._send(writer, 411, b'{"error": {"message": "send a Content-Length body"}}', [])
                    return
                body = await reader.readexactly(length) if length else b""
                status, content, extra = await self._answer(method.upper(), target, body)
                keep = headers.get("connection", "").lower() != "close" and version.upper() == "HTTP/1.1"
                await self._send(writer, status, content, extra, keep_alive=keep)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(self, writer: asyncio.StreamWriter, status: int, content: bytes,
                    headers: Sequence[tuple[str, str]], *, keep_alive: bool = True) -> None:
        head = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}"]
        names = {k.lower() for k, _ in headers}
        if "content-type" not in names:
            head.append("content-type: application/json")
        head += [f"{k}: {v}" for k, v in headers if k.lower() not in ("content-length", "connection", "transfer-encoding")]
        head += [f"content-length: {len(content)}", f"connection: {'keep-alive' if keep_alive else 'close'}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)
        await writer.drain()

    # ------------------------------------------------------------------ answers
    def _find(self, method: str, path: str, canonical: str) -> tuple[int, bytes, list[tuple[str, str]]] | None:
        try:
            body = json.loads(canonical) if canonical else None
        except ValueError:
            body = None
        key = shape_key(method, path, body)
        for ci, cassette in enumerate(self.cassettes):
            found = cassette.exact.get(key)
            if found:
                turn = self._turns.get((ci, key), 0)
                self._turns[(ci, key)] = turn + 1
                inter = cassette.interactions[found[turn % len(found)]]
                headers = [(k, v) for k, v in inter.headers if k.lower() != "content-length"]
                return inter.status, inter.content, [*headers, ("x-labkit-provenance", inter.provenance)]
        return None

    async def _answer(self, method: str, target: str, body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
        if target.startswith("/labkit/"):
            if target == "/labkit/reset" and method == "POST":
                self.stats = Stats()
                self._cpu0 = time.process_time()
                self._turns.clear()
            self.stats.cpu_s = time.process_time() - self._cpu0
            return 200, json.dumps(asdict(self.stats)).encode(), []
        loop = asyncio.get_running_loop()
        now = loop.time()
        s = self.stats
        s.requests += 1
        s.first_at = s.first_at or now
        s.last_at = now
        if self.bucket is not None:
            wait = self.bucket.wait_time(1, now)
            if wait > 0:
                s.rate_limited += 1
                msg = f"Rate limit reached for requests: limit {self.rpm:.0f} per minute (labkit.serve). Please try again in {wait * 1000:.0f}ms."
                err = {"error": {"message": msg, "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
                return 429, json.dumps(err).encode(), [("retry-after-ms", f"{wait * 1000:.0f}"), ("x-ratelimit-limit-requests", f"{self.rpm:.0f}")]
            self.bucket.take(1, now)
        found = self._find(method, target, canonical_json(body))
        if found is None:
            s.misses += 1
            msg = f"labkit.serve: no recording answers {method} {target} with this body (replay, no network)."
            return 400, json.dumps({"error": {"message": msg, "type": "invalid_request_error", "param": None, "code": "replay_miss"}}).encode(), []
        status, content, headers = found
        s.in_flight += 1
        s.peak_in_flight = max(s.peak_in_flight, s.in_flight)
        try:
            await asyncio.sleep(self.latency.of(content))
        finally:
            s.in_flight -= 1
        s.answered += 1
        return status, content, headers


# --------------------------------------------------------------------------- running it


@contextlib.contextmanager
def serving(cassettes: str | Path | Sequence[str | Path], *, latency: Latency | None = None,
            rpm: float | None = None) -> Iterator[CassetteServer]:
    """Run a server in a background thread for the duration of a ``with`` block (tests, notebooks)."""
    names = [cassettes] if isinstance(cassettes, (str, Path)) else list(cassettes)
    server = CassetteServer(names, latency=latency, rpm=rpm)
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        pending = asyncio.all_tasks(loop)  # keep-alive connections still waiting for a request
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=run, name="labkit-serve", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("labkit.serve did not start within 10 s")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


async def _main(args: argparse.Namespace) -> None:
    server = CassetteServer(args.cassettes, latency=Latency(base=args.latency, jitter=args.jitter, seed=args.seed),
                            rpm=args.rpm, host=args.host, port=args.port)
    await server.start()
    print(f"labkit.serve listening on {server.url}", flush=True)
    try:
        await asyncio.sleep(args.max_seconds)
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("cassettes", nargs="+", help="cassette names or paths, e.g. ex05")
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--latency", type=float, default=0.05, help="base response time in seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="uniform +/- jitter in seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rpm", type=float, default=None, help="enforce this requests-per-minute limit with 429s")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop by itself after this long")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("labkit.serve binds to loopback addresses only")
    started = time.monotonic()
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    print(f"labkit.serve stopped after {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
