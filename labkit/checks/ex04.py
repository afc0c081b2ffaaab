"""Checks for exercise 04: the lesson's five common problems (rate limits, overload, cost,
inconsistent outputs, 401), each reproduced offline.

The data they use (messages, emails, the usage-log generator, the fallback contract, the cache
rules) is lesson content, in ``labkit.course.ex04``. The fallback checks run the learner's cascade
and the reference on the same scenarios drawn from ``FALLBACK`` (every status it names, timeouts,
dropped connections, mixed sequences) and compare what they do; the cost checks price freshly
generated logs, so answers typed in from the shipped file do not pass; the cache check measures the
prefix two requests share in tokens, whatever the layout; properties (reset durations, keys that
must never show) run under a derandomized hypothesis profile.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import openai

from .. import faults
from ..clock import Clock
from ..costs import cost
from ..course.ex03 import CACHE_MIN_TOKENS, SUPPORT_PLAYBOOK
from ..course.ex04 import (
    CASCADE_PARAMS,
    CLASSIFY_EMAILS,
    CLASSIFY_SYSTEM,
    FALLBACK,
    FALLBACK_MODELS,
    FAQ_ASKED,
    FAQ_MODEL,
    FEATURES,
    LOW_TEMPERATURE,
    MODEL,
    OVERLOAD_MESSAGES,
    RATE_MESSAGES,
    RATE_PARAMS,
    TRIAGE,
    make_usage_log,
    shared_prefix_tokens,
    shared_text,
)
from ..replay import ReplayTransport
from . import Context, fault_transport, register, replay_transport
from . import differential as diff

# --------------------------------------------------------------------------- 1. rate limits


def go_duration(seconds: float) -> str:
    """A duration as the API's x-ratelimit-reset-* headers write it (Go's style: "250ms", "6m0s", "1h2m3.5s")."""
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


@register("ex04.rate-limit-headers")
def rate_limit_headers(ctx: Context) -> tuple[bool, str]:
    raw = ctx.client().chat.completions.with_raw_response.create(model=MODEL, messages=RATE_MESSAGES, **RATE_PARAMS)
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
    parse = ctx.attr("parse_reset")
    for junk in ("", "soon", "5 minutes", "1x", "3s extra", "ms"):
        try:
            got = parse(junk)
        except ValueError:
            continue
        return False, f"parse_reset({junk!r}) returned {got!r}: a value that is not a duration must raise ValueError, not become a pause"
    from hypothesis import strategies as st

    from .props import check_property

    def prop(millis: int) -> None:
        text = go_duration(millis / 1000)
        got = parse(text)
        assert isinstance(got, (int, float)) and math.isclose(got, millis / 1000, rel_tol=1e-9, abs_tol=1e-9), \
            f"parse_reset({text!r}) = {got!r}, expected {millis / 1000:g} s"

    ok, detail = check_property(prop, max_examples=30, millis=st.one_of(st.integers(0, 999), st.integers(1_000, 10_000_000)))
    if not ok:
        return False, detail
    return True, "limits, remaining and reset durations (ms, s, m, h; any Go-style duration) read from the headers; junk raises"


@register("ex04.rate-limit-pause")
def rate_limit_pause(ctx: Context) -> tuple[bool, str]:
    pause = ctx.attr("pause_before")
    base: dict[str, float | None] = {"limit_requests": 500, "remaining_requests": 212, "reset_requests": 34.56,
                                     "limit_tokens": 200_000, "remaining_tokens": 1450, "reset_tokens": 62.4}
    cases: list[tuple[str, dict[str, float | None], int, float]] = [
        ("room for 1,000 tokens", base, 1000, 0.0),
        ("exactly the 1,450 tokens left", base, 1450, 0.0),
        ("1,451 tokens but 1,450 left", base, 1451, 62.4),
        ("one request left", {**base, "remaining_requests": 1}, 100, 0.0),
        ("no requests left", {**base, "remaining_requests": 0}, 100, 34.56),
        ("neither", {**base, "remaining_requests": 0, "remaining_tokens": 10}, 100, 62.4),
        ("tokens short, requests reset later", {**base, "remaining_tokens": 10, "reset_requests": 90.0, "remaining_requests": 0}, 100, 90.0),
        ("no token headers (None)", {**base, "remaining_tokens": None, "reset_tokens": None}, 5000, 0.0),
        ("no request headers, tokens short", {**base, "remaining_requests": None, "reset_requests": None}, 5000, 62.4),
        ("no requests left, resetting now", {**base, "remaining_requests": 0, "reset_requests": 0.0}, 100, 0.0),
        ("tokens short, resetting now", {**base, "reset_tokens": 0.0}, 5000, 0.0),
    ]
    for name, limits, needed, want in cases:
        got = pause(dict(limits), needed)
        if not isinstance(got, (int, float)) or not math.isclose(got, want, abs_tol=1e-9):
            return False, f"{name}: pause_before(..., {needed}) = {got!r}, expected {want}"
    return True, "waits for the exhausted budget's reset only (the longest if both), not at all when there is room or no header"


# --------------------------------------------------------------------------- 2. overloaded


def _cascade(module: ModuleType, steps: tuple[str, ...], params: dict[str, Any]) -> dict[str, Any]:
    """Run a module's complete_with_fallback on a scenario; what it tried, returned or raised."""
    sdk = faults.client(list(steps), clock=Clock())
    fault_transport(sdk).then = ReplayTransport(["ex04"], simulate=True)  # a harmless extra parameter still gets its answer
    try:
        result = module.complete_with_fallback(sdk, OVERLOAD_MESSAGES, **params)
        error = None
    except openai.OpenAIError as err:
        result, error = None, err
    tried = [(a.body or {}).get("model", "?") for a in fault_transport(sdk).attempts]
    if error is not None:
        ending = f"raised {type(error).__name__}" + (f" ({error.status_code})" if isinstance(error, openai.APIStatusError) else "")
    elif isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str) and result[0]:
        ending = f"returned the answer of {result[1]}"
    else:
        ending = f"returned {result!r:.50}"
    return {"tried": tried, "ending": ending}


