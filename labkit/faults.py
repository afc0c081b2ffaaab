"""Scripted failures and latency for a real SDK client: retries, rate limits, throughput labs.

A scenario is a list of steps, written as text or built in code::

    faults.client("429 retry-after-ms=20, 500, 500, ok", cassette="ex03", clock=clock)

Steps: ``ok`` (answer from the cassette), a status code with optional headers
(``429 retry-after=2``, ``503 x-should-retry=false``) and error code (``429
code=insufficient_quota``: ``code=`` sets the error body's code, not a header), ``timeout``,
``reset``. When the
steps run out, every further request is ``ok``. Latency comes from a :class:`Latency`
model; with a clock it advances the clock instead of sleeping, so graded runs take
milliseconds. The transport records every attempt and the peak number of requests in
flight, which is what checks assert on.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx2
import openai

from .modes import attach_transport
from .replay import ReplayTransport

ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("insufficient_permissions", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "overloaded"),
}

#: The error type the API reports with a code that has a type of its own.
CODE_TYPES = {"insufficient_quota": "insufficient_quota"}


class ClockLike(Protocol):
    def time(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Step:
    """One scripted answer: ``ok``, an HTTP status with headers, ``timeout`` or ``reset``."""

    kind: str  # "ok" | "status" | "timeout" | "reset"
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    message: str = ""
    code: str | None = None  # the error body's code (and type, for insufficient_quota); None: the status's usual one

    @classmethod
    def parse(cls, text: str) -> Step:
        words = text.split()
        if not words:
            raise ValueError("empty fault step")
        head = words[0].lower()
        if head in ("ok", "timeout", "reset"):
            return cls(head)
        if not head.isdigit():
            raise ValueError(f"unknown fault step {text!r}: use ok, timeout, reset or an HTTP status like '429 retry-after=1'")
        pairs = [(name, value) for name, _, value in (w.partition("=") for w in words[1:] if "=" in w)]
        code = next((value for name, value in pairs if name.lower() == "code"), None)
        return cls("status", int(head), tuple(p for p in pairs if p[0].lower() != "code"), code=code)


def parse_scenario(scenario: str | Sequence[str | Step]) -> list[Step]:
    """``"429 retry-after-ms=20, 500, ok"`` or a list of texts/steps."""
    items: Iterable[str | Step] = scenario.split(",") if isinstance(scenario, str) else scenario
    return [s if isinstance(s, Step) else Step.parse(s.strip()) for s in items if not (isinstance(s, str) and not s.strip())]


@dataclass
class Latency:
    """Response time in seconds: ``base`` plus ``per_token`` x completion tokens, with bounded jitter."""

    base: float = 0.3
    per_token: float = 0.0
    jitter: float = 0.0
    seed: int = 7
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def of(self, content: bytes) -> float:
        tokens = 0
        if self.per_token:
            try:
                tokens = int(json.loads(content).get("usage", {}).get("completion_tokens", 0))
            except (ValueError, AttributeError):
                tokens = 0
        j = self._rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, self.base + self.per_token * tokens + j)


@dataclass
class Attempt:
    """One request the transport saw and what it answered."""

    at: float
    method: str
    path: str
    outcome: str
    body: dict[str, Any] | None


class FaultTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Plays the scenario's steps, then answers from ``then`` (a replay transport)."""

    def __init__(
        self,
        steps: Sequence[Step],
        then: httpx2.BaseTransport | None = None,
        *,
        latency: Latency | None = None,
        clock: ClockLike | None = None,
    ) -> None:
        self.steps = list(steps)
        self.then = then
        self.latency = latency
        self.clock = clock
        self.attempts: list[Attempt] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock.time() if self.clock else time.monotonic()

    def _begin(self, request: httpx2.Request, raw: bytes) -> Step:
        with self._lock:
            step = self.steps.pop(0) if self.steps else Step("ok")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            label = step.kind if step.kind != "status" else str(step.status)
            self.attempts.append(Attempt(self._now(), request.method, request.url.path, label, body))
        return step

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _answer(self, step: Step, request: httpx2.Request) -> httpx2.Response:
        if step.kind == "timeout":
            raise httpx2.ReadTimeout("scripted timeout (labkit.faults)", request=request)
        if step.kind == "reset":
            raise httpx2.ConnectError("scripted connection reset by peer (labkit.faults)", request=request)
        if step.kind == "status":
            kind, code = ERROR_TYPES.get(step.status, ("server_error" if step.status >= 500 else "invalid_request_error", None))
            if step.code is not None:
                kind, code = CODE_TYPES.get(step.code, kind), step.code
            msg = step.message or f"Scripted {step.status} from labkit.faults"
            body = json.dumps({"error": {"message": msg, "type": kind, "param": None, "code": code}}).encode()
            headers = [("content-type", "application/json"), ("x-request-id", f"req_fault_{len(self.attempts)}"), *step.headers]
            return httpx2.Response(step.status, headers=headers, content=body, request=request)
        if self.then is None:
            raise RuntimeError("fault scenario reached 'ok' but no cassette was given to answer from")
        return self.then.handle_request(request)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        step = self._begin(request, raw)
        try:
            response = self._answer(step, request)
            if self.latency:
                delay = self.latency.of(response.read())
                (self.clock.sleep if self.clock else time.sleep)(delay)
            return response
        finally:
            self._end()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = await request.aread()
        step = self._begin(request, raw)
        try:
            response = self._answer(step, request)
            if self.latency:
                delay = self.latency.of(await response.aread())
                if self.clock:
                    self.clock.sleep(delay)
                else:
                    await asyncio.sleep(delay)
            return response
        finally:
            self._end()


