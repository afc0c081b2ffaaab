"""Checks for exercise 08: streaming readers and one FastAPI app (endpoint, SSE relay, webhooks, chat, dashboard).

Everything runs in this process on a virtual clock (:func:`labkit.web.run_web_virtual`): the
learner's app is driven through ASGI by :class:`labkit.web.AsgiClient` (HTTP as uvicorn speaks it,
server-sent events, WebSockets, clients that leave), and its ``AsyncOpenAI`` answers from
``cassettes/ex08.json`` at the recorded pace (:class:`labkit.streams.PacedStream`): a stream's
first token after a quarter of a second, a reasoning model's after ten seconds of silence,
onboarding emails after four. A 60-second rate-limit window or a 20-second upstream timeout costs
no real time. Graded runs may not open sockets, so email goes to a :class:`labkit.web.MemoryMailer`;
tests/test_ex08.py runs the same app on uvicorn with a real SMTP server and a real browser.

Faults are scripted per request (by its last user message) in :class:`Upstream`: an HTTP status
with headers, ``stall`` (no answer until the request's own read timeout passes) and ``reset``.
Upstream error bodies carry a planted key and an internal host name, which no answer of the app
may repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import httpx2
import openai

from ..course.ex08 import (
    BACKGROUND_PROMPT,
    CHAT_LONG,
    CHAT_SCRIPT,
    CONTRACT,
    CUSTOMERS,
    FAILING_QUESTIONS,
    FIELD_LIMITS,
    OPENAI_WEBHOOK_SECRET,
    PRODUCTS,
    QUESTION,
    RELAY_MESSAGES,
    SIGNUP_SECRET,
    onboarding_subject,
    product_text,
    signup_event,
)
from ..course.models import DEFAULT, FAST
from ..ratelimit import user_text
from ..replay import Interaction, ReplayMiss, ReplayTransport, load_cassette, resolve_cassette
from ..simulate import recorded_answer
from ..streams import LoopPacer, StreamLedger
from ..web import AsgiClient, Exchange, LogEntry, MemoryMailer, RequestLog, percentile, run_web_virtual, sign_webhook
from . import Context, register

T = TypeVar("T")

#: The virtual clock's reading when a check starts (not zero, so a time that forgets to subtract its start shows).
START = 1_000.0

#: A key planted in the client and in upstream error bodies: no answer of the app may contain it.
PLANTED_KEY = "sk-proj-" + "LABKITPLANTEDKEY".ljust(44, "0")  # a fake key the check plants; built, so no key-shaped literal
#: An internal host name in upstream error messages (what ``str(err)`` would leak).
INTERNAL = "upstream-7.internal.example"
#: What a leaked exception or traceback looks like in an answer.
LEAK_MARKERS = (PLANTED_KEY, INTERNAL, "Traceback", 'File "', "Error code:", "APIStatusError", "InternalServerError",
                "APITimeoutError", "APIConnectionError", "RateLimitError", "BadRequestError", "openai.")


# --------------------------------------------------------------------------- the upstream


@dataclass
class Seen:
    """One request the app sent upstream."""

    at: float
    method: str
    path: str
    body: Any
    read_timeout: float | None


class Upstream(httpx2.AsyncBaseTransport):
    """The API as the app sees it: the recordings at their pace, with faults scripted per request."""

    def __init__(self, faults: dict[str, list[str]] | None = None, headers_after_s: float = 0.0) -> None:
        self.replay = ReplayTransport(["ex08"], pace=LoopPacer())
        self.faults = {key: list(steps) for key, steps in (faults or {}).items()}
        self.seen: list[Seen] = []
        #: how long the status line and headers take (the stream's events follow at their recorded pace)
        self.headers_after_s = headers_after_s

    @property
    def ledger(self) -> StreamLedger:
        return self.replay.ledger

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = await request.aread()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        timeout = (request.extensions.get("timeout") or {}).get("read")
        self.seen.append(Seen(asyncio.get_running_loop().time(), request.method, request.url.path, body, timeout))
        steps = self.faults.get(user_text(body) or "")
        step = steps.pop(0) if steps else "ok"
        if step == "stall":  # no byte until the client's own read timeout gives up
            await asyncio.sleep(timeout if timeout is not None else 86_400.0)
            raise httpx2.ReadTimeout("timed out waiting for the API", request=request)
        if step == "reset":
            raise httpx2.ConnectError(f"connection reset by {INTERNAL}", request=request)
        if self.headers_after_s:
            await asyncio.sleep(self.headers_after_s)
        if step == "cut":  # the answer starts, then the connection drops after a few events
            answer = self.replay.handle_request(request)
            answer.stream = _Cut(answer.stream, after=8)
            return answer
        if step != "ok":
            status, *extra = step.split()
            headers = dict(pair.split("=", 1) for pair in extra)
            error = {"message": f"Internal failure at {INTERNAL} for key {PLANTED_KEY}", "type": "server_error", "param": None,
                     "code": None}
            return httpx2.Response(int(status), headers={"content-type": "application/json", **headers},
                                   content=json.dumps({"error": error}).encode(), request=request)
        return self.replay.handle_request(request)


@lru_cache(maxsize=1)
def _platform() -> Any:
    from openai._base_client import get_platform

    return get_platform()


class _LabClient(openai.AsyncOpenAI):
    """``AsyncOpenAI`` that knows its platform already: the SDK would otherwise ask a thread on each
    client's first request (``with_options`` makes new clients), real work a virtual clock cannot wait for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._platform = _platform()


class _Cut(httpx2.AsyncByteStream):
    """A response body whose connection drops after ``after`` pieces."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after = inner, after

    async def __aiter__(self) -> AsyncIterator[bytes]:
        count = 0
        async for piece in self.inner:
            if count == self.after:
                raise httpx2.ReadError(f"connection to {INTERNAL} lost")
            count += 1
            yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()


def lab(faults: dict[str, list[str]] | None = None, headers_after_s: float = 0.0) -> tuple[openai.AsyncOpenAI, Upstream]:
    """An ``AsyncOpenAI`` (SDK defaults: 2 retries, 600 s timeout) on :class:`Upstream`."""
    transport = Upstream(faults, headers_after_s)
    made = _LabClient(api_key=PLANTED_KEY, base_url="https://api.openai.com/v1", http_client=httpx2.AsyncClient(transport=transport))
    return made, transport


@dataclass
class Rig:
    """The learner's app with its upstream, mailer and log, on the running (virtual) loop."""

    app: Any
    web: AsgiClient
    upstream: Upstream
    mailer: MemoryMailer
    log: RequestLog
    answers: list[Exchange] = field(default_factory=list)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Exchange:
        got = await self.web.request("POST", path, json_body=body, **kwargs)
        self.answers.append(got)
        return got

    async def get(self, path: str, **kwargs: Any) -> Exchange:
        got = await self.web.request("GET", path, **kwargs)
        self.answers.append(got)
        return got

    def sent(self, path_end: str) -> list[Seen]:
        return [s for s in self.upstream.seen if s.path.endswith(path_end)]