def _compare_cascade(ctx: Context, check: str, steps: tuple[str, ...], why: str,
                     params: dict[str, Any] | None = None) -> str | None:
    ctx.attr("complete_with_fallback")
    module = ctx.module
    assert module is not None
    chosen = params or {}

    def scenario(m: ModuleType) -> dict[str, Any]:
        return _cascade(m, steps, chosen)

    mine = json.loads(json.dumps(scenario(module)))
    shown = f"[{', '.join(steps) or 'no failure'}{', with ' + json.dumps(chosen) if chosen else ''}]"
    ref = diff.reference_observation(ctx.exercise.id, ctx.exercise.file, f"{check}:{shown}", scenario)
    if mine == ref:
        return None
    if "raised" in ref:
        return f"{shown}: the reference raised {ref['raised']}"
    return (f"{shown}: your cascade tried {mine['tried']} and {mine['ending']}; the reference tried {ref['tried']} "
            f"and {ref['ending']}: {why}")


def _name(status: int) -> str:
    import http

    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _transient_steps() -> list[tuple[str, str]]:
    statuses = sorted(FALLBACK.transient_statuses | set(FALLBACK.server_statuses))
    return [(str(s), f"a {_name(s)} is transient: another model may answer") for s in statuses] + [
        ("timeout", "a timeout is transient: another model may answer"),
        ("reset", "a dropped connection is transient: another model may answer"),
    ]


@register("ex04.fallback")
def fallback(ctx: Context) -> tuple[bool, str]:
    for step, why in _transient_steps():
        problem = _compare_cascade(ctx, "fallback", (step,), why)
        if problem:
            return False, problem
    for steps, why in ((("503", "429"), "two transient failures: the third model answers"),
                       (("timeout", "502", "reset"), "every model failed: re-raise the last error (the dropped connection)"),
                       (("429", "503", "500"), "every model failed: re-raise the last error")):
        problem = _compare_cascade(ctx, "fallback", steps, why)
        if problem:
            return False, problem
    return True, (f"each transient failure (408, 409, 429, 5xx, timeout, reset) moved on to {FALLBACK_MODELS[1]}; two moved on to "
                  f"{FALLBACK_MODELS[2]}; when all three failed the last error was raised")


