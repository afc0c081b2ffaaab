"""Checks for exercise 04: the lesson's five common problems (rate limits, overload, cost,
inconsistent outputs, 401), each reproduced offline.

The data they use (messages, emails, the usage-log generator) is lesson content, in
``labkit.course.ex04``; the costs checks price freshly generated logs, so answers typed in from
the shipped file do not pass.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from ..costs import cost
from ..course.ex03 import PLAYBOOK_TOKENS, SUPPORT_PLAYBOOK
from ..course.ex04 import (
    CLASSIFY_EMAILS,
    FALLBACK_MODELS,
    FAQ_ASKED,
    FEATURES,
    MODEL,
    OVERLOAD_MESSAGES,
    RATE_MESSAGES,
    TRIAGE,
    make_usage_log,
)
from . import Context, register, replay_transport

# --------------------------------------------------------------------------- 1. rate limits


@register("ex04.rate-limit-headers")
def rate_limit_headers(ctx: Context) -> tuple[bool, str]:
    raw = ctx.client().chat.completions.with_raw_response.create(model=MODEL, messages=RATE_MESSAGES)
    cases: list[tuple[Mapping[str, str], dict[str, float | None]]] = [
        (raw.headers, {"limit_requests": 500, "remaining_requests": 212, "reset_requests": 34.56,
                       "limit_tokens": 200_000, "remaining_tokens": 1450, "reset_tokens": 62.4}),
        ({"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "6m0s", "x-ratelimit-limit-tokens": "30000000",
          "x-ratelimit-remaining-tokens": "29999000", "x-ratelimit-reset-tokens": "250ms"},
         {"limit_requests": 10_000, "remaining_requests": 0, "reset_requests": 360.0,
          "limit_tokens": 30_000_000, "remaining_tokens": 29_999_000, "reset_tokens": 0.25}),
        ({"x-ratelimit-remaining-tokens": "5", "x-ratelimit-reset-tokens": "1h2m3.5s"},
         {"limit_requests": None, "remaining_requests": None, "reset_requests": None,
          "limit_tokens": None, "remaining_tokens": 5, "reset_tokens": 3723.5}),
    ]
    for headers, want in cases:
        got = ctx.attr("read_rate_limits")(headers)
        if not isinstance(got, dict):
            return False, f"read_rate_limits() returned {type(got).__name__}, not a dict"
        for key, value in want.items():
            g = got.get(key, "<missing>")
            same = g is None if value is None else isinstance(g, (int, float)) and math.isclose(g, value, rel_tol=1e-9)
            if not same:
                shown = {k: v for k, v in dict(headers).items() if k.startswith("x-ratelimit")}
                return False, f"{key}={g!r}, expected {value!r} from {shown}"
    return True, "limits, remaining and reset durations (ms, s, m, h) read from the headers"


@register("ex04.rate-limit-pause")
def rate_limit_pause(ctx: Context) -> tuple[bool, str]:
    pause = ctx.attr("pause_before")
    base = {"limit_requests": 500, "remaining_requests": 212, "reset_requests": 34.56,
            "limit_tokens": 200_000, "remaining_tokens": 1450, "reset_tokens": 62.4}
    cases = [
        ("room for 1,000 tokens", base, 1000, 0.0),
        ("2,000 tokens but 1,450 left", base, 2000, 62.4),
        ("no requests left", {**base, "remaining_requests": 0}, 100, 34.56),
        ("neither", {**base, "remaining_requests": 0, "remaining_tokens": 10}, 100, 62.4),
        ("tokens short, requests reset later", {**base, "remaining_tokens": 10, "reset_requests": 90.0}, 100, 62.4),
    ]
    for name, limits, needed, want in cases:
        got = pause(dict(limits), needed)
        if not isinstance(got, (int, float)) or not math.isclose(got, want, abs_tol=1e-9):
            return False, f"{name}: pause_before(..., {needed}) = {got!r}, expected {want}"
    return True, "waits for the exhausted budget's reset only, and not at all when there is room"


# --------------------------------------------------------------------------- 2. overloaded


def _cascade(ctx: Context, scenario: str) -> tuple[Any, BaseException | None, list[str]]:
    sdk = ctx.faults.client(scenario, "ex04", clock=ctx.clock)
    try:
        result, error = ctx.attr("complete_with_fallback")(sdk, OVERLOAD_MESSAGES), None
    except openai.OpenAIError as err:
        result, error = None, err
    models = [(a.body or {}).get("model", "?") for a in sdk._labkit_transport.attempts]
    return result, error, models


@register("ex04.fallback")
def fallback(ctx: Context) -> tuple[bool, str]:
    for scenario, want_model in (("503, ok", FALLBACK_MODELS[1]), ("429, timeout, ok", FALLBACK_MODELS[2])):
        result, error, models = _cascade(ctx, scenario)
        if error is not None or not (isinstance(result, tuple) and len(result) == 2):
            return False, f"[{scenario}] tried {models}, then {'raised ' + type(error).__name__ if error else f'returned {result!r:.50}'}"
        if result[1] != want_model or models != list(FALLBACK_MODELS[: len(models)]) or models[-1] != want_model:
            return False, f"[{scenario}] tried {models} and reported {result[1]!r}; expected to fall back to {want_model}"
        if not isinstance(result[0], str) or not result[0]:
            return False, f"[{scenario}] returned text {result[0]!r:.40}"
    result, error, models = _cascade(ctx, "503, 503, 503")
    if not isinstance(error, openai.InternalServerError):
        return False, f"every model overloaded: tried {models} and {'raised ' + type(error).__name__ if error else f'returned {result!r:.40}'}; re-raise the last error"
    return True, (f"503 -> {FALLBACK_MODELS[1]}; 429 then timeout -> {FALLBACK_MODELS[2]}; "
                  "all three overloaded -> InternalServerError")


@register("ex04.no-fallback-on-4xx")
def no_fallback_on_4xx(ctx: Context) -> tuple[bool, str]:
    for scenario, kind in (("400", openai.BadRequestError), ("401", openai.AuthenticationError), ("404", openai.NotFoundError)):
        result, error, models = _cascade(ctx, scenario)
        if not isinstance(error, kind) or len(models) != 1:
            outcome = f"raised {type(error).__name__}" if error else f"returned {result!r:.40}"
            return False, f"a {scenario} on {models[0]} was followed by {models[1:]} and {outcome}: the same mistake fails on every model, raise openai.{kind.__name__}"
    return True, "400, 401 and 404 raised at once, no other model tried"


# --------------------------------------------------------------------------- 3. costs


def _rows(seed: int = 7) -> list[dict[str, Any]]:
    return make_usage_log(seed, days=7)


@register("ex04.request-cost")
def request_cost(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("request_cost")
    rows = _rows()
    picks = [next(r for r in rows if r["feature"] == f) for f in FEATURES]
    picks.append({**picks[1], "usage": {**picks[1]["usage"], "prompt_tokens_details": {"cached_tokens": 1024}}})
    for row in picks:
        want = cost(row["usage"], row["model"]).total_usd
        got = fn(row)
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-9):
            u = row["usage"]
            return False, (f"{row['feature']} on {row['model']} ({u['prompt_tokens']} in, {u['prompt_tokens_details']['cached_tokens']} cached, "
                           f"{u['completion_tokens']} out): got {got!r}, the catalog says ${want:.8f}")
    return True, "each request priced from its usage: input, cached input and output (reasoning included)"


@register("ex04.cost-by-feature")
def cost_by_feature(ctx: Context) -> tuple[bool, str]:
    rows = _rows()
    want: dict[str, float] = {}
    for r in rows:
        want[r["feature"]] = want.get(r["feature"], 0.0) + cost(r["usage"], r["model"]).total_usd
    got = ctx.attr("cost_by_feature")(rows)
    if not isinstance(got, dict) or set(got) != set(want):
        return False, f"expected a dict keyed by feature {sorted(want)}, got {got!r:.120}"
    for f, v in want.items():
        if not isinstance(got[f], (int, float)) or not math.isclose(got[f], v, rel_tol=1e-9):
            return False, f"{f}: {got[f]!r}, the log prices it at ${v:.6f}"
    order = [f for f, _ in sorted(want.items(), key=lambda kv: kv[1], reverse=True)]
    if list(got) != order:
        return False, f"order {list(got)}, expected most expensive first: {order}"
    return True, f"{order[0]} costs most: ${want[order[0]]:.2f} of ${sum(want.values()):.2f}"


@register("ex04.top-requests")
def top_requests(ctx: Context) -> tuple[bool, str]:
    rows = _rows(11)
    priced = sorted(((cost(r["usage"], r["model"]).total_usd, r["request_id"]) for r in rows), reverse=True)
    got = ctx.attr("top_requests")(rows, 4)
    if not isinstance(got, list) or len(got) != 4:
        return False, f"top_requests(rows, 4) returned {got!r:.80}"
    ids = [g.get("request_id") for g in got]
    want_ids = [rid for _, rid in priced[:4]]
    if ids != want_ids:
        by_tokens = [r["request_id"] for r in sorted(rows, key=lambda r: r["usage"]["total_tokens"], reverse=True)[:4]]
        hint = " (that is the ranking by tokens: price them)" if ids == by_tokens else ""
        return False, f"got {ids}, the four dearest are {want_ids}{hint}"
    if not all(isinstance(g.get("cost_usd"), (int, float)) and math.isclose(g["cost_usd"], c, rel_tol=1e-9) for g, (c, _) in zip(got, priced)):
        return False, "each returned row needs its cost_usd"
    return True, f"the dearest request costs ${priced[0][0]:.4f} ({next(r['feature'] for r in rows if r['request_id'] == want_ids[0])})"


@register("ex04.cache-friendly")
def cache_friendly(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("faq_messages")
    stamp = ctx.attr("stamp")
    (a_question, a_time), (b_question, b_time) = FAQ_ASKED
    a = fn(a_question, a_time)
    b = fn(b_question, b_time)
    if not (isinstance(a, list) and isinstance(b, list) and a and b):
        return False, f"faq_messages() returned {a!r:.80}"
    if a[0] != b[0]:
        return False, "the first message differs between two questions asked at different times, so the prompt cache can never reuse it"
    if SUPPORT_PLAYBOOK not in str(a[0].get("content")):
        return False, "the shared first message must hold the whole playbook (caching starts at 1,024 tokens of shared prefix)"
    later_a = " ".join(str(m.get("content")) for m in a[1:])
    if stamp(a_time) not in later_a or a_question not in later_a:
        return False, "the current time and the question must still be sent, after the shared part"
    return True, f"the {PLAYBOOK_TOKENS:,}-token playbook is a prefix shared by every request; time and question come after it"


# --------------------------------------------------------------------------- 4. inconsistent outputs


class _Spy(httpx2.BaseTransport):
    """Wraps the replay transport to keep each request body the learner's code sent."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.read() or b"{}"))
        return self.inner.handle_request(request)


