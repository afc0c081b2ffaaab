"""Checks for exercise 06: the enterprise client, run against a real Redis (labkit.redisd).

Every check gets its own key prefix on the server and removes its keys afterwards, so checks
are independent of each other and of anything else on a shared ``REDIS_URL``. The concurrency
checks make the races real: many workers (threads, and two forked processes) hit the same
counters at once, and the checks assert on counts. Scenarios come from the contract in
``labkit.course.ex06``: every retryable and final status, mixed failure sequences, boundary
values, adversarial user ids. The API is the course simulator behind a :class:`Tap`, so a client
written on Chat Completions or on the Responses API is graded on what its requests mean.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx2
import openai
import redis

from .. import redisd
from ..clock import Clock
from ..costs import estimate
from ..course.ex06 import (
    ADVERSARIAL_IDS,
    BILLING,
    BUDGET_MAX_OUT,
    BUDGET_PROBE,
    CASCADE,
    CHEAP,
    EFFORT,
    EXPORT,
    FINAL_STATUSES,
    MAX_COMPLETION_TOKENS,
    NO_CACHE_ABOVE,
    PREMIUM,
    RESET,
    RETRYABLE_FAULTS,
    RETRYABLE_STATUSES,
    TAGLINE,
    TAGLINE_PARAMS,
)
from ..course.models import DEFAULT
from ..faults import Latency, parse_scenario
from ..tokens import count_tokens
from . import Context, Outcome
from .redis_checks import API, DECEMBER, START, Exchange, api, concurrently, redis_check, shaping_view

CASSETTE = "ex06"
#: How an observation says the client raised (sorts before every other field, so a difference names it first).
RAISED = "an exception was raised"
#: The SDK's exception for each status of the contract (the others are openai.APIStatusError).
SDK_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
    404: openai.NotFoundError, 409: openai.ConflictError, 422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


# --------------------------------------------------------------------------- helpers


def _msgs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of one of the course's requests: code under test that edits its argument cannot change the course's."""
    return copy.deepcopy(messages)


def _close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _redis_check(check_id: str) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    return redis_check(check_id, tag="ex06", start=START)


def _make(module: Any, a: API, r: redis.Redis, prefix: str, clock: Callable[[], float], **kw: Any) -> Any:
    return module.EnterpriseGPTClient(a.client, r, prefix=prefix, clock=clock, **kw)


def _ent(ctx: Context, a: API, r: redis.Redis, prefix: str, **kw: Any) -> Any:
    ctx.attr("EnterpriseGPTClient")
    return _make(ctx.module, a, r, prefix, ctx.clock.time, **kw)


def _step(text: str) -> str:
    """A scenario step in words: 'a 503 Service Unavailable', 'a timeout'."""
    step = parse_scenario(text)[0]
    if step.kind == "timeout":
        return "a timeout"
    if step.kind == "reset":
        return "a dropped connection"
    return f"a {step.status} {httpx2.codes.get_reason_phrase(step.status)}"


def _error_class(text: str) -> type[Exception]:
    """The SDK exception a scripted step becomes."""
    step = parse_scenario(text)[0]
    if step.kind == "timeout":
        return openai.APITimeoutError
    if step.kind == "reset":
        return openai.APIConnectionError
    if step.status >= 500:
        return openai.InternalServerError
    return SDK_ERRORS.get(step.status, openai.APIStatusError)


def _fmt(d: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k[:20]!r}: ${v:.6f}" for k, v in sorted(d.items())) + "}"


def _max_cost(messages: list[dict[str, Any]], limit: int, models: tuple[str, ...]) -> float:
    return max(estimate(count_tokens(messages, m), limit, m).total_usd for m in models)


# --------------------------------------------------------------------------- cache


@_redis_check("ex06.cache-hit")
def cache_hit(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix)
    first = ent.complete(_msgs(RESET), user_id="u-cache")
    spent = ent.spend()
    second = ent.complete(_msgs(RESET), user_id="u-other")
    n = len(a.tap.exchanges)
    if n != 1:
        return False, f"the same request twice (two users) made {n} API calls (expected 1: the second comes from Redis)"
    if second.content != first.content:
        return False, "the cached answer's content differs from the first answer"
    if second.cached is not True or second.cost_usd != 0:
        return False, f"the repeat should say cached=True and cost_usd=0.0; got cached={second.cached!r}, cost_usd={second.cost_usd!r}"
    if first.cached is not False:
        return False, f"the first answer came from the API but says cached={first.cached!r}"
    if not _close(ent.spend(), spent):
        return False, f"the cache hit changed the month's spend from ${spent:.6f} to ${ent.spend():.6f}"
    return True, f"1 API call for 2 identical requests; the hit cost $0 (the miss ${first.cost_usd:.6f})"


@_redis_check("ex06.cache-before-limit")
def cache_before_limit(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=2)
    limited = ctx.attr("RateLimitExceeded")
    steps = [(RESET, "a first question"), (RESET, "the same question (a cache hit)"), (EXPORT, "a second question"),
             (RESET, "the first question again, now at the limit (a cache hit)")]
    for i, (messages, what) in enumerate(steps, 1):
        try:
            ent.complete(_msgs(messages), user_id="busy")
        except limited:
            if i == 4:
                return False, ("limit 2 a minute: a user who had used both requests asked a question already in the "
                               "cache and was refused; a cached answer costs nothing and must be served")
            return False, (f"limit 2 a minute: request {i} ({what}) was refused: a cache hit must not count against "
                           "the rate limit (look the cache up before counting)")
    if len(a.tap.exchanges) != 2:
        return False, f"2 distinct questions and 2 repeats made {len(a.tap.exchanges)} API calls (expected 2)"
    try:
        ent.complete(_msgs(BILLING), user_id="busy")
        return False, "limit 2 a minute: a third new question in the same minute was answered"
    except limited:
        pass
    return True, "cache hits neither counted nor refused at the limit; the third new question was refused"


