"""Helpers of the ex06 and ex07 checks: a real Redis per check (one connection and a fresh key
prefix, dropped afterwards), workers run all at once, and an API the checks can watch.

:func:`api` gives the code under test a real SDK client whose requests meet a scripted fault
scenario first, then the cassettes, answered honestly by the course simulator (a valid request on
a recorded task, on either API, with any current model). Its :class:`Tap` keeps every exchange:
what was sent, what came back and what it cost, so checks grade what the requests *mean*
(:func:`request_view` reads Chat Completions and Responses bodies alike), not which method sent them.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai
import redis

from .. import redisd
from ..costs import cost
from ..faults import FaultTransport, Latency, Step, parse_scenario
from ..replay import DEFAULTS, IGNORED_FIELDS, ReplayTransport
from . import Context, Outcome, register

#: 2026-11-10 12:00:00 UTC: where the checks' clock starts (a whole minute, mid-month).
START = datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp()
#: A moment of the next month, for checks that span two months.
DECEMBER = datetime(2026, 12, 3, 9, 0, tzinfo=UTC).timestamp()


def redis_check(check_id: str, *, tag: str, start: float) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    """Register ``fn(ctx, r, prefix)`` as check ``check_id``; the check's clock starts at ``start``.

    A Redis that cannot be reached makes the check an ``error`` saying why, never a hang.
    """

    def deco(fn: Callable[..., Any]) -> Callable[[Context], Any]:
        @functools.wraps(fn)
        def run(ctx: Context) -> Any:
            try:
                r = redisd.connect()
            except redisd.RedisUnavailable as err:
                return Outcome("error", str(err))
            prefix = redisd.fresh_prefix(tag)
            ctx.clock.now = start
            try:
                return fn(ctx, r, prefix)
            finally:
                try:
                    redisd.drop_prefix(r, prefix)
                except redis.RedisError:
                    pass
                r.close()

        return register(check_id)(run)

    return deco


def concurrently(work: Callable[[int], None], workers: int = 8) -> list[str]:
    """Run ``work(i)`` for each i in range(workers), all at once in threads; the errors raised, in short."""
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            work(i)
        except Exception as err:  # noqa: BLE001 - reported by the check
            errors.append(f"{type(err).__name__}: {err}"[:200])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


# --------------------------------------------------------------------------- an API the checks watch


@dataclass(frozen=True)
class Exchange:
    """One request the code under test sent and what came back (``status`` None: no answer at all)."""

    path: str
    body: dict[str, Any]
    status: int | None
    data: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.data is not None

    @property
    def usd(self) -> float:
        """What this answer cost, priced from the usage it reported (0 for a failure)."""
        if not self.ok or self.data is None or not self.data.get("usage"):
            return 0.0
        return cost(self.data["usage"], str(self.data.get("model"))).total_usd

    @property
    def view(self) -> dict[str, Any]:
        return request_view(self.path, self.body)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def text(self) -> str:
        """The answer's text (either API)."""
        data = self.data or {}
        if data.get("object") == "response":
            return "".join(part.get("text", "") for item in data.get("output") or [] if item.get("type") == "message"
                           for part in item.get("content") or [] if part.get("type") == "output_text")
        message = ((data.get("choices") or [{}])[0]).get("message") or {}
        return str(message.get("content") or "")


class Tap(httpx2.BaseTransport):
    """Passes each request on to ``inner`` and keeps the exchange (thread-safe)."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        try:
            response = self.inner.handle_request(request)
        except Exception:
            self._keep(Exchange(request.url.path, body, None, None))
            raise
        content = response.read()
        try:
            data = json.loads(content) if content[:1] == b"{" else None
        except ValueError:
            data = None
        self._keep(Exchange(request.url.path, body, response.status_code, data))
        return response

    def _keep(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    @property
    def answered(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.ok]

    def since(self, n: int) -> list[Exchange]:
        with self._lock:
            return self.exchanges[n:]


@dataclass
class API:
    """A client for the code under test and the tap that watches it."""

    client: openai.OpenAI
    tap: Tap
    faults: FaultTransport


def api(cassettes: str | Sequence[str], scenario: str | Sequence[str | Step] = (), *, latency: Latency | None = None) -> API:
    """A real SDK client (no retries of its own) on the scenario, then the simulated recordings."""
    names = [cassettes] if isinstance(cassettes, str) else list(cassettes)
    faults = FaultTransport(parse_scenario(scenario), ReplayTransport(names, simulate=True), latency=latency)
    tap = Tap(faults)
    client = openai.OpenAI(api_key="checks-no-key", base_url="https://api.openai.com/v1", max_retries=0,
                           http_client=httpx2.Client(transport=tap))
    return API(client, tap, faults)


# --------------------------------------------------------------------------- what a request means

_SAMPLING = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "seed", "stop", "n")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return json.dumps(content, sort_keys=True)


def conversation(path: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every message sent, either API; developer, system and instructions are one role."""
    items: Any = body.get("messages") if "messages" in body else body.get("input", [])
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    out = [("system", str(body["instructions"]))] if body.get("instructions") else []
    for item in items or []:
        if isinstance(item, dict) and "role" in item:
            role = "system" if item["role"] in ("system", "developer") else str(item["role"])
            out.append((role, _text(item.get("content"))))
    return out


def output_format(path: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The structured-output format asked for, either API: type, strict, the schema's required fields."""
    fmt = body.get("response_format") if path.endswith("/chat/completions") else (body.get("text") or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    spec = fmt.get("json_schema", fmt) if fmt.get("type") == "json_schema" else {}
    schema = spec.get("schema") or {}
    return {"type": fmt["type"], "strict": spec.get("strict") is True, "required": sorted(schema.get("required") or [])}


def request_view(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """What a request asks for, the same whichever API carried it.

    ``model``, ``effort`` (as sent, else the model's default), ``limit`` (the output cap,
    whichever name), ``sampling`` parameters, ``verbosity``, ``format`` (structured output),
    ``conversation`` and ``other`` (every remaining parameter, ignored-for-matching ones included).
    """
    from ..authoring import effort_of

    b = dict(body)
    model = str(b.pop("model", ""))
    effort = effort_of(body, model) or None
    chat = path.endswith("/chat/completions")
    limit = b.pop("max_completion_tokens", None) if chat else b.pop("max_output_tokens", None)
    if chat and limit is None and "max_tokens" in b:
        limit = b.pop("max_tokens")
    verbosity = b.pop("verbosity", None) if chat else ((b.get("text") or {}).get("verbosity"))
    for name in ("messages", "input", "instructions", "reasoning_effort", "reasoning", "response_format", "text", "stream"):
        b.pop(name, None)
    sampling = {k: b.pop(k) for k in _SAMPLING if k in b}
    return {
        "model": model, "effort": effort, "limit": limit, "sampling": sampling, "verbosity": verbosity,
        "format": output_format(path, body), "conversation": conversation(path, body),
        "other": {k: v for k, v in sorted(b.items()) if v is not None},
    }


def shaping_view(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """:func:`request_view` without what cannot change the answer (for comparisons): the ignored
    parameters, and parameters sent at the API's default value (``n=1``, ``temperature=1``...)."""
    view = request_view(path, body)
    view["other"] = {k: v for k, v in view["other"].items() if k not in IGNORED_FIELDS and not _default(k, v)}
    view["sampling"] = {k: v for k, v in view["sampling"].items() if not _default(k, v)}
    return view


def _default(name: str, value: Any) -> bool:
    return name in DEFAULTS and value == DEFAULTS[name]
