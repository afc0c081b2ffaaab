"""Checks for exercise 06: the enterprise client, run against a real Redis (labkit.redisd).

Every check gets its own key prefix on the server and removes its keys afterwards, so checks
are independent of each other and of anything else on a shared ``REDIS_URL``. The concurrency
checks make the races real: many workers (threads, and two forked processes) hit the same
counters at once, and the checks assert on counts.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import openai
import redis

from ..costs import cost, estimate
from ..course.ex06 import BILLING, BUDGET_MAX_OUT, BUDGET_PROBE, EXPORT, PREMIUM, RESET, TAGLINE, TEMPERATURE
from ..faults import FaultTransport
from ..modes import transport_of
from ..replay import load_cassette, resolve_cassette
from ..tokens import count_tokens
from . import Context, Outcome, fault_transport, replay_transport
from .redis_checks import DECEMBER, START, concurrently, redis_check

CASSETTE = "ex06"


# --------------------------------------------------------------------------- helpers


def _msgs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of one of the course's requests: code under test that edits its argument cannot change the course's."""
    return copy.deepcopy(messages)


def _served_costs(client: Any) -> list[tuple[list[Any] | None, float]]:
    """(request messages, USD) of every answer the replay transport gave, priced from the recording."""
    out: list[tuple[list[Any] | None, float]] = []
    for s in replay_transport(client).served:
        inter = load_cassette(resolve_cassette(s.cassette)).interactions[s.index]
        data = json.loads(inter.content)
        out.append(((inter.body or {}).get("messages"), cost(data["usage"], data["model"]).total_usd))
    return out


def _n_served(client: Any) -> int:
    t = transport_of(client)
    return len(t.attempts) if isinstance(t, FaultTransport) else len(replay_transport(client).served)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _redis_check(check_id: str) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    return redis_check(check_id, tag="ex06", start=START)


def _make(ctx: Context, client: Any, r: redis.Redis, prefix: str, **kw: Any) -> Any:
    kw.setdefault("clock", ctx.clock.time)
    return ctx.attr("EnterpriseGPTClient")(client, r, prefix=prefix, **kw)


# --------------------------------------------------------------------------- cache


@_redis_check("ex06.cache-hit")
def cache_hit(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix)
    first = ent.complete(_msgs(RESET), user_id="u-cache")
    spent = ent.spend()
    second = ent.complete(_msgs(RESET), user_id="u-cache")
    n = _n_served(client)
    if n != 1:
        return False, f"the same request twice made {n} API calls (expected 1: the second should come from Redis)"
    if second.content != first.content:
        return False, "the cached answer's content differs from the first answer"
    if second.cached is not True or second.cost_usd != 0:
        return False, f"the repeat should say cached=True and cost_usd=0.0; got cached={second.cached!r}, cost_usd={second.cost_usd!r}"
    if not _close(ent.spend(), spent):
        return False, f"the cache hit changed the month's spend from ${spent:.6f} to ${ent.spend():.6f}"
    return True, f"1 API call for 2 identical requests; the hit cost $0 (the miss ${first.cost_usd:.6f})"


@_redis_check("ex06.cache-key")
def cache_key(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix)
    cheap = ctx.attr("CHEAP")
    base = ent.complete(_msgs(RESET), user_id="u-key")
    other_model = ent.complete(_msgs(RESET), user_id="u-key", model=cheap)
    if _n_served(client) != 2 or other_model.cached:
        return False, f"model={cheap!r} with the same messages was served from the cache of {base.model!r}: the key ignores the model"
    if not str(other_model.model).startswith(cheap):
        return False, f"asked for {cheap!r}, the answer says model={other_model.model!r}"
    cooler = ent.complete(_msgs(RESET), user_id="u-key", temperature=0.2)
    if _n_served(client) != 3 or cooler.cached:
        return False, "temperature=0.2 was served from the cache of the default-temperature request: the key ignores parameters"
    again = ent.complete(_msgs(RESET), user_id="u-key", model=cheap)
    if _n_served(client) != 3 or not again.cached:
        return False, "repeating the cheaper-model request was not a cache hit"
    return True, "a different model and a different temperature each missed; the exact repeat hit"


