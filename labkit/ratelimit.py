"""Client-side rate limiting for asyncio, and a virtual clock to test it on.

:class:`RateLimiter` keeps a batch under a requests-per-minute *and* a tokens-per-minute
limit with two token buckets. It reads time from the running event loop (``loop.time()``,
the clock ``asyncio.sleep`` uses), so the same code runs in real time or on
:class:`VirtualTimeLoop`, where sleeping advances a virtual clock at once: a graded run
of 1,000 requests with 50 ms of modelled latency takes a second of CPU and gives the same
timings every time.

:func:`lab_client` builds a real ``AsyncOpenAI`` on a :class:`LoopFaults` transport
(``labkit.faults`` with timings on the loop clock, faults scripted per item, and a crash
switch), and :func:`window_peak` measures the busiest window of a run.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import threading
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

import httpx2
import openai
from openai._base_client import get_platform

from .faults import FaultTransport, Latency, Step, parse_scenario
from .modes import attach_transport
from .replay import ReplayTransport

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = [
    "Crash",
    "LoopFaults",
    "RateLimiter",
    "TokenBucket",
    "VirtualTimeLoop",
    "lab_client",
    "run_virtual",
    "theoretical_rps",
    "user_text",
    "window_peak",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


# --------------------------------------------------------------------------- limiting


class TokenBucket:
    """``rate`` units per second refill a bucket of ``capacity``; taking more than is there waits.

    A request larger than the whole bucket is let through once the bucket is full and
    leaves it in debt, so an oversized item slows the next ones instead of blocking forever.
    """

    def __init__(self, rate: float, capacity: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive (use None on the limiter to switch a limit off)")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.level = float(capacity)
        self.stamp: float | None = None

    def _refill(self, now: float) -> None:
        if self.stamp is not None:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` can be taken (0 if it can be taken now)."""
        self._refill(now)
        need = min(amount, self.capacity)
        short = need - self.level
        return 0.0 if short <= 1e-9 * max(1.0, need) else short / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits for one asyncio process.

    ``await limiter.acquire(tokens)`` before every attempt (retries are requests too).
    ``tokens`` is what the provider counts against TPM: the prompt's tokens plus the
    output limit you ask for. Bursts are capped at ``burst_seconds`` of the rate, because
    providers enforce per-minute limits over much shorter windows. Waiters are served in
    arrival order.
    """

    def __init__(
        self,
        rpm: float | None,
        tpm: float | None = None,
        *,
        burst_seconds: float = 0.1,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.rpm, self.tpm = rpm, tpm
        self.requests = TokenBucket(rpm / 60, max(1.0, rpm / 60 * burst_seconds)) if rpm else None
        self.tokens = TokenBucket(tpm / 60, max(1.0, tpm / 60 * burst_seconds)) if tpm else None
        self._clock = clock
        self._lock: asyncio.Lock | None = None
        self.waited = 0.0

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until one request of ``tokens`` tokens fits both limits, then take it."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._now()
                wait = max(
                    self.requests.wait_time(1, now) if self.requests else 0.0,
                    self.tokens.wait_time(tokens, now) if self.tokens else 0.0,
                )
                if wait <= 0:
                    break
                self.waited += wait
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1, now)
            if self.tokens:
                self.tokens.take(tokens, now)


def theoretical_rps(concurrency: int, mean_latency: float, rpm: float | None = None) -> float:
    """The most requests per second a design can reach: ``min(concurrency / latency, rpm / 60)``."""
    bound = concurrency / mean_latency if mean_latency > 0 else float("inf")
    return min(bound, rpm / 60) if rpm else bound


def window_peak(times: Iterable[float], window: float, weights: Iterable[float] | None = None) -> float:
    """The largest total (a count, or the sum of ``weights``) starting inside any window ``[t, t + window)``."""
    ts = list(times)
    ws = list(weights) if weights is not None else [1.0] * len(ts)
    pairs = sorted(zip(ts, ws))
    best = total = 0.0
    lo = 0
    for t, w in pairs:
        total += w
        while pairs[lo][0] <= t - window:
            total -= pairs[lo][1]
            lo += 1
        best = max(best, total)
    return best


# --------------------------------------------------------------------------- virtual time


class _Selector(selectors.BaseSelector):
    """Wraps the loop's selector: when nothing is ready and a timer is due later, jump to it."""

    def __init__(self, real: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._real = real
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or (timeout > 0 and self._loop.threads_busy):  # only real I/O (a thread finishing) can wake us
            return self._real.select(None)
        ready = self._real.select(0)
        if not ready and timeout > 0:
            self._loop.advance(timeout)
        return ready

    # Everything else is the real selector's.
    def register(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def close(self) -> None:
        self._real.close()

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps ahead whenever every task is waiting on a timer.

    ``asyncio.sleep``, ``wait_for`` timeouts and anything else scheduled on ``loop.time()``
    complete instantly in real time, in the right order, with the right virtual timestamps.
    CPU time does not count, so throughput measured on it reflects the design, not the machine.
    """

    _selector: selectors.BaseSelector  # set by asyncio's BaseSelectorEventLoop.__init__ (typeshed leaves it out)

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._virtual_now = start
        self._selector = _Selector(self._selector, self)
        #: executor jobs (``asyncio.to_thread``, ``run_in_executor``) still running: while there are
        #: any, the clock waits for them instead of jumping to the next timer (work in a thread takes
        #: no virtual time, and its result is not overtaken by timers)
        self.threads_busy = 0

    def time(self) -> float:
        return self._virtual_now

    def run_in_executor(self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self.threads_busy += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _future: asyncio.Future[Any]) -> None:
        self.threads_busy -= 1

    def advance(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh :class:`VirtualTimeLoop` (like ``asyncio.run``).

    Inside a running loop (a Jupyter cell) it runs in a helper thread, so it works there too.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            return runner.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="labkit-virtual") as pool:
        return pool.submit(lambda: run_virtual(coro)).result()


# --------------------------------------------------------------------------- a lab client


class Crash(BaseException):
    """A simulated process crash (kill -9, out of memory): not an ``Exception``, so nothing swallows it."""


class LoopFaults(FaultTransport):
    """``labkit.faults`` timed on the event loop's clock, with faults scripted per item.

    ``per_item`` maps an item key (by default the text of the request's last user message, in
    either API: see :func:`user_text`) to the steps that item's attempts meet, in order; other
    requests meet the shared ``steps``. ``crash_after=N`` raises :class:`Crash` from every attempt
    after the N-th, and calls ``on_crash()`` once first (to look at the disk at that moment, as a
    kill would leave it). Latency waits with ``asyncio.sleep``, so on :class:`VirtualTimeLoop` it
    costs no real time.
    """

    def __init__(
        self,
        steps: Sequence[Step] = (),
        then: httpx2.BaseTransport | None = None,
        *,
        latency: Latency | None = None,
        per_item: Mapping[str, Sequence[str | Step]] | None = None,
        key: Callable[[dict[str, Any] | None], str | None] | None = None,
        crash_after: int | None = None,
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(steps, then, latency=latency)
        self.shared_steps = list(self.steps)
        self.per_item = {k: parse_scenario(list(v)) for k, v in (per_item or {}).items()}
        self.key = key or user_text
        self.crash_after = crash_after
        self.on_crash = on_crash
        self.crashed = False
        #: (sent, came back) of every request, on the loop's clock, in the order they came back
        self.spans: list[tuple[float, float]] = []
        self._swap = threading.Lock()

    def _now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return super()._now()

    def _begin(self, request: httpx2.Request, raw: bytes) -> Step:
        if self.per_item:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            queue = self.per_item.get(self.key(body) or "")
            if queue is not None:
                with self._swap:  # threads: swap the item's step in and out atomically
                    self.steps = [queue.pop(0)] if queue else []
                    try:
                        return super()._begin(request, raw)
                    finally:
                        self.steps = self.shared_steps
        return super()._begin(request, raw)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        sent = self._now()
        try:
            return await super().handle_async_request(request)
        finally:
            self.spans.append((sent, self._now()))

    def _answer(self, step: Step, request: httpx2.Request) -> httpx2.Response:
        if self.crash_after is not None and len(self.attempts) > self.crash_after:
            if not self.crashed:
                self.crashed = True
                if self.on_crash is not None:
                    self.on_crash()
            raise Crash(f"simulated crash after {self.crash_after} requests")
        return super()._answer(step, request)


def user_text(body: dict[str, Any] | None) -> str | None:
    """The text of a request's last user message: Chat Completions ``messages`` or Responses ``input``."""
    if not isinstance(body, dict):
        return None
    convo = body.get("messages", body.get("input"))
    if isinstance(convo, str):
        return convo
    if not isinstance(convo, list):
        return None
    for item in reversed(convo):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, list):
                return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else None
    return None


@cache
def _platform() -> Any:
    return get_platform()


def lab_client(
    cassette: str | Path | Sequence[str | Path],
    *,
    latency: Latency | None = None,
    scenario: str | Sequence[str | Step] = (),
    per_item: Mapping[str, Sequence[str | Step]] | None = None,
    crash_after: int | None = None,
    on_crash: Callable[[], None] | None = None,
    max_retries: int = 0,
    simulate: bool = False,
) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` answering from a cassette through :class:`LoopFaults` (``client._labkit_transport``).

    ``simulate=True``: a well-formed request on a recorded task that no recording matches exactly
    gets the course simulator's honest answer (see :mod:`labkit.simulate`).
    """
    names = [cassette] if isinstance(cassette, (str, Path)) else list(cassette)
    transport = LoopFaults(parse_scenario(scenario), ReplayTransport(names, simulate=simulate), latency=latency,
                           per_item=per_item, crash_after=crash_after, on_crash=on_crash)
    made = openai.AsyncOpenAI(
        api_key="lab-no-key", base_url="https://api.openai.com/v1", max_retries=max_retries,
        http_client=httpx2.AsyncClient(transport=transport),
    )
    # The SDK detects the platform in a worker thread on a client's first request. A virtual clock
    # cannot see a thread working, and would jump ahead meanwhile: detect it here, up front.
    made._platform = _platform()
    attach_transport(made, transport)
    return made