@register("ex04.no-fallback-on-4xx")
def no_fallback_on_4xx(ctx: Context) -> tuple[bool, str]:
    fatal = [(str(s), f"a {_name(s)} fails the same way on every model: raise it at once") for s in FALLBACK.fatal_statuses]
    fatal += [(str(s), f"only 408, 409, 429 and statuses >= 500 are transient: a {_name(s)} is raised at once")
              for s in FALLBACK.unnamed_statuses]
    fatal.append((f"429 code={FALLBACK.no_credit_code}", "no credit left fails on every model: raise it at once"))
    for step, why in fatal:
        problem = _compare_cascade(ctx, "no-fallback-on-4xx", (step,), why)
        if problem:
            return False, problem
    problem = _compare_cascade(ctx, "no-fallback-on-4xx", ("503", "401"), "after a transient failure, a 401 still ends the cascade")
    if problem:
        return False, problem
    problem = _compare_cascade(ctx, "no-fallback-on-4xx", (), f"{FALLBACK_MODELS[0]} rejects these settings with a 400: "
                               "fix the request, do not hide it behind another model", CASCADE_PARAMS)
    if problem:
        return False, problem
    return True, "400, 401, 403, 404, 422 and an insufficient_quota 429 raised at once, no other model tried; the real 400 surfaced"


# --------------------------------------------------------------------------- 3. costs


def _priced(ctx: Context, seed: int) -> list[tuple[float, dict[str, Any]]]:
    """A freshly generated usage log (three days, Monday's reports included), each row with its catalog price."""
    key = f"ex04.rows.{seed}"
    if key not in ctx.memo:
        ctx.memo[key] = [(cost(r["usage"], r["model"]).total_usd, r) for r in make_usage_log(seed, days=3)]
    rows: list[tuple[float, dict[str, Any]]] = ctx.memo[key]
    return rows


@register("ex04.request-cost")
def request_cost(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("request_cost")
    priced = _priced(ctx, 7)
    picks = [next(p for p in priced if p[1]["feature"] == f) for f in FEATURES]
    faq = [p for p in priced if p[1]["feature"] == "faq-bot"]
    picks.append(next(p for p in faq if p[1]["usage"]["prompt_tokens_details"]["cached_tokens"]))
    picks.append(next(p for p in faq if p[1]["usage"]["prompt_tokens_details"]["cache_write_tokens"]))
    for want, row in picks:
        got = fn(row)
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-9):
            u = row["usage"]
            d = u["prompt_tokens_details"]
            return False, (f"{row['feature']} on {row['model']} ({u['prompt_tokens']} in: {d['cached_tokens']} read from the cache, "
                           f"{d['cache_write_tokens']} written to it; {u['completion_tokens']} out): got {got!r}, "
                           f"the catalog says ${want:.8f}")
    return True, "each request priced from its usage: input, cache reads, cache writes and output (reasoning included)"


@register("ex04.cost-by-feature")
def cost_by_feature(ctx: Context) -> tuple[bool, str]:
    priced = _priced(ctx, 7)
    want: dict[str, float] = {}
    for usd, r in priced:
        want[r["feature"]] = want.get(r["feature"], 0.0) + usd
    fn = ctx.attr("cost_by_feature")
    got = fn([r for _, r in priced])
    if not isinstance(got, dict) or set(got) != set(want):
        return False, f"expected a dict keyed by feature {sorted(want)}, got {got!r:.120}"
    for f, v in want.items():
        if not isinstance(got[f], (int, float)) or not math.isclose(got[f], v, rel_tol=1e-9):
            return False, f"{f}: {got[f]!r}, the log prices it at ${v:.6f}"
    order = [f for f, _ in sorted(want.items(), key=lambda kv: kv[1], reverse=True)]
    if list(got) != order:
        return False, f"order {list(got)}, expected most expensive first: {order}"
    empty = fn([])
    if empty != {}:
        return False, f"cost_by_feature([]) returned {empty!r}: an empty log costs nothing, {{}}"
    return True, f"{order[0]} costs most: ${want[order[0]]:.2f} of ${sum(want.values()):.2f}"