@_redis_check("ex06.cache-policy")
def cache_policy(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    ttl = 1800
    ent = _make(ctx, client, r, prefix, cache_ttl=ttl)
    ent.complete(_msgs(EXPORT), user_id="u-ttl", cache_ttl=0)  # creates the counters, caches nothing
    before = set(r.scan_iter(match=prefix + "*"))
    ent.complete(_msgs(BILLING), user_id="u-ttl")
    new = set(r.scan_iter(match=prefix + "*")) - before
    if not new:
        return False, f"no new key appeared under the client's prefix {prefix!r} after a cacheable request: nothing was cached"
    ttls = {k.decode(): r.ttl(k) for k in new}
    bad = {k: t for k, t in ttls.items() if not 0 < t <= ttl}
    if bad:
        return False, f"cache entries must expire within cache_ttl={ttl} s; TTLs seen: {bad} (-1 means no expiry)"
    n = _n_served(client)
    ent.complete(_msgs(TAGLINE), user_id="u-ttl", temperature=1.0)
    ent.complete(_msgs(TAGLINE), user_id="u-ttl", temperature=1.0)
    if _n_served(client) - n != 2:
        return False, "two identical requests at temperature 1.0 made one API call: high-temperature answers must not be cached"
    return True, f"the cache entry expires in {max(ttls.values())} s (<= {ttl}); temperature 1.0 was not cached"


# --------------------------------------------------------------------------- rate limits

WINDOWS, ATTEMPTS, LIMIT, PROCS, THREADS = 10, 6, 5, 2, 4


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
    ent = _make(ctx, ctx.client(CASSETTE), r, prefix, requests_per_minute=LIMIT, window_s=window,
                clock=lambda: shared.value)
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
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix, requests_per_minute=3, window_s=60)
    limited = ctx.attr("RateLimitExceeded")
    for _ in range(3):
        ent.complete(_msgs(BILLING), user_id="alice", cache_ttl=0)
    n = _n_served(client)
    try:
        ent.complete(_msgs(BILLING), user_id="alice", cache_ttl=0)
        return False, "a 4th request within the minute was answered (limit 3 per 60 s)"
    except limited as err:
        retry_after = getattr(err, "retry_after", None)
    if _n_served(client) != n:
        return False, "the refused request still reached the API: check the limit before calling"
    if not isinstance(retry_after, (int, float)) or not 0 < retry_after <= 60:
        return False, f"RateLimitExceeded.retry_after should be the seconds until the window reopens (0 < s <= 60); got {retry_after!r}"
    try:
        ent.complete(_msgs(BILLING), user_id="bob", cache_ttl=0)
    except limited:
        return False, "bob was refused because alice used up her limit: count per user"
    ctx.clock.now += 61
    try:
        ent.complete(_msgs(BILLING), user_id="alice", cache_ttl=0)
    except limited:
        return False, "alice was still refused 61 s later: the window never reopens"
    return True, f"3 allowed, the 4th refused before any call (retry after {retry_after:.0f} s); bob unaffected; reopened a minute later"


# --------------------------------------------------------------------------- budget