def _classify(ctx: Context) -> tuple[list[Any], list[dict[str, Any]]]:
    base = ctx.client()
    spy = _Spy(replay_transport(base))
    client = openai.OpenAI(api_key="replay-no-key", base_url="https://api.openai.com/v1", max_retries=0,
                           http_client=httpx2.Client(transport=spy))
    results = [ctx.attr("classify_email")(client, e) for e in CLASSIFY_EMAILS[:2]]
    return results, spy.bodies


@register("ex04.structured-output")
def structured_output(ctx: Context) -> tuple[bool, str]:
    results, bodies = _classify(ctx)
    ticket = ctx.attr("Ticket")
    for body in bodies:
        fmt = body.get("response_format") or {}
        if fmt.get("type") != "json_schema" or not (fmt.get("json_schema") or {}).get("strict"):
            return False, (f"response_format={json.dumps(fmt)[:80]}: JSON mode guarantees JSON syntax, not your fields; "
                           "use a strict json_schema (client.chat.completions.parse(response_format=Ticket))")
    if len(bodies) != 2:
        return False, f"{len(bodies)} requests for two emails"
    for r, w in zip(results, TRIAGE):
        if not isinstance(r, ticket) or (r.sentiment, r.urgency, r.category) != w:
            return False, f"returned {r!r:.100}; expected a Ticket with {w}"
    return True, "strict json_schema requests; both emails came back as validated Tickets"