@register("ex04.top-requests")
def top_requests(ctx: Context) -> tuple[bool, str]:
    priced = _priced(ctx, 11)
    rows = [r for _, r in priced]
    ranked = sorted(((usd, r["request_id"]) for usd, r in priced), reverse=True)
    fn = ctx.attr("top_requests")
    before = json.dumps(rows, sort_keys=True)
    got = fn(rows, 4)
    if json.dumps(rows, sort_keys=True) != before:
        return False, "top_requests() changed the rows it was given (the log is the caller's): return copies with cost_usd added"
    if not isinstance(got, list) or len(got) != 4:
        return False, f"top_requests(rows, 4) returned {got!r:.80}"
    ids = [g.get("request_id") for g in got]
    want_ids = [rid for _, rid in ranked[:4]]
    if ids != want_ids:
        by_tokens = [r["request_id"] for r in sorted(rows, key=lambda r: r["usage"]["total_tokens"], reverse=True)[:4]]
        hint = " (that is the ranking by tokens: price them)" if ids == by_tokens else ""
        return False, f"got {ids}, the four dearest are {want_ids}{hint}"
    if not all(isinstance(g.get("cost_usd"), (int, float)) and math.isclose(g["cost_usd"], c, rel_tol=1e-9) for g, (c, _) in zip(got, ranked)):
        return False, "each returned row needs its cost_usd"
    few = rows[:3]
    for n, want_len in ((0, 0), (5, 3)):
        out = fn(few, n)
        if not isinstance(out, list) or len(out) != want_len:
            return False, f"top_requests(three rows, {n}) returned {len(out) if isinstance(out, list) else out!r} rows, expected {want_len}"
    return True, f"the dearest request costs ${ranked[0][0]:.4f} ({next(r['feature'] for r in rows if r['request_id'] == want_ids[0])})"