def run(ctx: Context, scenario: Callable[[Rig], Awaitable[T]], faults: dict[str, list[str]] | None = None) -> T:
    """Build the learner's app on a fresh upstream and run ``scenario`` on the virtual clock."""
    create_app = ctx.attr("create_app")

    async def go() -> T:
        loop = asyncio.get_running_loop()
        client, upstream = lab(faults)
        mailer, log = MemoryMailer(), RequestLog()
        app = create_app(client, mailer=mailer, clock=loop.time, log=log)
        async with AsgiClient(app) as web:
            return await scenario(Rig(app, web, upstream, mailer, log))

    return run_web_virtual(go(), start=START)


# --------------------------------------------------------------------------- what was recorded


@lru_cache(maxsize=1)
def _interactions() -> tuple[Interaction, ...]:
    return tuple(load_cassette(resolve_cassette("ex08")).interactions)


def recorded(label: str) -> Interaction:
    """The recording whose label starts with ``label``."""
    for inter in _interactions():
        if inter.label.startswith(label):
            return inter
    raise LookupError(f"cassettes/ex08.json has no recording labelled {label!r}: rebuild it (labkit cassettes build ex08)")


def text_of(inter: Interaction) -> str:
    answer = recorded_answer(inter)
    return answer[0] if answer else ""


def stream_events(inter: Interaction) -> list[tuple[float, str, Any]]:
    """A recorded stream's events with their offsets in seconds."""
    from ..web import parse_sse

    events = [(name, data) for name, data in parse_sse(inter.content.decode("utf-8")) if name != ":"]
    return [(ms / 1000, name, data) for ms, (name, data) in zip(inter.offsets, events)]


def delta_times(inter: Interaction) -> list[float]:
    """When each text delta of a recorded stream arrives (seconds after the request)."""
    out = []
    for at, name, data in stream_events(inter):
        if name == "response.output_text.delta":
            out.append(at)
        elif name == "message" and isinstance(data, dict) and any((c.get("delta") or {}).get("content") for c in data.get("choices") or []):
            out.append(at)
    return out