#: Each answer-shaping change the cache key must see: (what, keyword arguments of complete()).
KEY_CHANGES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("another model", {"model": CHEAP}),
    ("another reasoning effort", {"reasoning_effort": "medium"}),
    ("another output limit", {"max_completion_tokens": 800}),
    ("another verbosity", {"verbosity": "low"}),
    ("a temperature (at effort none)", {"model": CHEAP, "reasoning_effort": "none", "temperature": 0.2}),
    ("another temperature", {"model": CHEAP, "reasoning_effort": "none", "temperature": 0.5}),
)


@_redis_check("ex06.cache-key")
def cache_key(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=10**6)
    ent.complete(_msgs(RESET), user_id="u-key")
    for what, kw in KEY_CHANGES:
        n = len(a.tap.exchanges)
        got = ent.complete(_msgs(RESET), user_id="u-key", **kw)
        if len(a.tap.exchanges) != n + 1 or got.cached:
            return False, f"the same messages with {what} ({kw}) were served from the cache of an earlier request: the key ignores it"
    n = len(a.tap.exchanges)
    again = ent.complete(_msgs(RESET), user_id="u-key", **KEY_CHANGES[-1][1])
    if len(a.tap.exchanges) != n or not again.cached:
        return False, f"repeating a request exactly ({KEY_CHANGES[-1][1]}) was not a cache hit"
    body = {"model": PREMIUM, "messages": _msgs(RESET), "reasoning_effort": EFFORT, "max_completion_tokens": MAX_COMPLETION_TOKENS}
    reordered = dict(reversed(list(body.items())))
    k1, k2 = ent.cache_key(body), ent.cache_key(reordered)
    if k1 != k2:
        return False, "cache_key() gives the same request two keys when its fields come in another order (sort the keys)"
    if not str(k1).startswith(prefix):
        return False, f"cache_key() returned {str(k1)[:60]!r}, not under the client's prefix {prefix!r}"
    return True, f"{len(KEY_CHANGES)} answer-shaping changes each missed; the exact repeat hit; field order does not matter"