@register("ex04.temperature")
def temperature(ctx: Context) -> tuple[bool, str]:
    _, bodies = _classify(ctx)
    for body in bodies:
        t = body.get("temperature")
        if not isinstance(t, (int, float)) or t > 0.3:
            return False, (f"temperature={t!r} on {body.get('model')}: for a classifier, set it low (0 to 0.3) so the same "
                           "email gets the same answer (the default is 1)")
    return True, f"temperature {bodies[0].get('temperature')} on {bodies[0].get('model')}"


# --------------------------------------------------------------------------- 5. authentication


def _fake_key(n: int, seed: int) -> str:
    """A key-shaped string whose every 4-character window mixes cases and digits (so it never occurs in prose)."""
    rng = random.Random(seed)
    upper, lower, digits = "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789"
    body = "".join(rng.choice((upper, digits, lower)[i % 3]) for i in range(n))
    return "sk-" + "proj-" + body


KEY_CASES: list[tuple[str, str | None, set[str]]] = [
    ("unset", None, {"missing"}),
    ("empty", "", {"missing"}),
    ("well-formed", _fake_key(120, 1), set()),
    ("trailing newline (from a file)", _fake_key(120, 2) + "\n", {"whitespace"}),
    ("leading space", " " + _fake_key(120, 3), {"whitespace"}),
    ("quotes kept from .env", '"' + _fake_key(120, 4) + '"', {"quoted"}),
    ("the whole header pasted", "Bearer " + _fake_key(120, 5), {"whitespace", "wrong-prefix"}),
    ("an org id instead", "org-" + _fake_key(40, 6)[8:], {"wrong-prefix"}),
    ("truncated copy", _fake_key(120, 7)[:20], {"too-short"}),
]


@register("ex04.key-diagnosis")
def key_diagnosis(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("diagnose_key")
    for name, key, want in KEY_CASES:
        got = fn(key)
        if not isinstance(got, (list, tuple, set)) or set(got) != want:
            return False, f"{name}: diagnose_key gave {got!r}, expected {sorted(want) or '[]'}"
    return True, f"{len(KEY_CASES)} kinds of key diagnosed (missing, whitespace, quoted, wrong prefix, too short)"


@register("ex04.key-never-shown")
def key_never_shown(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("describe_key")
    for name, key, want in KEY_CASES:
        text = fn(key)
        if not isinstance(text, str) or not text:
            return False, f"{name}: describe_key returned {text!r:.40}, not a line of text"
        if key:
            secret = key.split("sk-proj-")[-1] if "sk-proj-" in key else key.strip()[4:]
            leaked = next((secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in text), None)
            if leaked:
                return False, f"{name}: the description shows part of the key ({len(leaked)}+ characters of its secret part)"
        missing = [code for code in want if code not in text]
        if missing:
            return False, f"{name}: the description does not name the problem(s) {missing}: {text[:80]!r}"
    return True, "every description names the problems and shows no part of the key"