@_redis_check("ex06.budget-atomic")
def budget_atomic(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    messages, max_out = _msgs(BUDGET_PROBE), BUDGET_MAX_OUT
    one = estimate(count_tokens(messages, PREMIUM), max_out, PREMIUM).total_usd
    budget = 12 * one
    client = ctx.faults.client((), CASSETTE, latency=ctx.faults.Latency(base=0.01))  # the API takes 10 ms
    ent = _make(ctx, client, r, prefix, monthly_budget_usd=budget, on_budget="block", requests_per_minute=10**6)
    exceeded = ctx.attr("BudgetExceeded")

    def user(i: int) -> None:
        try:
            for _ in range(100):
                ent.complete(messages, user_id=f"u{i}", feature="summary", max_completion_tokens=max_out, cache_ttl=0)
        except exceeded:
            pass

    errors = concurrently(user)
    if errors:
        return False, f"complete() raised under concurrency: {errors[0]}"
    costs = [c for _, c in _served_costs(client)]
    models = {a.body["model"] for a in fault_transport(client).attempts if a.body}
    one = max(estimate(count_tokens(messages, m), max_out, m).total_usd for m in models) if models else one
    true_spend = sum(costs)
    if true_spend > budget + one + 1e-12:
        return False, (f"budget ${budget:.6f}: 8 concurrent users spent ${true_spend:.6f} in {len(costs)} requests, "
                       f"over by ${true_spend - budget:.6f} (more than one request's maximum, ${one:.6f})")
    if true_spend < budget / 2:
        return False, f"only ${true_spend:.6f} of a ${budget:.6f} budget was used before requests were blocked"
    return True, f"budget ${budget:.6f}: {len(costs)} requests spent ${true_spend:.6f}, never over by more than ${one:.6f}"


@_redis_check("ex06.budget-modes")
def budget_modes(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    cheap, premium = ctx.attr("CHEAP"), ctx.attr("PREMIUM")
    exceeded = ctx.attr("BudgetExceeded")
    messages = _msgs(RESET)
    prompt = count_tokens(messages, premium)
    budget = 2.5 * estimate(prompt, 500, cheap).total_usd  # fits the cheap model, not the premium one
    if estimate(prompt, 500, premium).total_usd <= budget:
        return False, f"PREMIUM={premium!r} is not dearer than CHEAP={cheap!r}: keep the lesson's premium/cheap pair"
    seen = []
    # block
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix + "block:", monthly_budget_usd=budget, on_budget="block")
    try:
        ent.complete(messages, user_id="u-b")
        return False, f"policy 'block': a request whose maximum cost exceeds the ${budget:.6f} budget was sent"
    except exceeded:
        pass
    if _n_served(client):
        return False, "policy 'block': the API was called before the budget refused the request"
    seen.append("block refused it")
    # fallback
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix + "fallback:", monthly_budget_usd=budget, on_budget="fallback")
    got = ent.complete(messages, user_id="u-f")
    if not str(got.model).startswith(cheap):
        return False, f"policy 'fallback': expected an answer from CHEAP={cheap!r}, got model={got.model!r}"
    seen.append(f"fallback answered with {got.model}")
    # alert
    client = ctx.client(CASSETTE)
    calls: list[str] = []
    ent = _make(ctx, client, r, prefix + "alert:", monthly_budget_usd=budget, on_budget="alert", alert=calls.append)
    got = ent.complete(messages, user_id="u-a")
    ent.complete(_msgs(EXPORT), user_id="u-a")
    alerts = list(getattr(ent, "alerts", [])) or calls
    if not str(got.model).startswith(premium):
        return False, f"policy 'alert': the request should continue on {premium!r}; got model={got.model!r}"
    if len(alerts) != 1:
        return False, f"policy 'alert': expected exactly one alert for the month (in self.alerts), got {len(alerts)}"
    seen.append("alert continued and alerted once")
    return True, f"budget ${budget:.6f}: " + "; ".join(seen)


# --------------------------------------------------------------------------- attribution and pricing


@_redis_check("ex06.attribution")
def attribution(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix, requests_per_minute=10**6)
    questions = {"support": _msgs(RESET), "export": _msgs(EXPORT), "billing": _msgs(BILLING)}
    unit: dict[str, float] = {}
    for inter in load_cassette(resolve_cassette(CASSETTE)).interactions:
        for feat, msgs in questions.items():
            if inter.body and inter.body.get("messages") == msgs and inter.body.get("model") == ctx.attr("PREMIUM") \
                    and inter.body.get("temperature") == TEMPERATURE and feat not in unit:
                data = json.loads(inter.content)
                unit[feat] = cost(data["usage"], data["model"]).total_usd
    feats = list(questions)

    def batch(jobs: list[tuple[str, str]]) -> list[str]:
        lock = threading.Lock()

        def work(_: int) -> None:
            while True:
                with lock:
                    if not jobs:
                        return
                    user, feat = jobs.pop()
                ent.complete(questions[feat], user_id=user, feature=feat, cache_ttl=0)

        return concurrently(work)

    plan = {"November": (START, 24), "December": (DECEMBER, 12)}
    truth: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    for name, (at, n) in plan.items():
        ctx.clock.now = at
        jobs = [(f"user-{i % 4}", feats[i % 3]) for i in range(n)]
        by_user: dict[str, float] = {}
        by_feat: dict[str, float] = {}
        for u, f in jobs:
            by_user[u] = by_user.get(u, 0.0) + unit[f]
            by_feat[f] = by_feat.get(f, 0.0) + unit[f]
        truth[name] = (by_user, by_feat)
        errors = batch(jobs)
        if errors:
            return False, f"complete() raised under concurrency: {errors[0]}"
    served_total = sum(c for _, c in _served_costs(client))
    for name, (at, _) in plan.items():
        ctx.clock.now = at
        want_user, want_feat = truth[name]
        total, users, features = ent.spend(), ent.spend_by_user(), ent.spend_by_feature()
        want = sum(want_user.values())
        if not _close(total, want):
            return False, f"{name}: spend() = ${total:.6f}, the requests of that month cost ${want:.6f}"
        if set(users) != set(want_user) or not all(_close(users[u], want_user[u]) for u in want_user):
            return False, f"{name}: spend_by_user() = {_fmt(users)}, expected {_fmt(want_user)}"
        if set(features) != set(want_feat) or not all(_close(features[f], want_feat[f]) for f in want_feat):
            return False, f"{name}: spend_by_feature() = {_fmt(features)}, expected {_fmt(want_feat)}"
        if not _close(sum(users.values()), total) or not _close(sum(features.values()), total):
            return False, f"{name}: per-user sum ${sum(users.values()):.6f} / per-feature sum ${sum(features.values()):.6f} differ from the total ${total:.6f}"
    grand = sum(sum(u.values()) for u, _ in truth.values())
    if not _close(served_total, grand):
        return False, f"the API served ${served_total:.6f} of answers, the requests should have cost ${grand:.6f}"
    return True, f"36 concurrent requests over 2 months, 4 users, 3 features: every sum equals the true ${grand:.6f}"