def usage_of(inter: Interaction) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "total_tokens"}`` of a recording (JSON or stream)."""
    raw: dict[str, Any] = {}
    text = inter.content.decode("utf-8")
    if text.lstrip().startswith("{"):
        raw = json.loads(text).get("usage") or {}
    else:
        for _, name, data in stream_events(inter):
            if name == "response.completed":
                raw = data["response"]["usage"]
            elif isinstance(data, dict) and data.get("usage"):
                raw = data["usage"]
    given = int(raw.get("input_tokens", raw.get("prompt_tokens", 0)))
    made = int(raw.get("output_tokens", raw.get("completion_tokens", 0)))
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


def model_of(inter: Interaction) -> str:
    text = inter.content.decode("utf-8")
    if text.lstrip().startswith("{"):
        return str(json.loads(text).get("model", ""))
    return next(str(data["response"]["model"]) for _, name, data in stream_events(inter) if name == "response.completed")


def _first_difference(got: str, want: str) -> str:
    i = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"at character {i}: yours {got[i:i + 30]!r}, the answer {want[i:i + 30]!r} ({len(got)} vs {len(want)} characters)"


# --------------------------------------------------------------------------- 1. streaming


def _read(ctx: Context, name: str, question: str) -> tuple[Any, Upstream, str]:
    """The reader's result for a question (made once per check session), what it sent, and what
    was wrong with its request if no recording answers it."""
    key = f"ex08.read.{name}.{question}"
    if key not in ctx.memo:
        reader = ctx.attr(name)

        async def go() -> tuple[Any, Upstream, str]:
            client, upstream = lab(headers_after_s=HEADERS_AFTER_S)
            try:
                got = await reader(client, question, clock=asyncio.get_running_loop().time)
            except ReplayMiss as miss:
                differs = next((line.strip() for line in str(miss).splitlines() if "differs in" in line), str(miss)[:200])
                return None, upstream, f"{name} sent a request that is not the one recorded: {differs}"
            return got, upstream, ""

        ctx.memo[key] = run_web_virtual(go(), start=START)
    got: tuple[Any, Upstream, str] = ctx.memo[key]
    return got


#: The readers' upstream sends its headers this long after the request: a time taken from when
#: ``create`` returned, instead of from the request, comes out this much short.
HEADERS_AFTER_S = 0.08

READERS = (("stream_responses", "the question, Responses API, streamed"), ("stream_chat", "the question, Chat Completions, streamed"))


@register("ex08.stream-text")
def stream_text(ctx: Context) -> tuple[bool, str]:
    want = text_of(recorded("the question, Responses API"))
    shown = []
    for name, label in READERS:
        got, upstream, problem = _read(ctx, name, QUESTION)
        if problem:
            return False, problem
        bodies = [s.body or {} for s in upstream.seen]
        if len(bodies) != 1 or not bodies[0].get("stream"):
            return False, f"{name} sent {len(bodies)} request(s){'' if not bodies else ' without stream=True'}: stream exactly one answer"
        text = getattr(got, "text", None)
        if text != want:
            return False, f"{name}: the streamed text differs from the non-streamed answer {_first_difference(str(text), want)}"
        times = [HEADERS_AFTER_S + at for at in delta_times(recorded(label))]
        if getattr(got, "chunks", None) != len(times):
            return False, f"{name}: chunks is {getattr(got, 'chunks', None)!r}; the stream had {len(times)} text deltas"
        first, total = getattr(got, "first_token_s", None), getattr(got, "total_s", None)
        if first is None or abs(first - times[0]) > 0.0005:
            return False, f"{name}: first_token_s is {first!r}; the first text delta arrived {times[0]:.3f} s after the request (on the clock you were given, read before sending the request)"
        if total is None or total + 1e-9 < times[-1] or total > times[-1] + 0.2:
            return False, f"{name}: total_s is {total!r}; the stream ended about {times[-1]:.3f} s after the request"
        shown.append(f"{name} {first * 1000:.0f} ms to first token of {total * 1000:.0f} ms")
    return True, f"both streams equal the non-streamed answer ({len(want)} characters); " + ", ".join(shown)


@register("ex08.stream-usage")
def stream_usage(ctx: Context) -> tuple[bool, str]:
    for name, label in READERS:
        got, upstream, problem = _read(ctx, name, QUESTION)
        body = (upstream.seen[0].body or {}) if upstream.seen else {}
        if name == "stream_chat" and not (body.get("stream_options") or {}).get("include_usage"):
            return False, "stream_chat: the request has no stream_options={'include_usage': True}: without it the stream carries no usage"
        if problem:
            return False, problem
        want = usage_of(recorded(label))
        usage = getattr(got, "usage", None)
        if usage != want:
            return False, f"{name}: usage is {usage!r}, the final event said {want}"
    return True, f"usage from the final event of both streams: {want}"


@register("ex08.stream-error")
def stream_error(ctx: Context) -> tuple[bool, str]:
    cases = (("stream_responses", "error", "an error event"), ("stream_responses", "response.failed", "a response.failed event"),
             ("stream_chat", "chat", "an error chunk"))
    prefix = recorded("a Chat Completions stream that fails midway")
    partial = text_of(prefix)
    for name, kind, what in cases:
        try:
            got, _, problem = _read(ctx, name, FAILING_QUESTIONS[kind])
        except Exception as err:  # noqa: BLE001 - the reader must not raise
            return False, f"{name} raised {type(err).__name__} when the stream failed midway with {what}: keep the error in Streamed.error"
        if problem:
            return False, problem
        if not getattr(got, "error", None):
            return False, f"{name}: the stream failed midway with {what} but Streamed.error is {getattr(got, 'error', None)!r}"
        if "server_error" not in str(got.error):
            return False, f"{name}: after {what} Streamed.error is {got.error!r}; keep the error's code (server_error) in it"
        if getattr(got, "text", None) != partial:
            return False, f"{name}: after {what} the text should be what arrived before it {_first_difference(str(getattr(got, 'text', '')), partial)}"
        if getattr(got, "usage", None) is not None:
            return False, f"{name}: a failed stream has no final usage event, yet usage is {got.usage!r}"
    return True, f"an error event, a failed response and an error chunk: each kept as Streamed.error with the {len(partial)} characters before it"


# --------------------------------------------------------------------------- 2. the real-time endpoint

HEADLINES = CONTRACT.paths.headlines


def _headlines_of(label: str) -> list[str]:
    return list(json.loads(text_of(recorded(label)))["headlines"])


def _strict(body: dict[str, Any]) -> bool:
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema" and fmt.get("strict"):
        return True
    rf = body.get("response_format") or {}
    return rf.get("type") == "json_schema" and bool((rf.get("json_schema") or {}).get("strict"))


@register("ex08.headlines")
def headlines(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        for i, product in enumerate(PRODUCTS):
            got = await rig.post(HEADLINES, product, headers={CONTRACT.client_header: f"client-{i}"})
            want = _headlines_of(f"headlines for {product['product_name']!r} (responses)")
            if got.status != 200:
                if any(not _strict(s.body or {}) for s in rig.upstream.seen if s.method == "POST"):
                    return False, (f"{product['product_name']!r}: status {got.status}, after a request without Structured Outputs "
                                   "(a strict json_schema): use responses.parse(**headline_request(...)), never split free text")
                return False, f"{product['product_name']!r}: status {got.status} ({got.text[:120]}); expected 200 with three headlines"
            try:
                data = got.json()
            except ValueError:
                return False, f"{product['product_name']!r}: the answer is not JSON: {got.text[:80]!r}"
            if data != {"headlines": want}:
                return False, f"{product['product_name']!r}: answered {str(data)[:160]}, expected {{'headlines': {want}}}"
        bodies = [s.body or {} for s in rig.sent("/responses") + rig.sent("/chat/completions")]
        loose = [b for b in bodies if not _strict(b)]
        if loose:
            return False, "a request without Structured Outputs (a strict json_schema): use responses.parse(**headline_request(...))"
        timeouts = [s.read_timeout for s in rig.upstream.seen]
        longest = max((t if t is not None else math.inf) for t in timeouts) if timeouts else math.inf
        if longest > CONTRACT.upstream_timeout_s:
            return False, (f"the API client's timeout is {longest:g} s: give it at most {CONTRACT.upstream_timeout_s:g} s "
                           "(client.with_options(timeout=...)); the SDK's default is 600")
        return True, f"{len(PRODUCTS)} products (quotes, SQL, markup, other scripts, an injection): three parsed headlines each, strict schema, timeout {longest:g} s"

    return run(ctx, scenario)


def _bad_bodies() -> list[tuple[str, Any, str]]:
    good = dict(PRODUCTS[0])
    cases: list[tuple[str, Any, str]] = []
    for name, limit in FIELD_LIMITS.items():
        cases.append((f"without {name}", {k: v for k, v in good.items() if k != name}, name))
        cases.append((f"{name} empty", {**good, name: ""}, name))
        cases.append((f"{name} only spaces", {**good, name: "   "}, name))
        cases.append((f"{name} a number", {**good, name: 42}, name))
        cases.append((f"{name} of {limit + 1} characters", {**good, name: "x" * (limit + 1)}, name))
    cases.append(("a list instead of an object", [good], ""))
    return cases


@register("ex08.validation")
def validation(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        for i, (what, body, field_name) in enumerate(_bad_bodies()):
            got = await rig.post(HEADLINES, body, headers={CONTRACT.client_header: f"v{i}"})
            if got.status != 422:
                return False, f"a body {what} got {got.status}; expected 422 (FastAPI does it when the body is a pydantic model with limits)"
            if field_name and field_name not in got.text:
                return False, f"a body {what} got a 422 that does not name the field {field_name!r}: {got.text[:120]}"
        got = await rig.web.request("POST", HEADLINES, content=b"{not json", headers={"content-type": "application/json", CONTRACT.client_header: "vj"})
        if got.status != 422:
            return False, f"a body that is not JSON got {got.status}; expected 422"
        if rig.upstream.seen:
            return False, f"an invalid body still reached the API ({len(rig.upstream.seen)} request(s)): validate first"
        for name, limit in FIELD_LIMITS.items():
            for size in (limit, 1):
                edge = {**PRODUCTS[0], name: " " + "y" * size + " "}
                got = await rig.post(HEADLINES, edge, headers={CONTRACT.client_header: f"edge-{name}-{size}"})
                if got.status == 422:
                    return False, (f"{name} of {size} character(s) (plus spaces around) was rejected: one character up to "
                                   f"{limit} inclusive are fine, after trimming")
        return True, f"{len(_bad_bodies()) + 1} bad bodies answered 422 naming the field, none sent upstream; limits inclusive after trimming"

    return run(ctx, scenario)


@register("ex08.rate-limit")
def rate_limit(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        a, b = {CONTRACT.client_header: "alice"}, {CONTRACT.client_header: "bob"}
        starts = []
        for i in range(CONTRACT.rate_limit):
            starts.append(loop.time())
            got = await rig.post(HEADLINES, PRODUCTS[0], headers=a)
            if got.status != 200:
                return False, f"request {i + 1} of {CONTRACT.rate_limit} in the window got {got.status}; the limit allows {CONTRACT.rate_limit}"
        before = len(rig.upstream.seen)
        over = await rig.post(HEADLINES, PRODUCTS[0], headers=a)
        wait = starts[0] + CONTRACT.rate_window_s - loop.time()
        if over.status != 429:
            return False, f"request {CONTRACT.rate_limit + 1} within {CONTRACT.rate_window_s:g} s got {over.status}; expected 429"
        if len(rig.upstream.seen) != before:
            return False, "the rate-limited request still called the API: check the limit before the call"
        sent = over.headers.get("retry-after", "")
        if not sent.isdigit() or int(sent) != math.ceil(wait - 1e-6):
            return False, f"the 429 says Retry-After {sent or '(none)'}; the oldest request leaves the window in {wait:.1f} s: send {math.ceil(wait)}"
        other = await rig.post(HEADLINES, PRODUCTS[0], headers=b)
        if other.status != 200:
            return False, f"another client (X-Client-Id: bob) got {other.status}: the limit is per client"
        await asyncio.sleep(max(0.0, starts[0] + CONTRACT.rate_window_s - loop.time() - 1.0))
        early = await rig.post(HEADLINES, PRODUCTS[0], headers=a)
        if early.status != 429:
            return False, f"one second before the oldest request left the {CONTRACT.rate_window_s:g} s window, alice got {early.status}, not 429"
        await asyncio.sleep(max(0.0, starts[1] + CONTRACT.rate_window_s - loop.time() + 0.01))
        later = await rig.post(HEADLINES, PRODUCTS[0], headers=a)
        if later.status != 200:
            return False, f"after the oldest requests left the window alice still got {later.status}: count a rolling window on the clock you were given"
        return True, f"{CONTRACT.rate_limit} per {CONTRACT.rate_window_s:g} s per client; the 6th got 429 Retry-After {sent}; bob unaffected; a slot freed on time"

    return run(ctx, scenario)


#: Upstream failure scenarios for the headline endpoint: product index -> (steps, what, statuses allowed, Retry-After wanted).
FAILURES: tuple[tuple[int, str, str, tuple[int, ...], str | None], ...] = (
    (0, "stall", "the API never answered (a timeout)", (504,), None),
    (1, "429 retry-after=7", "the API rate-limited us (429, retry-after 7)", (503,), "7"),
    (2, "503", "the API was overloaded (503)", (503,), str(CONTRACT.default_retry_after_s)),
    (3, "500", "the API failed (500)", (502,), None),
    (4, "reset", "the connection was reset", (502,), None),
    (5, "401", "the API refused our key (401)", (502,), None),
)


def failures_session(ctx: Context) -> list[Exchange]:
    """Every failure the app meets, once per check session: each upstream fault on the headline
    endpoint, a bad body, a stream that fails midway, an unsigned webhook. Answers in order."""
    if "ex08.failures" not in ctx.memo:
        faults = {product_text(**PRODUCTS[i]): [step] * 6 for i, step, *_ in FAILURES}

        async def scenario(rig: Rig) -> list[Exchange]:
            for i, *_ in FAILURES:
                await rig.post(HEADLINES, PRODUCTS[i], headers={CONTRACT.client_header: f"u{i}"})
            await rig.post(HEADLINES, {"product_name": 7}, headers={CONTRACT.client_header: "l-bad"})
            await rig.post(CONTRACT.paths.stream, {"message": FAILING_QUESTIONS["error"]})
            await rig.post(CONTRACT.paths.signup, signup_event(CUSTOMERS[0]), headers={"webhook-id": "msg_x"})
            return rig.answers

        ctx.memo["ex08.failures"] = run(ctx, scenario, faults)
    answers: list[Exchange] = ctx.memo["ex08.failures"]
    return answers


@register("ex08.upstream-errors")
def upstream_errors(ctx: Context) -> tuple[bool, str]:
    for (_i, _step, what, allowed, retry), got in zip(FAILURES, failures_session(ctx)):
        took = (got.ended_at if got.ended_at is not None else got.sent_at) - got.sent_at
        if got.status not in allowed:
            return False, f"when {what} the endpoint answered {got.status}; the contract says {allowed[0]}"
        if took > CONTRACT.answer_within_s:
            return False, (f"when {what} the caller waited {took:,.0f} s for the {got.status}: give the API client a timeout of "
                           f"at most {CONTRACT.upstream_timeout_s:g} s so the answer comes within {CONTRACT.answer_within_s:g} s")
        if retry is not None and got.headers.get("retry-after") != retry:
            return False, f"when {what} the 503 had Retry-After {got.headers.get('retry-after')!r}; expected {retry!r}"
    return True, "timeout 504; API 429 and 503 -> 503 with Retry-After; 500, reset, 401 -> 502; never a 500"


@register("ex08.no-leaks")
def no_leaks(ctx: Context) -> tuple[bool, str]:
    for got in failures_session(ctx):
        text = got.text + " " + " ".join(f"{k}: {v}" for k, v in got.headers.items())
        marker = next((m for m in LEAK_MARKERS if m in text), None)
        if marker is not None:
            where = text.find(marker)
            return False, f"an answer with status {got.status} shows {marker!r}: …{text[max(0, where - 40):where + 60]}…; answer in words of your own"
        if got.status == 500:
            return False, f"an answer with status 500 ({got.text[:100]!r}): map every upstream failure to 502, 503 or 504"
    return True, "no key, internal detail, exception text or traceback in any answer, failures included"


# --------------------------------------------------------------------------- 3. the SSE relay

STREAM = CONTRACT.paths.stream


def _deltas(got: Exchange) -> list[tuple[float, Any]]:
    return [(at, data) for at, name, data in got.events() if name == "delta"]


def _beats(got: Exchange) -> list[float]:
    return [at for at, name, _ in got.events() if name in (":", "ping", "heartbeat")]


@register("ex08.relay")
def relay(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        shown = []
        for kind in ("short", "long"):
            inter = recorded(f"relay: the {kind} answer")
            got = await rig.post(STREAM, {"message": RELAY_MESSAGES[kind]})
            if got.status != 200 or not got.headers.get("content-type", "").startswith("text/event-stream"):
                return False, f"the {kind} answer: status {got.status}, content-type {got.headers.get('content-type')!r}; expected 200 text/event-stream"
            if got.raised is not None:
                return False, f"the {kind} answer: the app raised {type(got.raised).__name__} while streaming: end the generator cleanly"
            deltas = _deltas(got)
            text = "".join(d.get("text", "") if isinstance(d, dict) else str(d) for _, d in deltas)
            want = text_of(inter)
            if text != want:
                return False, f"the {kind} answer's delta events, joined, differ from the answer {_first_difference(text, want)} (send each delta as JSON data)"
            names = [name for _, name, _ in got.events() if name != ":"]
            if names[-2:] != ["usage", "done"]:
                return False, f"the {kind} answer ends with events {names[-3:]}; expected ... delta, usage, done"
            usage = next(data for _, name, data in got.events() if name == "usage")
            expect = {**usage_of(inter), "model": model_of(inter)}
            if not isinstance(usage, dict) or {k: usage.get(k) for k in expect} != expect:
                return False, f"the {kind} answer's usage event says {usage!r}; the final upstream event said {expect}"
            first_up = delta_times(inter)[0]
            first = deltas[0][0] - got.sent_at
            if first > first_up + 0.05:
                return False, f"the first delta left {first:.3f} s after the request, though the API sent it at {first_up:.3f} s: relay each event as it comes, do not buffer"
            shown.append(f"{kind}: {len(deltas)} deltas, first after {first * 1000:.0f} ms")
        return True, "; ".join(shown) + ", then usage and done"

    return run(ctx, scenario)


@register("ex08.relay-heartbeat")
def relay_heartbeat(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        got = await rig.post(STREAM, {"message": RELAY_MESSAGES["deep"], "deep": True})
        deltas = _deltas(got)
        if got.status != 200 or not deltas:
            return False, f"the deep answer: status {got.status} and {len(deltas)} delta events"
        silence = deltas[0][0] - got.sent_at
        beats = [t for t in _beats(got) if t < deltas[0][0]]
        if not beats:
            return False, f"no heartbeat during the {silence:.1f} s before the first token: send a comment line (': ping') every {CONTRACT.heartbeat_s:g} s of silence"
        times = [got.sent_at] + [at for at, _ in got.chunks]
        gap = max(b - a for a, b in zip(times, times[1:]))
        if gap > CONTRACT.heartbeat_s + 0.5:
            return False, f"{gap:.1f} s passed without a byte; the contract sends a heartbeat after {CONTRACT.heartbeat_s:g} s of silence"
        text = "".join(d.get("text", "") for _, d in deltas if isinstance(d, dict))
        want = text_of(recorded("relay: the deep answer"))
        if text != want:
            return False, f"with heartbeats the text came out wrong {_first_difference(text, want)} (a heartbeat must not lose the pending event)"
        return True, f"{len(beats)} heartbeats in {silence:.1f} s of silence, never more than {gap:.1f} s without a byte, text intact"

    return run(ctx, scenario)


def _after(count: int, *marks: bytes) -> Callable[[Exchange], bool]:
    """A ``disconnect_when`` that is true once ``count`` pieces have arrived that start with one of ``marks``."""
    seen = [0]

    def when(got: Exchange) -> bool:
        piece = got.chunks[-1][1] if got.chunks else b""
        seen[0] += sum(1 for block in piece.split(b"\n\n") if block.lstrip().startswith(marks))
        return seen[0] >= count

    return when


@register("ex08.relay-disconnect")
def relay_disconnect(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        cases = (("long", {"message": RELAY_MESSAGES["long"]}, _after(3, b"event: delta"), "after 3 deltas"),
                 ("deep", {"message": RELAY_MESSAGES["deep"], "deep": True}, _after(1, b":", b"event: ping", b"event: heartbeat"),
                  "during the silence, after a heartbeat"))
        for kind, body, when, what in cases:
            got = await rig.post(STREAM, body, disconnect_when=when)
            if got.disconnected_at is None:
                return False, f"the {kind} stream ended before the client could leave {what} (status {got.status})"
            await asyncio.sleep(1.0)
            ledger = rig.upstream.ledger
            if ledger.in_flight:
                return False, (f"the client left the {kind} answer {what}, and one second later the upstream stream is still open: "
                               "close it when the client goes away (a `finally:` that cancels and `await stream.close()`)")
            if ledger.finished:
                return False, f"the client left the {kind} answer {what}, yet the upstream stream was read to its end"
        after = await rig.post(STREAM, {"message": RELAY_MESSAGES["short"]})
        if after.status != 200 or not _deltas(after):
            return False, f"after two clients left, the next request got {after.status}"
        return True, f"two clients left (midway, and during the silence): both upstream streams closed at once ({rig.upstream.ledger.closed_early} closed early), the app serves on"

    return run(ctx, scenario)


@register("ex08.relay-errors")
def relay_errors(ctx: Context) -> tuple[bool, str]:
    faults = {RELAY_MESSAGES["short"]: ["503 retry-after=3"] * 6, RELAY_MESSAGES["long"]: ["cut"]}

    async def scenario(rig: Rig) -> tuple[bool, str]:
        for kind in ("error", "failed", "long"):
            got = await rig.post(STREAM, {"message": RELAY_MESSAGES[kind]})
            if got.raised is not None:
                return False, f"when the stream failed midway ({kind}) the app raised {type(got.raised).__name__}: send an error event instead"
            names = [name for _, name, _ in got.events() if name != ":"]
            if got.status != 200 or "delta" not in names:
                return False, f"a stream that fails midway: status {got.status}, events {names[:5]}"
            if names.count("error") != 1 or names[-1] != "error" or "done" in names:
                return False, f"a stream that failed midway ({kind}) ended with events {names[-3:]}: send one error event, then end (no done)"
            data = next(d for _, n, d in got.events() if n == "error")
            if not isinstance(data, dict) or not data.get("message"):
                return False, f"the error event's data is {data!r}; send {{'code': ..., 'message': ...}}"
            if "Sorry about that" in json.dumps(data):
                return False, "the error event repeats the API's own message: say it in words of your own"
        if rig.upstream.ledger.in_flight:
            return False, "after a failed stream the upstream response is still open: close it"
        early = await rig.post(STREAM, {"message": RELAY_MESSAGES["short"]})
        if early.status != 503 or early.headers.get("retry-after") != "3":
            return False, (f"when the API answered 503 before the stream began, the endpoint answered {early.status} "
                           f"(Retry-After {early.headers.get('retry-after')!r}); expected 503 with Retry-After 3, before any event")
        return True, ("an error event, a failed response and a dropped connection mid-stream each became one error event; "
                      "a 503 before the stream stayed a 503")

    return run(ctx, scenario, faults)


# --------------------------------------------------------------------------- 4. webhooks

SIGNUP = CONTRACT.paths.signup


def _delivery(customer: dict[str, str], msg_id: str, *, secret: str = SIGNUP_SECRET, timestamp: int | None = None,
              body: str | None = None) -> tuple[str, dict[str, str]]:
    payload = json.dumps(signup_event(customer))
    return (body if body is not None else payload), sign_webhook(payload, secret, msg_id=msg_id, timestamp=timestamp)


async def _deliver(rig: Rig, content: str, headers: dict[str, str]) -> Exchange:
    got = await rig.web.request("POST", SIGNUP, content=content, headers=headers)
    rig.answers.append(got)
    return got


def _onboarding_text(customer: dict[str, str]) -> str:
    return text_of(recorded(f"onboarding email for {customer['name']}"))


@register("ex08.webhook-signature")
def webhook_signature(ctx: Context) -> tuple[bool, str]:
    now = int(time.time())  # the SDK checks signatures against the wall clock
    customer = CUSTOMERS[0]
    wrong = "whsec_" + "QUJD" * 11
    bad: list[tuple[str, tuple[str, dict[str, str]]]] = [
        ("signed with another secret", _delivery(customer, "msg_a", secret=wrong)),
        ("with a body changed after signing", _delivery(customer, "msg_b", body=json.dumps(signup_event({**customer, "plan": "business"})))),
        ("ten minutes old", _delivery(customer, "msg_c", timestamp=now - 600)),
        ("ten minutes in the future", _delivery(customer, "msg_d", timestamp=now + 600)),
    ]
    content, headers = _delivery(customer, "msg_e")
    bad.append(("without a webhook-signature header", (content, {k: v for k, v in headers.items() if k != "webhook-signature"})))
    bad.append(("without a webhook-id header", (content, {k: v for k, v in headers.items() if k != "webhook-id"})))

    async def scenario(rig: Rig) -> tuple[bool, str]:
        for what, (body, hdrs) in bad:
            got = await _deliver(rig, body, hdrs)
            if got.status not in CONTRACT.rejected_statuses:
                return False, f"a delivery {what} got {got.status}; reject it with 401 (verify_signature raises ValueError)"
        await asyncio.sleep(30)
        if rig.upstream.seen or rig.mailer.sent:
            return False, f"rejected deliveries still caused {len(rig.upstream.seen)} API call(s) and {len(rig.mailer.sent)} email(s)"
        junk = '{"type": "customer.deleted", "data": {}}'
        got = await _deliver(rig, junk, sign_webhook(junk, SIGNUP_SECRET, msg_id="msg_junk"))
        if got.status != 400:
            return False, f"a well-signed body that is not a customer.created event got {got.status}; expected 400"
        body, hdrs = _delivery(customer, "msg_a", timestamp=now - 30)  # the id of the forged delivery above
        got = await _deliver(rig, body, hdrs)
        if got.status != 202:
            return False, (f"a valid delivery (signed 30 s ago) got {got.status}; expected 202 (its webhook-id came before in a "
                           "delivery signed with another secret: take an id only after the signature is verified)")
        return True, f"{len(bad)} bad deliveries rejected (another secret, changed body, stale, future, missing headers), junk 400, a valid one 202"

    return run(ctx, scenario)


@register("ex08.webhook-idempotent")
def webhook_idempotent(ctx: Context) -> tuple[bool, str]:
    first, second, third = CUSTOMERS
    faults = {}

    async def scenario(rig: Rig) -> tuple[bool, str]:
        body, hdrs = _delivery(first, "msg_1")
        one = await _deliver(rig, body, hdrs)
        again = await _deliver(rig, body, hdrs)
        if one.status != 202 or again.status != 200:
            return False, f"the same delivery twice got {one.status} then {again.status}; expected 202, then 200 (a duplicate)"
        body2, hdrs2 = _delivery(second, "msg_2")
        both = await asyncio.gather(_deliver(rig, body2, hdrs2), _deliver(rig, body2, hdrs2))
        if sorted(g.status for g in both) != [200, 202]:
            return False, f"two deliveries of one id at the same moment got {[g.status for g in both]}: exactly one must be accepted"
        body3, hdrs3 = _delivery(first, "msg_3")
        await _deliver(rig, body3, hdrs3)
        await asyncio.sleep(30)
        to = [str(m["To"]) for m in rig.mailer.sent]
        want = [first["email"], second["email"], first["email"]]
        if sorted(to) != sorted(want):
            return False, f"emails went to {to}; expected one per webhook id: {want} (deduplicate by webhook-id, not by customer)"
        faults[product_key(third)] = ["400"]
        body4, hdrs4 = _delivery(third, "msg_4")
        failed = await _deliver(rig, body4, hdrs4)
        await asyncio.sleep(30)
        if failed.status != 202 or len(rig.mailer.sent) != 3:
            return False, f"a delivery whose email could not be written got {failed.status} and {len(rig.mailer.sent) - 3} email(s)"
        retry = await _deliver(rig, body4, hdrs4)
        await asyncio.sleep(30)
        if retry.status != 202 or len(rig.mailer.sent) != 4:
            return False, (f"the sender delivered a webhook again after its work had failed: it got {retry.status} and "
                           f"{len(rig.mailer.sent) - 3} email(s); release the id when the work fails, so it can be done")
        return True, "a repeat got 200 without a second email, concurrent repeats one email, a new id a new email, a failed one could be redelivered"

    def product_key(customer: dict[str, str]) -> str:
        from ..course.ex08 import onboarding_request

        return str(onboarding_request(customer)["input"][-1]["content"])

    async def wired(rig: Rig) -> tuple[bool, str]:
        rig.upstream.faults = faults  # filled in as the scenario goes
        return await scenario(rig)

    return run(ctx, wired)


@register("ex08.webhook-background")
def webhook_background(ctx: Context) -> tuple[bool, str]:
    customer = CUSTOMERS[1]

    async def scenario(rig: Rig) -> tuple[bool, str]:
        body, hdrs = _delivery(customer, "msg_bg")
        loop = asyncio.get_running_loop()
        got = await _deliver(rig, body, hdrs)
        took = (got.started_at if got.started_at is not None else loop.time()) - got.sent_at
        if got.status != 202:
            return False, f"a valid signup got {got.status}; expected 202"
        if took > CONTRACT.webhook_deadline_s:
            return False, (f"the webhook answered after {took:.1f} s: answer within {CONTRACT.webhook_deadline_s:g} s and write the "
                           "email in the background (BackgroundTasks), or the sender times out and retries")
        await asyncio.sleep(30)
        if len(rig.mailer.sent) != 1:
            return False, f"{len(rig.mailer.sent)} emails were sent for one signup"
        mail = rig.mailer.sent[0]
        want = {"To": customer["email"], "Subject": onboarding_subject(customer), "From": CONTRACT.mail_from}
        seen = {k: str(mail[k]) for k in want}
        if seen != want:
            return False, f"the email's headers are {seen}; expected {want}"
        text = mail.get_content().strip() if hasattr(mail, "get_content") else str(mail.get_payload()).strip()
        if text != _onboarding_text(customer).strip():
            return False, f"the email's body is not the model's answer {_first_difference(text, _onboarding_text(customer).strip())}"
        return True, f"answered 202 after {took * 1000:.0f} ms; the onboarding email ({len(text)} characters, from the model) went out afterwards"

    return run(ctx, scenario)


@register("ex08.openai-webhook")
def openai_webhook(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        started = await rig.post(CONTRACT.paths.background, {"prompt": BACKGROUND_PROMPT})
        job = started.json()["id"] if started.status == 202 else None
        if job is None:
            return False, f"starting the background job got {started.status}"
        event = json.dumps({"id": "evt_" + "0" * 24, "object": "event", "created_at": 1793491260, "type": "response.completed",
                            "data": {"id": job}})
        forged = sign_webhook(event, "whsec_" + "WFla" * 11, msg_id="wh_forged")
        got = await rig.web.request("POST", CONTRACT.paths.openai_hook, content=event, headers=forged)
        if got.status not in CONTRACT.rejected_statuses:
            return False, f"a response.completed event signed with another secret got {got.status}; reject it (unwrap raises)"
        await asyncio.sleep(5)
        if rig.sent(f"/responses/{job}"):
            return False, "a forged webhook made the app retrieve the response: verify before acting"
        failed = event.replace('"response.completed"', '"response.failed"')
        got = await rig.web.request("POST", CONTRACT.paths.openai_hook, content=failed,
                                    headers=sign_webhook(failed, OPENAI_WEBHOOK_SECRET, msg_id="wh_failed"))
        await asyncio.sleep(5)
        if got.status >= 500 or (await rig.get(f"{CONTRACT.paths.background}/{job}")).json().get("status") == "completed":
            return False, (f"a signed response.failed event (answered {got.status}) left the job marked completed: "
                           "retrieve the response only for response.completed")
        got = await rig.web.request("POST", CONTRACT.paths.openai_hook, content=event,
                                    headers=sign_webhook(event, OPENAI_WEBHOOK_SECRET, msg_id="wh_real"))
        if got.status != 200:
            return False, f"OpenAI's signed response.completed event got {got.status}; expected 200"
        await asyncio.sleep(5)
        result = (await rig.get(f"{CONTRACT.paths.background}/{job}")).json()
        want = text_of(recorded("the background response retrieved"))
        if result.get("status") != "completed" or result.get("text") != want:
            return False, f"after the webhook the job says {str(result)[:120]}; retrieve the response (event.data.id) and keep its text"
        return True, "a forged event rejected; OpenAI's signed response.completed led to responses.retrieve and the finished text"

    return run(ctx, scenario)


# --------------------------------------------------------------------------- 5. the chat


async def _turn(ws: Any, message: str) -> tuple[str, list[Any]]:
    await ws.send_json({"message": message})
    got = await ws.receive_until("done", "error")
    return "".join(m.get("text", "") for m in got if isinstance(m, dict) and m.get("type") == "delta"), got


#: A chat message the API answers with 500 (every retry): the client gets an error of the app's own words.
CHAT_FAILS = "Is Taskflow down right now?"


@register("ex08.chat")
def chat(ctx: Context) -> tuple[bool, str]:
    replies = [text_of(recorded(label)) for label in (
        "chat connection 1, turn 1", "chat connection 1, turn 2", "chat connection 2: the same question")]

    async def scenario(rig: Rig) -> tuple[bool, str]:
        async with rig.web.websocket(CONTRACT.paths.chat) as one:
            text, got = await _turn(one, CHAT_SCRIPT[0])
            deltas = [m for m in got if isinstance(m, dict) and m.get("type") == "delta"]
            if text != replies[0]:
                return False, f"turn 1 came back {_first_difference(text, replies[0])}; messages: {str(got[-1])[:100]}"
            if len(deltas) < 2:
                return False, f"turn 1 came in {len(deltas)} delta message(s): stream the answer, a message per delta"
            done = got[-1]
            if done.get("type") != "done" or not isinstance(done.get("usage"), dict) or not done["usage"].get("output_tokens"):
                return False, f"turn 1 ended with {str(done)[:100]}; expected {{'type': 'done', 'usage': {{...}}}}"
            sent = len(rig.upstream.seen)
            too_long = json.dumps({"message": "z" * (CONTRACT.max_message_chars + 1)})
            for what, text in (("not JSON", "this is not JSON"), ("a blank message", '{"message": "  "}'),
                               ("a number", '{"message": 5}'), ("a list", "[1, 2]"),
                               (f"{CONTRACT.max_message_chars + 1} characters", too_long)):
                await one.send_text(text)
                bad = await one.receive()
                if not isinstance(bad, dict) or bad.get("type") != "error":
                    return False, f"a message that is {what} was answered with {str(bad)[:80]}; expected {{'type': 'error', ...}}, the connection open"
            if len(rig.upstream.seen) != sent:
                return False, "a bad message still reached the API: check it first"
            text, got = await _turn(one, CHAT_SCRIPT[1])
            if text != replies[1]:
                return False, ("turn 2 did not continue the conversation (the request must carry the conversation id or "
                               f"previous_response_id): {_first_difference(text, replies[1])}")
            async with rig.web.websocket(CONTRACT.paths.chat) as two:
                try:
                    text, got = await _turn(two, "  " + CHAT_SCRIPT[1] + " \n")
                except ConnectionError as err:
                    return False, (f"a message with spaces around it closed the connection ({err}): chat_message returns the "
                                   "message trimmed, and that is what goes upstream")
                if text != replies[2]:
                    return False, ("a second connection must start its own conversation, and the message goes upstream trimmed "
                                   f"(this one had spaces around it): {_first_difference(text, replies[2])}")
                await two.send_json({"message": CHAT_FAILS})
                failed = await two.receive()
                if not isinstance(failed, dict) or failed.get("type") != "error":
                    return False, f"when the API failed (500) for a chat message the client got {str(failed)[:100]}; expected {{'type': 'error', ...}}"
                leaked = next((m for m in LEAK_MARKERS if m in json.dumps(failed)), None)
                if leaked is not None:
                    return False, f"the chat's error message when the API failed shows {leaked!r}: {str(failed)[:120]}; use words of your own"
                await two.send_text("still there?")
                after = await two.receive()
                if not isinstance(after, dict) or after.get("type") != "error":
                    return False, f"after the API failed once, the connection answered {str(after)[:80]}: keep it open and keep answering"
            async with rig.web.websocket(CONTRACT.paths.chat) as three:
                before = len(rig.upstream.seen)
                await three.send_json({"message": " " + "w" * CONTRACT.max_message_chars + " "})
                with contextlib.suppress(ConnectionError, TimeoutError):
                    await three.receive(timeout=30)
                if len(rig.upstream.seen) == before:
                    return False, f"a message of exactly {CONTRACT.max_message_chars} characters was refused: the limit is inclusive"
        return True, (f"{len(deltas)} deltas then done; turn 2 continued connection 1's conversation; connection 2 had its own "
                      "(message trimmed); bad input and an API failure answered with an error, the connection open")

    return run(ctx, scenario, {CHAT_FAILS: ["500"] * 6})


@register("ex08.chat-disconnect")
def chat_disconnect(ctx: Context) -> tuple[bool, str]:
    async def scenario(rig: Rig) -> tuple[bool, str]:
        finished = rig.upstream.ledger.finished
        ws = rig.web.websocket(CONTRACT.paths.chat)
        await ws.__aenter__()
        await ws.send_json({"message": CHAT_LONG})
        for _ in range(3):
            message = await ws.receive()
            if not isinstance(message, dict) or message.get("type") != "delta":
                return False, f"the long answer began with {str(message)[:80]}"
        await ws.disconnect(wait=1.0)
        await asyncio.sleep(1.0)
        if rig.upstream.ledger.in_flight:
            return False, "a chat client left midway and the upstream stream is still open one second later: leave `async with stream:` so it closes"
        if rig.upstream.ledger.finished > finished + 1:  # the connection's new conversation, not its stream
            return False, "a chat client left midway, yet its upstream stream was read to the end"
        if ws.raised is not None:
            return False, f"when a chat client left midway the app raised {type(ws.raised).__name__}: catch WebSocketDisconnect"
        async with rig.web.websocket(CONTRACT.paths.chat) as again:
            text, _ = await _turn(again, CHAT_SCRIPT[1])
            if text != text_of(recorded("chat connection 2: the same question")):
                return False, f"after a client left, a new connection was not served: {text[:80]!r}"
        return True, "a client that left midway had its upstream stream closed at once; the next connection was served"

    return run(ctx, scenario)


# --------------------------------------------------------------------------- 6. the dashboard


def reference_summary(entries: list[LogEntry], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    """The figures METRICS_KEYS defines, computed plainly (the property check's oracle)."""
    recent = [e for e in entries if now - window_s < e.at <= now]
    count = len(recent)

    def ms(values: list[float]) -> dict[str, float | None]:
        return {f"p{p}": (None if (v := percentile(values, p)) is None else v * 1000) for p in (50, 95)}

    status: dict[str, int] = {}
    for e in recent:
        status[str(e.status)] = status.get(str(e.status), 0) + 1
    models: dict[str, dict[str, float]] = {}
    for e in recent:
        if e.model:
            row = models.setdefault(e.model, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
            row["requests"] += 1
            row["input_tokens"] += e.input_tokens
            row["output_tokens"] += e.output_tokens
            row["cost_usd"] += e.cost_usd
    return {"window_s": window_s, "requests": count, "requests_per_minute": count * 60 / window_s,
            "latency_ms": ms([e.latency_s for e in recent]), "ttft_ms": ms([e.ttft_s for e in recent if e.ttft_s is not None]),
            "status": status, "error_rate": {k: n / count for k, n in status.items() if int(k) >= 400}, "models": models}


def _close(a: Any, b: Any, path: str = "") -> str | None:
    """Where two figures differ (numbers within 1e-6 relative), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}{key}: {'missing' if key not in a else 'not expected'}"
            found = _close(a[key], b[key], f"{path}{key}.")
            if found:
                return found
        return None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return None if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) else f"{path.rstrip('.')}: {a!r}, expected {b!r}"
    return None if a == b else f"{path.rstrip('.')}: {a!r}, expected {b!r}"


def drawn_logs(count: int = 40, seed: int = 808) -> list[tuple[list[LogEntry], float]]:
    """Seeded request logs, smallest first: times around the window's edges, every status class,
    entries with and without a model or a time to first token, now and then repeated values."""
    import random

    rng = random.Random(seed)
    models = [FAST, DEFAULT, None]
    logs = []
    for _ in range(count):
        now = rng.choice([60.0, 100.0, 127.5])
        size = rng.randint(1, 14)
        entries = [
            LogEntry(at=rng.choice([now - 60.0, now, now + 0.5, round(rng.uniform(now - 90, now), 3)]), method="POST",
                     route=rng.choice(["/api/headlines", "/api/chat/stream"]),
                     status=rng.choice([200, 200, 202, 304, 400, 422, 429, 502, 503, 504]), latency_s=round(rng.uniform(0, 20), 3),
                     ttft_s=rng.choice([None, round(rng.uniform(0, 12), 3)]), model=rng.choice(models),
                     input_tokens=rng.randint(0, 2_000), output_tokens=rng.randint(0, 2_000), cost_usd=round(rng.uniform(0, 0.05), 6))
            for _ in range(size)
        ]
        logs.append((entries, now))
    return sorted(logs, key=lambda log: len(log[0]))


@register("ex08.dashboard-metrics")
def dashboard_metrics(ctx: Context) -> tuple[bool, str]:
    summarize = ctx.attr("summarize")
    edges = [
        ([], 100.0),
        ([LogEntry(40.0, "POST", "/a", 200, 1.0)], 100.0),  # exactly window_s old: out
        ([LogEntry(100.0, "POST", "/a", 503, 2.0, 0.5, FAST, 10, 20, 0.001)], 100.0),  # at now: in
        ([LogEntry(100.5, "POST", "/a", 200, 1.0)], 100.0),  # in the future: out
        ([LogEntry(90.0 + i, "POST", "/a", 200, float(i)) for i in range(1, 21)], 120.0),  # p95 of 20 is the 19th
        ([LogEntry(99.0, "POST", "/a", 200, 0.5, 0.0), LogEntry(99.5, "POST", "/a", 200, 0.5, 0.0),
          LogEntry(99.8, "POST", "/a", 200, 0.9, 0.4)], 100.0),  # ttft 0.0 is a time, only None is missing
    ]
    cases = edges + drawn_logs()
    #: the same logs with a window of 30 s, passed as window_s
    windows = [None] * len(cases) + [30.0] * 10
    cases += drawn_logs(10, seed=830)
    for (entries, now), window in zip(cases, windows):
        extra = {} if window is None else {"window_s": window}
        got = json.loads(json.dumps(summarize(list(entries), now, **extra)))
        want = json.loads(json.dumps(reference_summary(list(entries), now, **extra)))
        found = _close(got, want)
        if found is not None:
            shown = "; ".join(f"at={e.at:g} status={e.status} latency_s={e.latency_s:g} ttft_s={e.ttft_s} model={e.model}"
                              for e in entries[:3])
            said = "" if window is None else f", window_s={window:g}"
            return False, f"with {len(entries)} log entries at now={now:g}{said} ({shown}{' ...' if len(entries) > 3 else ''}): {found}"
    return True, (f"summarize matches the contract on {len(edges)} edge cases and {len(cases) - len(edges)} seeded request logs "
                  "(10 with window_s=30)")


@register("ex08.dashboard-live")
def dashboard_live(ctx: Context) -> tuple[bool, str]:
    faults = {product_text(**PRODUCTS[3]): ["500"] * 6}

    async def scenario(rig: Rig) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        took: list[float] = []
        for i in range(3):
            got = await rig.post(HEADLINES, PRODUCTS[i], headers={CONTRACT.client_header: f"d{i}"})
            took.append(got.ended_at - got.sent_at if got.ended_at else 0.0)
        for body in ({"product_name": ""}, PRODUCTS[3]):
            got = await rig.post(HEADLINES, body, headers={CONTRACT.client_header: "d-bad"})
            took.append((got.ended_at or loop.time()) - got.sent_at)
        got = await rig.post(STREAM, {"message": RELAY_MESSAGES["short"]})
        took.append((got.ended_at or loop.time()) - got.sent_at)
        shown = await rig.get(CONTRACT.paths.metrics)
        m = shown.json() if shown.status == 200 else {}
        if m.get("requests") != 6:
            return False, f"after 6 requests the metrics say requests={m.get('requests')!r}: count the request log's entries in the window"
        if m.get("status") != {"200": 4, "422": 1, "502": 1}:
            return False, f"the metrics' status counts are {m.get('status')}; expected {{'200': 4, '422': 1, '502': 1}}"
        want_tokens: dict[str, list[int]] = {}
        for served in rig.upstream.replay.served:  # the answers the API gave, in whichever API was used
            inter = _interactions()[served.index]
            if inter.status == 200 and inter.path.endswith(("/responses", "/chat/completions")):
                row = want_tokens.setdefault(model_of(inter), [0, 0])
                row[0] += usage_of(inter)["input_tokens"]
                row[1] += usage_of(inter)["output_tokens"]
        seen = {name: [s.get("input_tokens"), s.get("output_tokens")] for name, s in (m.get("models") or {}).items()}
        if seen != want_tokens:
            return False, f"tokens by model are {seen}; the API's usage says {want_tokens} (note the model and usage of every answer)"
        p50 = (m.get("latency_ms") or {}).get("p50")
        want_p50 = percentile(took, 50)
        if p50 is None or want_p50 is None or abs(p50 - want_p50 * 1000) > 5:
            return False, f"latency p50 is {p50!r} ms; the requests took {sorted(round(t * 1000) for t in took)} ms"
        ttft = (m.get("ttft_ms") or {}).get("p50")
        first = _deltas(got)[0][0] - got.sent_at if _deltas(got) else None
        if ttft is None or first is None or abs(ttft - first * 1000) > 5:
            return False, f"time to first token p50 is {ttft!r} ms; the stream's first delta left after {first and first * 1000:.0f} ms (set request.state.first_token_at)"
        await asyncio.sleep(CONTRACT.metrics_window_s + 1)
        later = (await rig.get(CONTRACT.paths.metrics)).json()
        if later.get("requests") != 0:
            return False, f"{CONTRACT.metrics_window_s:g} s later the metrics still count {later.get('requests')} requests: keep only the window"
        return True, f"6 requests: statuses, tokens by model, latency p50 {p50:.0f} ms and TTFT p50 {ttft:.0f} ms from the request log; the window moves"

    return run(ctx, scenario, faults)