@register("ex04.cache-friendly")
def cache_friendly(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("faq_messages")
    stamp = ctx.attr("stamp")
    asked = [(q, t, fn(q, t)) for q, t in FAQ_ASKED]
    for q, t, msgs in asked:
        if not (isinstance(msgs, list) and msgs and all(isinstance(m, dict) for m in msgs)):
            return False, f"faq_messages() returned {msgs!r:.80}, not a list of message dicts"
        text = "\n".join(str(m.get("content")) for m in msgs)
        if SUPPORT_PLAYBOOK not in text:
            return False, "the whole playbook must still be sent (the bot answers from it)"
        if stamp(t) not in text or q not in text:
            return False, f"the current time ({stamp(t)!r}, written by stamp(now)) and the question must still be sent"
    worst: tuple[int, str] | None = None
    for i, (qa, ta, a) in enumerate(asked):
        for qb, tb, b in asked[i + 1:]:
            pair = f"{qa[:30]!r} at {stamp(ta)} and {qb[:30]!r} at {stamp(tb)}"
            if SUPPORT_PLAYBOOK in shared_text(a, b):
                continue  # the whole playbook is shared: over 1,024 tokens, no need to count (tiktoken loads slowly)
            shared = shared_prefix_tokens(a, b, FAQ_MODEL)
            if worst is None or shared < worst[0]:
                worst = (shared, pair)
    if worst is not None and worst[0] < CACHE_MIN_TOKENS:
        return False, (f"two requests ({worst[1]}) share only their first {worst[0]:,} tokens; the prompt cache needs a "
                       f"shared prefix of at least {CACHE_MIN_TOKENS:,}: put what never changes first, the time and question after it")
    shared_how = "the whole playbook" if worst is None else f"their first {worst[0]:,} tokens"
    return True, (f"every pair of requests asked at different times shares {shared_how} (the cache needs {CACHE_MIN_TOKENS:,} "
                  "tokens); time and question come after")


# --------------------------------------------------------------------------- 4. inconsistent outputs


def _classify(ctx: Context) -> tuple[list[Any], list[dict[str, Any]], str | None]:
    """Classify two emails on a simulating replay client: results, request bodies, the API's refusal if any."""
    client = ctx.client(simulate=True)
    fn = ctx.attr("classify_email")
    results = []
    refused = None
    for email in CLASSIFY_EMAILS[:2]:
        try:
            results.append(fn(client, email))
        except openai.BadRequestError as err:
            refused = str(err.body.get("message") if isinstance(err.body, dict) else err)
            break
    bodies = [b for b in replay_transport(client).sent if isinstance(b, dict)]
    return results, bodies, refused


def _part_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _turns(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(role, text)`` of a request's conversation, either API (``instructions`` first, as role "instructions")."""
    found = [("instructions", body["instructions"])] if isinstance(body.get("instructions"), str) else []
    items = body.get("messages", body.get("input"))
    if isinstance(items, str):
        return [*found, ("user", items)]
    return found + [(str(m.get("role")), _part_text(m.get("content"))) for m in items or [] if isinstance(m, Mapping)]


def _conversation_problem(body: Mapping[str, Any], email: str) -> str | None:
    """What the classifier's request misses of its conversation (CLASSIFY_SYSTEM, then the email), or None.

    The model is not graded here: another current model at effort "none" classifies as well."""
    turns = _turns(body)
    instruction = "\n".join(text for role, text in turns if role in ("system", "developer", "instructions"))
    if CLASSIFY_SYSTEM not in instruction:
        return ("the request does not carry CLASSIFY_SYSTEM as its system (or developer) message: the model is not told "
                "the task or what 'critical' means")
    if not any(email.strip() in text for role, text in turns if role == "user"):
        return "the email is not sent as the user message, as given"
    return None


def _settings(body: Mapping[str, Any]) -> str:
    effort = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    return f"{body.get('model')} at effort {effort or 'default'}, temperature {body.get('temperature', 'default')}"


@register("ex04.structured-output")
def structured_output(ctx: Context) -> tuple[bool, str]:
    results, bodies, refused = _classify(ctx)
    ticket = ctx.attr("Ticket")
    for body in bodies:
        fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
        schema = fmt.get("json_schema") or fmt  # Chat Completions nests it; the Responses API does not
        if fmt.get("type") != "json_schema" or not schema.get("strict"):
            return False, (f"the output format is {json.dumps(fmt)[:80]}: JSON mode guarantees JSON syntax, not your fields; "
                           "use a strict json_schema (client.chat.completions.parse(response_format=Ticket) or "
                           "client.responses.parse(text_format=Ticket))")
    for body, email in zip(bodies, CLASSIFY_EMAILS):
        problem = _conversation_problem(body, email)
        if problem:
            return False, problem
    if refused:
        return False, f"the API rejected the request ({_settings(bodies[-1])}): {refused}"
    if len(bodies) != 2:
        return False, f"{len(bodies)} requests for two emails"
    for r, w in zip(results, TRIAGE):
        if not isinstance(r, ticket) or (r.sentiment, r.urgency, r.category) != w:
            return False, f"returned {r!r:.100}; expected a Ticket with {w}"
    return True, "strict json_schema requests; both emails came back as validated Tickets"


@register("ex04.temperature")
def temperature(ctx: Context) -> tuple[bool, str]:
    _, bodies, refused = _classify(ctx)
    lo, hi = LOW_TEMPERATURE
    for body in bodies:
        t = body.get("temperature")
        if not isinstance(t, (int, float)) or not lo <= t <= hi:
            return False, (f"{_settings(body)}: for a classifier set it low ({lo:g} to {hi:g}) so the same email gets the "
                           "same answer (the default is 1)")
    if refused:
        return False, f"the API rejected {_settings(bodies[-1])}: {refused}"
    if not bodies:
        return False, "no request was sent"
    return True, f"{_settings(bodies[0])}: accepted, and low"


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
    ("only spaces", "   ", {"missing"}),
    ("well-formed", _fake_key(120, 1), set()),
    ("trailing newline (from a file)", _fake_key(120, 2) + "\n", {"whitespace"}),
    ("Windows line ending", _fake_key(120, 8) + "\r\n", {"whitespace"}),
    ("leading space", " " + _fake_key(120, 3), {"whitespace"}),
    ("a non-breaking space pasted from a web page", _fake_key(120, 9) + "\u00a0", {"whitespace"}),
    ("a tab inside", _fake_key(60, 10) + "\t" + _fake_key(60, 11)[3:], {"whitespace"}),
    ("quotes kept from .env", '"' + _fake_key(120, 4) + '"', {"quoted"}),
    ("single quotes kept from .env", "'" + _fake_key(120, 12) + "'", {"quoted"}),
    ("mismatched quotes", "'" + _fake_key(120, 13) + '"', {"wrong-prefix"}),
    ("the whole header pasted", "Bearer " + _fake_key(120, 5), {"whitespace", "wrong-prefix"}),
    ("an org id instead", "org-" + _fake_key(40, 6)[8:], {"wrong-prefix"}),
    ("a look-alike Cyrillic s", "\u0455k-" + _fake_key(120, 14)[3:], {"wrong-prefix"}),
    ("truncated copy", _fake_key(120, 7)[:20], {"too-short"}),
    ("exactly 40 characters", _fake_key(120, 16)[:40], set()),
    ("39 characters", _fake_key(120, 17)[:39], {"too-short"}),
    ("40 characters inside quotes", '"' + _fake_key(120, 18)[:40] + '"', {"quoted"}),
    ("39 characters inside quotes", '"' + _fake_key(120, 19)[:39] + '"', {"quoted", "too-short"}),
    ("an upper-case prefix", "SK-" + _fake_key(120, 20)[3:], {"wrong-prefix"}),
    ("a lone quote", '"', {"wrong-prefix", "too-short"}),
    ("two quotes and nothing else", '""', {"quoted", "wrong-prefix", "too-short"}),
    ("quoted and truncated", '"' + _fake_key(120, 15)[:30] + '"', {"quoted", "too-short"}),
]


@register("ex04.key-diagnosis")
def key_diagnosis(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("diagnose_key")
    for name, key, want in KEY_CASES:
        got = fn(key)
        if not isinstance(got, (list, tuple, set)) or set(got) != want:
            return False, f"{name}: diagnose_key gave {got!r}, expected {sorted(want) or '[]'}"
    return True, f"{len(KEY_CASES)} kinds of key diagnosed (missing, whitespace of every kind, quotes, wrong prefix, too short)"


def _leaked(key: str, text: str) -> str | None:
    secret = key.split("sk-proj-")[-1] if "sk-proj-" in key else key.strip()[4:]
    return next((secret[i:i + 4] for i in range(len(secret) - 3) if secret[i:i + 4] in text), None)


@register("ex04.key-never-shown")
def key_never_shown(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("describe_key")
    for name, key, want in KEY_CASES:
        text = fn(key)
        if not isinstance(text, str) or not text:
            return False, f"{name}: describe_key returned {text!r:.40}, not a line of text"
        if key and _leaked(key, text):
            return False, f"{name}: the description shows part of the key (4+ characters of its secret part)"
        missing = [code for code in want if code not in text]
        if missing:
            return False, f"{name}: the description does not name the problem(s) {missing}: {text[:80]!r}"
        if key and key.strip() and str(len(key)) not in text:
            return False, f"{name}: the description does not give the key's length ({len(key)}): {text[:80]!r}"
    from hypothesis import strategies as st

    from .props import check_property

    def prop(length: int, seed: int, wrap: str) -> None:
        key = wrap.replace("KEY", _fake_key(length, seed))
        text = fn(key)
        assert isinstance(text, str), f"describe_key returned {type(text).__name__}"
        leak = _leaked(key, text)
        assert leak is None, f"the description of a {len(key)}-character key shows {leak!r}, part of its secret"

    ok, detail = check_property(prop, max_examples=25, length=st.integers(1, 160), seed=st.integers(0, 10_000),
                                wrap=st.sampled_from(["KEY", "KEY\n", " KEY ", '"KEY"', "Bearer KEY", "'KEY'\r\n"]))
    if not ok:
        return False, detail
    return True, "every description names the problems and shows no part of the key (also for generated keys of any length)"