def client(
    scenario: str | Sequence[str | Step] = (),
    cassette: str | Path | Sequence[str | Path] | None = None,
    *,
    latency: Latency | None = None,
    clock: ClockLike | None = None,
    async_: bool = False,
    max_retries: int = 0,
    **kwargs: Any,
) -> openai.OpenAI | openai.AsyncOpenAI:
    """A real SDK client whose requests meet the scenario first, then the cassette.

    ``max_retries`` defaults to 0 so that the code under test, not the SDK, does the retrying;
    pass 2 to watch the SDK's own retries. The transport is ``client._labkit_transport``.
    """
    then = None
    if cassette is not None:
        then = ReplayTransport([cassette] if isinstance(cassette, (str, Path)) else cassette)
    transport = FaultTransport(parse_scenario(scenario), then, latency=latency, clock=clock)
    common = {"api_key": "faults-no-key", "base_url": "https://api.openai.com/v1", "max_retries": max_retries, **kwargs}
    made: openai.OpenAI | openai.AsyncOpenAI
    if async_:
        made = openai.AsyncOpenAI(http_client=httpx2.AsyncClient(transport=transport), **common)
    else:
        made = openai.OpenAI(http_client=httpx2.Client(transport=transport), **common)
    attach_transport(made, transport)
    if clock is not None:
        _sdk_sleeps_on(made, clock)
    return made


def _sdk_sleeps_on(made: openai.OpenAI | openai.AsyncOpenAI, clock: ClockLike) -> None:
    """Make the SDK's own retry waits advance ``clock`` instead of sleeping."""

    def wait(*, retries_taken: int, max_retries: int, options: Any, response: httpx2.Response | None) -> None:
        remaining = max_retries - retries_taken
        clock.sleep(made._calculate_retry_timeout(remaining, options, response.headers if response else None))

    async def await_(**kw: Any) -> None:
        wait(**kw)

    # The SDK has no public hook for its retry wait, so this replaces its private method on this one client.
    made._sleep_for_retry = await_ if isinstance(made, openai.AsyncOpenAI) else wait  # type: ignore[method-assign]