@_redis_check("ex06.cache-policy")
def cache_policy(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ttl, short = 1800, 120
    ent = _ent(ctx, a, r, prefix, cache_ttl=ttl, requests_per_minute=10**6)
    ent.complete(_msgs(EXPORT), user_id="u-ttl", cache_ttl=0)  # creates the counters, caches nothing
    n = len(a.tap.exchanges)
    ent.complete(_msgs(EXPORT), user_id="u-ttl", cache_ttl=0)
    if len(a.tap.exchanges) != n + 1:
        return False, "with cache_ttl=0 a repeated request was answered from the cache: 0 means do not cache"
    for messages, call_ttl, limit in ((BILLING, None, ttl), (RESET, short, short)):
        before = set(r.scan_iter(match=prefix + "*"))
        ent.complete(_msgs(messages), user_id="u-ttl", cache_ttl=call_ttl)
        new = set(r.scan_iter(match=prefix + "*")) - before
        if not new:
            return False, f"no new key appeared under the client's prefix {prefix!r} after a cacheable request: nothing was cached"
        ttls = {k.decode(errors="replace")[-24:]: r.ttl(k) for k in new}
        bad = {k: t for k, t in ttls.items() if not 0 < t <= limit}
        if bad:
            where = "the constructor's cache_ttl" if call_ttl is None else f"complete(..., cache_ttl={call_ttl})"
            return False, f"cache entries must expire within {where} = {limit} s; TTLs seen: {bad} (-1 means no expiry)"
    before = set(r.scan_iter(match=prefix + "*"))
    ent.complete(_msgs(BUDGET_PROBE), user_id="u-ttl", cache_ttl=1, max_completion_tokens=BUDGET_MAX_OUT)
    if not {k for k in set(r.scan_iter(match=prefix + "*")) - before if 0 < r.pttl(k) <= 1000}:
        return False, "complete(..., cache_ttl=1) cached nothing: any cache_ttl above 0 caches, for that many seconds"
    hot = dict(TAGLINE_PARAMS)
    n = len(a.tap.exchanges)
    ent.complete(_msgs(TAGLINE), user_id="u-ttl", **hot)
    ent.complete(_msgs(TAGLINE), user_id="u-ttl", **hot)
    if len(a.tap.exchanges) - n != 2:
        return False, f"two identical requests at temperature {hot['temperature']} made one API call: above NO_CACHE_ABOVE answers must not be cached"
    edge = {"model": CHEAP, "reasoning_effort": "none", "temperature": NO_CACHE_ABOVE}
    n = len(a.tap.exchanges)
    ent.complete(_msgs(TAGLINE), user_id="u-ttl", **edge)
    ent.complete(_msgs(TAGLINE), user_id="u-ttl", **edge)
    if len(a.tap.exchanges) - n != 1:
        return False, f"temperature exactly NO_CACHE_ABOVE ({NO_CACHE_ABOVE}) was not cached: only temperatures above it are not"
    return True, f"entries expire within cache_ttl ({ttl} s, or {short} s per call); cache_ttl=0 and temperature {hot['temperature']} not cached; {NO_CACHE_ABOVE} cached"


# --------------------------------------------------------------------------- rate limits

WINDOWS, ATTEMPTS, LIMIT, PROCS, THREADS = 6, 6, 5, 2, 4


def _hammer(obj: Any, shared: Any, barrier: Any, step: float, conn: Any) -> None:
    """One process: THREADS threads, each doing ATTEMPTS checks per window, windows in lockstep."""
    counts = [0] * WINDOWS
    errors: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            for w in range(WINDOWS):
                if barrier.wait() == 0:
                    shared.value += step
                barrier.wait()
                for _ in range(ATTEMPTS):
                    if obj.check_rate_limit("hammered-user"):
                        with lock:
                            counts[w] += 1
        except threading.BrokenBarrierError:
            pass
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            errors.append(f"{type(err).__name__}: {err}"[:200])
            barrier.abort()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn.send((counts, errors))
    conn.close()


@_redis_check("ex06.rate-limit-atomic")
def rate_limit_atomic(ctx: Context, r: redis.Redis, prefix: str) -> Outcome | tuple[bool, str]:
    if "fork" not in multiprocessing.get_all_start_methods():
        return Outcome("skip", "this platform cannot fork processes; run the check on Linux or macOS")
    mp = multiprocessing.get_context("fork")
    window = 60
    shared = mp.Value("d", START, lock=False)
    ctx.attr("EnterpriseGPTClient")
    ent = _make(ctx.module, api(CASSETTE), r, prefix, lambda: shared.value, requests_per_minute=LIMIT, window_s=window)
    if ent.check_rate_limit("warm-up-user") is not True:
        return False, "check_rate_limit() refused the very first request of a user (it must return True)"
    barrier = mp.Barrier(PROCS * THREADS, timeout=8)
    pipes = [mp.Pipe(duplex=False) for _ in range(PROCS)]
    procs = [mp.Process(target=_hammer, args=(ent, shared, barrier, 1.5 * window, w), daemon=True) for _, w in pipes]
    try:
        for p in procs:
            p.start()
        results = []
        for rd, _ in pipes:
            if not rd.poll(9):
                return False, "the workers did not finish within 9 s (a deadlock or a very slow limiter)"
            results.append(rd.recv())
    finally:
        for p in procs:
            p.join(timeout=1)
            if p.is_alive():
                p.kill()
    errors = [e for _, errs in results for e in errs]
    if errors:
        return False, f"check_rate_limit() raised in a worker: {errors[0]}"
    per_window = [sum(c[w] for c, _ in results) for w in range(WINDOWS)]
    attempts = PROCS * THREADS * ATTEMPTS
    over = [(w, n) for w, n in enumerate(per_window) if n > LIMIT]
    if over:
        return False, f"limit {LIMIT}/window, {attempts} concurrent attempts per window: allowed {per_window} (over the limit in {len(over)} of {WINDOWS} windows)"
    if sum(per_window) < LIMIT * WINDOWS // 2:
        return False, (f"allowed only {per_window} of a limit of {LIMIT} per window: the limiter refuses requests it should "
                       "allow (does it read the time from self.clock()?)")
    return True, f"{PROCS} processes x {THREADS} threads, {attempts} attempts per window: allowed {per_window} (limit {LIMIT})"


@_redis_check("ex06.rate-limit-enforced")
def rate_limit_enforced(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=3, window_s=60)
    limited = ctx.attr("RateLimitExceeded")
    for _ in range(3):
        ent.complete(_msgs(BILLING), user_id="alice", cache_ttl=0)
    n = len(a.tap.exchanges)
    ctx.clock.now += 20
    try:
        ent.complete(_msgs(BILLING), user_id="alice", cache_ttl=0)
        return False, "a 4th request within the minute was answered (limit 3 per 60 s)"
    except limited as err:
        retry_after = getattr(err, "retry_after", None)
    if len(a.tap.exchanges) != n:
        return False, "the refused request still reached the API: check the limit before calling"
    # the three requests came at the start of a minute, the 4th 20 s later: a fixed window and a sliding one both reopen in 40 s
    if not isinstance(retry_after, (int, float)) or not 39 <= retry_after <= 41:
        return False, (f"3 requests at the start of a minute, a 4th 20 s later: RateLimitExceeded.retry_after should be the "
                       f"seconds until the window reopens (40, by self.clock()); got {retry_after!r}")
    try:
        ent.complete(_msgs(BILLING), user_id="bob", cache_ttl=0)
    except limited:
        return False, "bob was refused because alice used up her limit: count per user"
    ctx.clock.now += 61
    try:
        ent.complete(_msgs(BILLING), user_id="alice", cache_ttl=0)
    except limited:
        return False, "alice was still refused 61 s later: the window never reopens"
    short = _ent(ctx, a, r, prefix + "w10:", requests_per_minute=1, window_s=10)
    if short.check_rate_limit("carol") is not True or short.check_rate_limit("carol") is not False:
        return False, "window_s=10, limit 1: carol's first request must pass and her second, at once, be refused"
    ctx.clock.now += 11
    if short.check_rate_limit("carol") is not True:
        return False, "window_s=10, limit 1: carol was still refused 11 s later: the window is window_s seconds, not a minute"
    one = _ent(ctx, a, r, prefix + "ids:", requests_per_minute=1, window_s=60)
    for user in ADVERSARIAL_IDS:
        if one.check_rate_limit(user) is not True:
            return False, f"limit 1: the first request of user {user[:40]!r} was refused (another user's count, or a key that mixes ids up?)"
    for user in ADVERSARIAL_IDS:
        if one.check_rate_limit(user) is not False:
            return False, f"limit 1: user {user[:40]!r} got a second request in the same minute"
    lasting = {k: r.ttl(k) for k in r.scan_iter(match=prefix + "ids:*")}
    lasting = {k: t for k, t in lasting.items() if not 0 < t <= 10 * 60}
    if lasting:
        return False, (f"{len(lasting)} rate-limit key(s) never expire or outlive ten windows (TTL {next(iter(lasting.values()))} s): "
                       "give each counter a TTL in the same atomic step")
    return True, (f"3 allowed, the 4th refused before any call (retry after {retry_after:.0f} s); bob unaffected; reopened a "
                  f"minute later; {len(ADVERSARIAL_IDS)} awkward user ids counted apart")


# --------------------------------------------------------------------------- budget


#: Users who send their first request at the same moment: a budget decided outside Redis lets all of
#: them through (about 10 requests' worth at the probe's real cost, against a budget of 6 maximums).
BUDGET_USERS = 20


@_redis_check("ex06.budget-atomic")
def budget_atomic(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    messages, max_out = _msgs(BUDGET_PROBE), BUDGET_MAX_OUT
    one = _max_cost(messages, max_out, CASCADE)
    budget = 6 * one
    a = api(CASSETTE, latency=Latency(base=0.05))  # the API takes 50 ms: every first request is in flight at once
    ent = _ent(ctx, a, r, prefix, monthly_budget_usd=budget, on_budget="block", requests_per_minute=10**6)
    exceeded = ctx.attr("BudgetExceeded")
    arrive = threading.Barrier(BUDGET_USERS, timeout=10)

    def user(i: int) -> None:
        try:
            arrive.wait()  # all users send their first request together
        except threading.BrokenBarrierError:
            return
        try:
            for _ in range(100):
                ent.complete(messages, user_id=f"u{i}", feature="summary", max_completion_tokens=max_out, cache_ttl=0)
        except exceeded:
            pass

    errors = concurrently(user, workers=BUDGET_USERS)
    if errors:
        return False, f"complete() raised under concurrency: {errors[0]}"
    costs = [e.usd for e in a.tap.answered]
    true_spend = sum(costs)
    if true_spend > budget + one + 1e-12:
        return False, (f"budget ${budget:.6f}: {BUDGET_USERS} concurrent users spent ${true_spend:.6f} in {len(costs)} requests, "
                       f"over by ${true_spend - budget:.6f} (more than one request's maximum, ${one:.6f})")
    if true_spend < budget / 2:
        return False, f"only ${true_spend:.6f} of a ${budget:.6f} budget was used before requests were blocked"
    if not _close(ent.spend(), true_spend):
        return False, f"spend() = ${ent.spend():.6f}, the {len(costs)} answers cost ${true_spend:.6f}"
    return True, f"budget ${budget:.6f}: {len(costs)} requests spent ${true_spend:.6f}, never over by more than ${one:.6f}"


@_redis_check("ex06.budget-modes")
def budget_modes(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    cheap, premium = ctx.attr("CHEAP"), ctx.attr("PREMIUM")
    exceeded = ctx.attr("BudgetExceeded")
    messages = _msgs(RESET)
    budget = 2.5 * _max_cost(messages, MAX_COMPLETION_TOKENS, (cheap,))  # fits the cheap model, not the premium one
    if _max_cost(messages, MAX_COMPLETION_TOKENS, (premium,)) <= budget:
        return False, f"PREMIUM={premium!r} is not dearer than CHEAP={cheap!r}: keep the course's premium/cheap pair"
    seen = []
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix + "block:", monthly_budget_usd=budget, on_budget="block")
    try:
        ent.complete(messages, user_id="u-b")
        return False, f"policy 'block': a request whose maximum cost exceeds the ${budget:.6f} budget was sent"
    except exceeded:
        pass
    if a.tap.exchanges:
        return False, "policy 'block': the API was called before the budget refused the request"
    fits = 1.25 * _max_cost(_msgs(BUDGET_PROBE), BUDGET_MAX_OUT, CASCADE)
    roomy = _ent(ctx, api(CASSETTE), r, prefix + "fits:", monthly_budget_usd=fits, on_budget="block")
    try:
        roomy.complete(_msgs(BUDGET_PROBE), user_id="u-b", cache_ttl=0, max_completion_tokens=BUDGET_MAX_OUT)
    except exceeded:
        return False, (f"policy 'block': a ${fits:.6f} budget covers BUDGET_PROBE's maximum cost at max_completion_tokens="
                       f"{BUDGET_MAX_OUT}, yet it was refused: reserve the maximum of the request as sent (its own output limit)")
    seen.append("block refused it (and sent one that fits)")
    ent = _ent(ctx, a, r, prefix + "fallback:", monthly_budget_usd=budget, on_budget="fallback")
    try:
        got = ent.complete(messages, user_id="u-f")
    except exceeded:
        return False, f"policy 'fallback': BudgetExceeded, though the ${budget:.6f} budget covers the request on CHEAP={cheap!r}: retry the reservation for CHEAP and send it there"
    sent = [e.model for e in a.tap.exchanges]
    if sent != [cheap] or not str(got.model).startswith(cheap):
        return False, f"policy 'fallback': expected one request to CHEAP={cheap!r}; sent {sent}, answered by {got.model!r}"
    strict = _ent(ctx, a, r, prefix + "fallback:", monthly_budget_usd=budget, on_budget="block")
    n = len(a.tap.exchanges)
    try:
        strict.complete(_msgs(RESET), user_id="u-b3", cache_ttl=0)
        return False, ("policy 'fallback' answered on CHEAP; then a 'block' client on the same books sent a request to PREMIUM "
                       "that the budget cannot cover: settle and release the CHEAP reservation you made, not the PREMIUM one")
    except exceeded:
        pass
    if len(a.tap.exchanges) != n:
        return False, "a 'block' client on books a fallback request left called the API for a request the budget cannot cover"
    tiny = 0.5 * _max_cost(messages, MAX_COMPLETION_TOKENS, (cheap,))
    ent = _ent(ctx, a, r, prefix + "tiny:", monthly_budget_usd=tiny, on_budget="fallback")
    n = len(a.tap.exchanges)
    try:
        ent.complete(messages, user_id="u-f")
        return False, f"policy 'fallback': a ${tiny:.6f} budget cannot cover the request even on CHEAP, yet it was sent"
    except exceeded:
        pass
    if len(a.tap.exchanges) != n:
        return False, "policy 'fallback': the API was called although the budget covers the request on no model"
    seen.append(f"fallback answered with {got.model} (and refused when even CHEAP does not fit)")
    calls: list[str] = []
    ent = _ent(ctx, a, r, prefix + "alert:", monthly_budget_usd=budget, on_budget="alert", alert=calls.append)
    got = ent.complete(messages, user_id="u-a")
    ent.complete(_msgs(EXPORT), user_id="u-a")
    alerts = list(getattr(ent, "alerts", [])) or calls
    if not str(got.model).startswith(premium):
        return False, f"policy 'alert': the request should continue on {premium!r}; got model={got.model!r}"
    if len(alerts) != 1:
        return False, f"policy 'alert': two requests over budget in November raised {len(alerts)} alerts (expected exactly one for the month, in self.alerts)"
    ctx.clock.now = DECEMBER
    ent.complete(_msgs(BILLING), user_id="u-a")
    alerts = list(getattr(ent, "alerts", [])) or calls
    if len(alerts) != 2:
        return False, f"policy 'alert': over budget again in December, {len(alerts)} alert(s) in all (expected a new one for the new month)"
    strict = _ent(ctx, a, r, prefix + "alert:", monthly_budget_usd=budget, on_budget="block")
    n = len(a.tap.exchanges)
    try:
        strict.complete(_msgs(BUDGET_PROBE), user_id="u-b2", cache_ttl=0, max_completion_tokens=BUDGET_MAX_OUT)
        return False, ("policy 'alert' went over the December budget; a 'block' client on the same books then sent a request: "
                       "the forced requests' reservations must be counted and settled like any other")
    except exceeded:
        pass
    if len(a.tap.exchanges) != n:
        return False, "a 'block' client on books already over budget called the API"
    seen.append("alert continued, alerted once a month, and its books held for a 'block' client")
    return True, f"budget ${budget:.6f}: " + "; ".join(seen)


#: How a request can fail before it is paid for: (scenario, what); the next valid request must go through.
RELEASE_CASES: tuple[tuple[str, str], ...] = (
    *((str(s), f"{_step(str(s))} on the first attempt") for s in FINAL_STATUSES if s in (400, 401, 404)),
    ("503, timeout, 429", "every model of the cascade failing (503, a timeout, 429)"),
    ("429, 500, reset", "every model of the cascade failing, the last with a dropped connection (429, 500, reset)"),
)


@_redis_check("ex06.budget-release")
def budget_release(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    exceeded, limited = ctx.attr("BudgetExceeded"), ctx.attr("RateLimitExceeded")
    one = _max_cost(_msgs(RESET), MAX_COMPLETION_TOKENS, CASCADE)
    budget = 1.5 * one  # one reservation at a time fits
    a = api(CASSETTE)
    for i, (scenario, what) in enumerate(RELEASE_CASES):
        a.faults.steps[:] = parse_scenario(scenario)
        ent = _ent(ctx, a, r, f"{prefix}{i}:", monthly_budget_usd=budget, on_budget="block")
        try:
            ent.complete(_msgs(RESET), user_id="u-fail")
            return False, f"{what}: complete() returned an answer; the error must be raised"
        except exceeded:
            return False, f"{what}: BudgetExceeded on the very first request of the month (budget ${budget:.6f})"
        except Exception:  # noqa: BLE001 - the scripted failure, whatever the client raised
            pass
        if ent.spend() != 0:
            return False, f"{what}: spend() = ${ent.spend():.6f} after a request that failed (nothing was answered)"
        try:
            ent.complete(_msgs(EXPORT), user_id="u-next")
        except exceeded:
            return False, (f"{what}, then a valid request was refused with BudgetExceeded and $0 spent: the failed request's "
                           "reservation was never released")
    ent = _ent(ctx, a, r, f"{prefix}rl:", monthly_budget_usd=budget, on_budget="block", requests_per_minute=1)
    ent.complete(_msgs(RESET), user_id="u-rl", cache_ttl=0)
    try:
        ent.complete(_msgs(EXPORT), user_id="u-rl")
        return False, "limit 1 a minute: the user's second request was answered"
    except limited:
        pass
    try:
        ent.complete(_msgs(BILLING), user_id="u-other")
    except exceeded:
        return False, ("a request refused by the rate limit kept its budget reservation: the next user's valid request was "
                       "refused with BudgetExceeded (check the rate limit first, or release the reservation)")
    return True, f"after each of {len(RELEASE_CASES)} failures and a rate-limit refusal, the next valid request went through; nothing charged"


# --------------------------------------------------------------------------- attribution and pricing

#: The users and features of the attribution check (awkward ids among plain ones).
USERS = ("ana", "o'brien", "team:42", "team:42:eu", "用户-7", "u" * 600)
FEATURES = {"support": RESET, 'say "hi"': EXPORT, "*": BILLING}


@_redis_check("ex06.attribution")
def attribution(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=10**6)
    feats = list(FEATURES)
    jobs = [(USERS[i % len(USERS)], feats[i % len(feats)]) for i in range(9)]
    queue, lock = list(jobs), threading.Lock()

    def work(_: int) -> None:
        while True:
            with lock:
                if not queue:
                    return
                user, feat = queue.pop()
            ent.complete(_msgs(FEATURES[feat]), user_id=user, feature=feat, cache_ttl=0)

    errors = concurrently(work, workers=6)
    if errors:
        return False, f"complete() raised under concurrency: {errors[0]}"
    paid = {f: [e.usd for e in a.tap.answered if e.view["conversation"][-1][1] == m[-1]["content"]] for f, m in FEATURES.items()}
    november = (sum(sum(c) for c in paid.values()), ent.spend_by_user(), ent.spend_by_feature())
    found = _books("November (9 concurrent requests)", ent.spend(), november[1], november[2], november[0],
                   {u for u, _ in jobs}, set(feats))
    if found:
        return False, found
    if all(len(set(c)) == 1 for c in paid.values()):  # every answer to a feature cost the same: exact shares are known
        want = {u: sum(paid[f][0] for uu, f in jobs if uu == u) for u in USERS}
        if not all(_close(november[1].get(u), want[u]) for u in USERS):
            return False, f"November: spend_by_user() = {_fmt(november[1])}, expected {_fmt(want)}"
    ctx.clock.now = DECEMBER
    want_user: dict[str, float] = {}
    want_feat: dict[str, float] = {}
    for i in range(4):
        user, feat = USERS[(i + 2) % len(USERS)], feats[i % len(feats)]
        n = len(a.tap.exchanges)
        ent.complete(_msgs(FEATURES[feat]), user_id=user, feature=feat, cache_ttl=0)
        usd = sum(e.usd for e in a.tap.since(n))
        want_user[user] = want_user.get(user, 0.0) + usd
        want_feat[feat] = want_feat.get(feat, 0.0) + usd
    users, features = ent.spend_by_user(), ent.spend_by_feature()
    found = _books("December (4 requests)", ent.spend(), users, features, sum(want_user.values()), set(want_user), set(want_feat))
    if found:
        return False, found
    for got, want, what in ((users, want_user, "user"), (features, want_feat, "feature")):
        if not all(_close(got.get(k), v) for k, v in want.items()):
            return False, f"December: spend_by_{what}() = {_fmt(got)}, expected {_fmt(want)}"
    ctx.clock.now = START
    if not _close(ent.spend(), november[0]) or ent.spend_by_user() != november[1]:
        return False, "November's books changed after December's requests: key the totals by the month of self.clock()"
    return True, "9 concurrent requests in November and 4 in December, 6 users (awkward ids among them), 3 features: every sum equals the true cost"


def _books(when: str, total: float, users: dict[str, float], features: dict[str, float], paid: float,
           want_users: set[str], want_features: set[str]) -> str:
    """What is wrong with a month's books, or ''."""
    if not _close(total, paid):
        return f"{when}: spend() = ${total:.6f}, the answers cost ${paid:.6f}"
    if set(users) != want_users:
        odd = sorted(set(users) ^ want_users, key=len)[:3]
        return (f"{when}: spend_by_user() has the users {sorted(u[:20] for u in users)}; differing: {[u[:30] for u in odd]} "
                "(quotes, colons, unicode and long ids must come back exactly)")
    if set(features) != want_features:
        return f"{when}: spend_by_feature() has the features {sorted(features)}, expected {sorted(want_features)}"
    if not _close(sum(users.values()), total) or not _close(sum(features.values()), total):
        return f"{when}: the per-user sum ${sum(users.values()):.6f} / per-feature sum ${sum(features.values()):.6f} differ from the total ${total:.6f}"
    return ""


@_redis_check("ex06.cost-priced")
def cost_priced(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix)
    got = ent.complete(_msgs(EXPORT), user_id="u-price")
    want = sum(e.usd for e in a.tap.answered)
    if not _close(got.cost_usd, want):
        return False, f"Answer.cost_usd = {got.cost_usd!r}; the catalog prices the answer's usage at ${want:.8f}"
    if not _close(ent.spend(), want):
        return False, f"spend() = ${ent.spend():.8f} after one request that cost ${want:.8f}"
    usage = a.tap.answered[0].data or {}
    tokens = usage.get("usage") or {}
    prompt = tokens.get("prompt_tokens", tokens.get("input_tokens"))
    completion = tokens.get("completion_tokens", tokens.get("output_tokens"))
    if (got.prompt_tokens, got.completion_tokens) != (prompt, completion):
        return False, f"Answer says {got.prompt_tokens} prompt + {got.completion_tokens} completion tokens; the usage says {prompt} + {completion}"
    return True, f"${want:.8f}, priced from usage (input, output and reasoning at their own prices)"


# --------------------------------------------------------------------------- fallback

#: Every retryable class of the contract on the first attempt, then mixed sequences.
RETRY_CASES: tuple[str, ...] = (*(str(s) for s in RETRYABLE_STATUSES), *RETRYABLE_FAULTS, "429, 503", "timeout, 502")


@_redis_check("ex06.fallback-retryable")
def fallback_retryable(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=10**6)
    cases = [(scenario, PREMIUM) for scenario in RETRY_CASES] + [("503", CASCADE[1])]
    for i, (scenario, model) in enumerate(cases):
        steps = [s.strip() for s in scenario.split(",")]
        what = " then ".join(_step(s) for s in steps) + ("" if model == PREMIUM else f" (model={model!r})")
        a.faults.steps[:] = parse_scenario(scenario)
        n, spent = len(a.tap.exchanges), ent.spend()
        try:
            got = ent.complete(_msgs(RESET), user_id=f"u-retry-{i}", model=model, cache_ttl=0)
        except Exception as err:  # noqa: BLE001 - the learner's client may raise anything
            return False, f"{what} came back and your client raised {type(err).__name__}; the contract tries the next model of CASCADE"
        start = CASCADE.index(model)
        want = list(CASCADE[start : start + len(steps) + 1])
        sent = [e.model for e in a.tap.since(n)]
        if sent != want:
            return False, f"{what}: requests went to {sent}; the contract asks {want} (the next model of CASCADE after each failure, from the model asked for on)"
        if not str(got.model).startswith(want[-1]):
            return False, f"{what}: {want[-1]} answered but Answer.model says {got.model!r}"
        paid = a.tap.exchanges[-1].usd
        if not _close(ent.spend() - spent, paid):
            return False, f"{what}: the answer cost ${paid:.6f} but spend() went up by ${ent.spend() - spent:.6f}"
    return True, f"{len(cases)} scenarios ({', '.join(RETRY_CASES)}; 503 on {CASCADE[1]}): each moved on to the next model and was charged for the answer only"


@_redis_check("ex06.final-errors")
def final_errors(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=10**6)
    for status in FINAL_STATUSES:
        what = _step(str(status))
        a.faults.steps[:] = parse_scenario(str(status))
        n = len(a.tap.exchanges)
        want = _error_class(str(status))
        try:
            got = ent.complete(_msgs(RESET), user_id=f"u-final-{status}", cache_ttl=0)
            return False, f"{what} came back and complete() returned {got!r:.80}; raise it (the SDK's {want.__name__})"
        except want:
            pass
        except Exception as err:  # noqa: BLE001 - the learner's client may raise anything
            return False, f"{what} came back and complete() raised {type(err).__name__}; let the SDK's {want.__name__} propagate"
        sent = [e.model for e in a.tap.since(n)]
        if len(sent) != 1:
            return False, f"{what} came back and the client tried {sent}: every model would refuse the same request; raise at once"
        if ent.spend() != 0:
            return False, f"{what}: spend() = ${ent.spend():.6f} after requests that failed"
    return True, f"each of {', '.join(map(str, FINAL_STATUSES))} raised as the SDK's error after one attempt; nothing charged"


#: Cascades where every model fails, each with a different mix of errors.
ALL_FAIL = ("503, timeout, 429", "reset, 500, 408")
#: A model outside CASCADE: "a model outside CASCADE has no fallback", so its failure is raised after one attempt.
OUTSIDE = DEFAULT


@_redis_check("ex06.all-models-fail")
def all_models_fail(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=10**6)
    for i, scenario in enumerate(ALL_FAIL):
        steps = [s.strip() for s in scenario.split(",")]
        what = ", then ".join(_step(s) for s in steps)
        a.faults.steps[:] = parse_scenario(scenario)
        n = len(a.tap.exchanges)
        last = _error_class(steps[-1])
        try:
            got = ent.complete(_msgs(RESET), user_id=f"u-down-{i}", cache_ttl=0)
            return False, f"{what}: complete() returned {got!r:.80} although every model failed"
        except last:
            pass
        except Exception as err:  # noqa: BLE001 - the learner's client may raise anything
            return False, f"{what}: complete() raised {type(err).__name__}; the contract raises the last model's error ({last.__name__})"
        sent = [e.model for e in a.tap.since(n)]
        if sent != list(CASCADE):
            return False, f"{what}: requests went to {sent}; expected each model of CASCADE once, in order: {list(CASCADE)}"
        if ent.spend() != 0:
            return False, f"{what}: spend() = ${ent.spend():.6f} although nothing was answered"
    assert OUTSIDE not in CASCADE
    a.faults.steps[:] = parse_scenario("503")
    n = len(a.tap.exchanges)
    try:
        got = ent.complete(_msgs(RESET), user_id="u-outside", model=OUTSIDE, cache_ttl=0)
        return False, f"model={OUTSIDE!r} (not in CASCADE) answered 503 and complete() returned {got!r:.80}; raise its error"
    except openai.InternalServerError:
        pass
    except Exception as err:  # noqa: BLE001 - the learner's client may raise anything
        return False, f"model={OUTSIDE!r} (not in CASCADE) answered 503 and complete() raised {type(err).__name__}; raise the SDK's error"
    sent = [e.model for e in a.tap.since(n)]
    if sent != [OUTSIDE]:
        return False, f"model={OUTSIDE!r} is not in CASCADE and answered 503: requests went to {sent}; a model outside CASCADE has no fallback"
    if ent.spend() != 0:
        return False, f"model={OUTSIDE!r} failed: spend() = ${ent.spend():.6f} although nothing was answered"
    return True, (f"{' / '.join(ALL_FAIL)}: each model tried once, in order; the last error raised; nothing charged; "
                  f"{OUTSIDE} (outside CASCADE) raised its 503 with no fallback")


# --------------------------------------------------------------------------- the request itself

#: complete()'s keyword arguments that must reach the API as given.
PARAMS: dict[str, Any] = {"reasoning_effort": "medium", "max_completion_tokens": 800, "verbosity": "low",
                          "safety_identifier": "user-7f3a", "prompt_cache_key": "support-v2"}


def _kept(view: dict[str, Any], kw: dict[str, Any]) -> list[str]:
    """The keyword arguments a request view does not carry as given."""
    lost = []
    for name, value in kw.items():
        got = {"model": view["model"], "reasoning_effort": view["effort"], "max_completion_tokens": view["limit"],
               "verbosity": view["verbosity"]}.get(name, view["sampling"].get(name, view["other"].get(name)))
        if got != value:
            lost.append(f"{name}={value!r} (sent: {got!r})")
    return lost


@_redis_check("ex06.params-kept")
def params_kept(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    ent = _ent(ctx, a, r, prefix, requests_per_minute=10**6)
    ent.complete(_msgs(RESET), user_id="u-p")
    view = a.tap.exchanges[-1].view
    want = {"model": PREMIUM, "reasoning_effort": EFFORT, "max_completion_tokens": MAX_COMPLETION_TOKENS}
    lost = _kept(view, want)
    if lost:
        return False, f"complete(messages, user_id=...) with no options should send the defaults; missing or changed: {', '.join(lost)}"
    if view["conversation"] != [(m["role"], m["content"]) for m in RESET]:
        return False, f"the messages were not sent as given: {view['conversation']!r:.120}"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("", "options", dict(PARAMS)),
        ("", "sampling at effort none", {"model": CHEAP, "reasoning_effort": "none", "temperature": 0.3, "top_p": 0.9}),
        ("503", "options, after a 503 from the first model", dict(PARAMS)),
    ]
    for scenario, what, kw in cases:
        a.faults.steps[:] = parse_scenario(scenario)
        ent.complete(_msgs(EXPORT), user_id="u-p", cache_ttl=0, **kw)
        view = a.tap.exchanges[-1].view
        lost = _kept(view, {k: v for k, v in kw.items() if k != "model" or not scenario})
        if lost:
            return False, f"complete(..., {', '.join(f'{k}={v!r}' for k, v in kw.items())}) ({what}): the request dropped or changed {', '.join(lost)}"
    return True, "the defaults, 5 options, sampling at effort none, and the options again after a fallback all reached the API as given"


# --------------------------------------------------------------------------- the same as the reference


def _day(module: ModuleType) -> dict[str, Any]:
    """A short scripted day through one module's client; what can be seen from outside."""
    r = redisd.connect()
    prefix = redisd.fresh_prefix("ex06diff")
    clock = Clock(now=START)
    a = api(CASSETTE)
    before = {k for k in r.scan_iter(count=1000) if not k.startswith(b"labkit:")}
    ent = _make(module, a, r, prefix, clock, requests_per_minute=3, window_s=60)
    limited = module.RateLimitExceeded
    plan: list[tuple[str, str, list[dict[str, Any]], str, dict[str, Any]]] = [
        ("01 ana asks RESET", "", RESET, "ana", {}),
        ("02 o'brien asks RESET (a hit)", "", RESET, "o'brien", {"feature": "faq"}),
        ("03 ana asks EXPORT with options", "", EXPORT, "ana", {"feature": "export", "verbosity": "low"}),
        ("04 a 503, team:42 asks BILLING", "503", BILLING, "team:42", {}),
        ("05 a 401, team:42 asks BUDGET_PROBE", "401", BUDGET_PROBE, "team:42", {"max_completion_tokens": BUDGET_MAX_OUT}),
        ("06 ana asks for a tagline (hot)", "", TAGLINE, "ana", {"feature": "marketing", **TAGLINE_PARAMS}),
        ("07 ana asks for another tagline (over the limit)", "", TAGLINE, "ana", {"feature": "marketing", **TAGLINE_PARAMS}),
        ("08 ana asks RESET again (a hit, over the limit)", "", RESET, "ana", {}),
        ("09 a minute later ana asks RESET uncached", "", RESET, "ana", {"cache_ttl": 0}),
        ("10 in December zoë asks EXPORT", "", EXPORT, "zoë", {"feature": "export"}),
    ]
    ops: dict[str, Any] = {}
    months: dict[str, float] = {}
    try:
        for name, scenario, messages, user, kw in plan:
            if name.startswith("06"):
                clock.now += 20
            if name.startswith("09"):
                clock.now += 61
            if name.startswith("10"):
                clock.now = DECEMBER
            a.faults.steps[:] = parse_scenario(scenario)
            n = len(a.tap.exchanges)
            seen: dict[str, Any]
            try:
                got = ent.complete(copy.deepcopy(messages), user_id=user, **kw)
                paid = sum(e.usd for e in a.tap.since(n))
                seen = {"answer": str(got.content)[:60], "model": str(got.model), "cached": bool(got.cached),
                        "cost_matches_usage": _close(got.cost_usd, paid)}
            except limited as err:
                wait = getattr(err, "retry_after", None)
                seen = {RAISED: "RateLimitExceeded",
                        "retry_after_within_the_window": isinstance(wait, (int, float)) and 0 < wait <= 60}
            except Exception as err:  # noqa: BLE001 - an exception is an observation
                seen = {RAISED: type(err).__name__}
            seen["requests"] = [{"status": e.status, **_request(e)} for e in a.tap.since(n)]
            ops[name] = seen
            month = "2026-12" if name.startswith("10") else "2026-11"
            months[month] = months.get(month, 0.0) + sum(e.usd for e in a.tap.since(n))
        reports = {}
        for month, paid in months.items():
            clock.now = DECEMBER if month == "2026-12" else START
            total = ent.spend()
            users, feats = ent.spend_by_user(), ent.spend_by_feature()
            reports[month] = {"spend_matches_answers": _close(total, paid), "users": sorted(users), "features": sorted(feats),
                              "sums_match": _close(sum(users.values()), total) and _close(sum(feats.values()), total)}
        foreign = {k for k in r.scan_iter(count=1000) if not k.startswith(b"labkit:")} - before
        if foreign:
            r.delete(*foreign)
        return {"requests and outcomes": ops, "reports": reports,
                "keys written outside the client's prefix": sorted(k.decode(errors="replace")[:60] for k in foreign)}
    finally:
        redisd.drop_prefix(r, prefix)
        r.close()


def _request(e: Exchange) -> dict[str, Any]:
    view = shaping_view(e.path, e.body)
    view["conversation"] = [f"{role}: {text[:40]}" for role, text in view["conversation"]]
    return view


@_redis_check("ex06.same-as-reference")
def same_as_reference(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    return ctx.differential("a scripted day (cache hits, options, a 503, a 401, the rate limit, a new month)", _day)