def _fmt(d: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: ${v:.6f}" for k, v in sorted(d.items())) + "}"


@_redis_check("ex06.cost-priced")
def cost_priced(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    ent = _make(ctx, client, r, prefix)
    got = ent.complete(_msgs(EXPORT), user_id="u-price")
    want = sum(c for _, c in _served_costs(client))
    if not isinstance(got.cost_usd, (int, float)) or not _close(got.cost_usd, want):
        return False, f"Answer.cost_usd = {got.cost_usd!r}; the catalog prices this usage at ${want:.8f}"
    if not _close(ent.spend(), want):
        return False, f"spend() = ${ent.spend():.8f} after one request that cost ${want:.8f}"
    return True, f"${want:.8f}, priced from usage (input and output at their own prices)"


# --------------------------------------------------------------------------- fallback


def _scripted(ctx: Context, r: redis.Redis, prefix: str, scenario: str) -> tuple[Any, Any]:
    """An API whose first answer is ``scenario`` (a labkit.faults scenario), and the client under test on it."""
    client = ctx.faults.client(scenario, CASSETTE)
    return client, _make(ctx, client, r, prefix)


def _seen(client: Any) -> list[tuple[str, Any]]:
    """(outcome, model) of every request the scripted API received."""
    return [(a.outcome, (a.body or {}).get("model")) for a in fault_transport(client).attempts]


@_redis_check("ex06.fallback-503")
def fallback_503(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client, ent = _scripted(ctx, r, prefix, "503")
    got = ent.complete(_msgs(RESET), user_id="u-503")
    seen = _seen(client)
    if len(seen) != 2 or seen[0][0] != "503":
        return False, f"attempts {seen}: expected the 503, then one request to the next model"
    first, second = seen[0][1], seen[1][1]
    if first == second:
        return False, f"after the 503 the same model {first!r} was asked again instead of the next in the cascade"
    if not str(got.model).startswith(str(second)):
        return False, f"{second!r} answered but Answer.model says {got.model!r}"
    want = sum(c for _, c in _served_costs(client))
    if not _close(ent.spend(), want):
        return False, f"the fallback answer cost ${want:.6f} but spend() = ${ent.spend():.6f}"
    return True, f"{first} -> 503 -> {second} answered (${want:.6f})"


@_redis_check("ex06.no-fallback-400")
def no_fallback_400(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client, ent = _scripted(ctx, r, prefix, "400")
    try:
        got = ent.complete(_msgs(RESET), user_id="u-400")
    except openai.BadRequestError:
        got = None
    seen = _seen(client)
    if len(seen) != 1:
        return False, f"attempts {seen}: a 400 means our request is wrong; another model must not be tried"
    if got is not None:
        return False, f"the 400 was swallowed and complete() returned {got!r:.80}; let BadRequestError propagate"
    if ent.spend() != 0:
        return False, f"spend() = ${ent.spend():.6f} after a request that failed"
    return True, "BadRequestError raised after one attempt; nothing charged"
