"""Checks for exercise 07: tenant billing in SQLite, feature gating on a real Redis, the content pipeline.

Scenarios come from the contract in ``labkit.course.ex07``: tenant ids and feature names with
quotes, SQL and LIKE metacharacters, unicode and great length; failed calls of every kind; month
and day boundaries; concurrent workers. The API is the course simulator behind a
:class:`~labkit.checks.redis_checks.Tap`, so code written on Chat Completions or on the Responses
API is graded on what its requests mean. The billing rows are compared with the reference's.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import openai
import redis

from ..clock import Clock
from ..course.ex07 import (
    DEFAULT_TIER,
    FAILURES,
    FEATURE_NAMES,
    LIMIT_REACHED,
    MARKETING,
    STAGE_MODELS,
    STAGES,
    STATUS,
    SUMMARY,
    TENANT_IDS,
    TIER_LIMITS,
    TOPIC,
)
from ..faults import Latency, parse_scenario
from ..lint import lint_request
from . import Context, register
from .redis_checks import API, START, api, concurrently, redis_check

CASSETTE = "ex07"
#: How an observation says the code raised (sorts before every other field, so a difference names it first).
RAISED = "an exception was raised"
#: The course's tiers as the checks expect them (a copy: code under test cannot change what is expected).
TIERS = copy.deepcopy(TIER_LIMITS)
#: What a refusal carries, as the course gives it (a copy, to see whether code under test changed the shared one).
REFUSAL = copy.deepcopy(LIMIT_REACHED)
REQUESTS = {"marketing": MARKETING, "summary": SUMMARY}
#: A model TenantBilling is given instead of its default (BILLING_MODEL): requests go to self.model.
OTHER_MODEL = STAGE_MODELS["write"]
#: Each stage's model, in order (STAGE_MODELS: the flagship only for writing).
MODELS = tuple(STAGE_MODELS[stage] for stage in STAGES)


def _msgs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of one of the course's requests: code under test that edits its argument cannot change the course's."""
    return copy.deepcopy(messages)


def _close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- billing


def _scratch(prefix: str) -> Path:
    """A fresh folder for a check's database, in memory (/dev/shm) where the system has one: a
    commit then costs no disk flush, so the checks stay fast. Otherwise the usual temp folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        try:
            return Path(tempfile.mkdtemp(prefix=prefix, dir=shm))
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix=prefix))


def _billing_check(check_id: str) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    """Register a check that gets a fresh SQLite file (removed afterwards)."""

    def deco(fn: Callable[..., Any]) -> Callable[[Context], Any]:
        def run(ctx: Context) -> Any:
            folder = _scratch("labkit-ex07-")
            ctx.clock.now = START
            try:
                return fn(ctx, str(folder / "billing.sqlite3"))
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        run.__name__ = fn.__name__
        return register(check_id)(run)

    return deco


def _billing(module: Any, client: Any, db_path: str, clock: Callable[[], float], **tenants: tuple[str, int]) -> Any:
    """A module's TenantBilling on a fresh database, with these tenants (id=(plan, credits))."""
    billing = module.TenantBilling(client, db_path, clock=clock)
    billing.setup()
    for tenant, (plan, credits) in tenants.items():
        billing.add_tenant(tenant, plan, credits)
    return billing


def _learner_billing(ctx: Context, a: API, db_path: str, **tenants: tuple[str, int]) -> Any:
    ctx.attr("TenantBilling")
    return _billing(ctx.module, a.client, db_path, ctx.clock.time, **tenants)


def _rows(db_path: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(db_path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def _usage(data: dict[str, Any] | None) -> tuple[int, int]:
    """(prompt, completion) tokens of an answer, either API."""
    u = (data or {}).get("usage") or {}
    return int(u.get("prompt_tokens", u.get("input_tokens", -1))), int(u.get("completion_tokens", u.get("output_tokens", -1)))


@_billing_check("ex07.billing-records")
def billing_records(ctx: Context, db_path: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    billing = _learner_billing(ctx, a, db_path, acme=("pro", 5), globex=("free", 3))
    plan = [("acme", "marketing", "ai_content_generation"), ("acme", "marketing", "ai_content_generation"),
            ("acme", "summary", "ai_summary"), ("globex", "marketing", "ai_content_generation")]
    results = []
    for i, (t, what, f) in enumerate(plan):
        ctx.clock.now = START + 60 * i
        results.append(billing.process_request(t, _msgs(REQUESTS[what]), feature=f))
    answered = a.tap.answered
    if len(a.tap.exchanges) != len(plan):
        return False, f"{len(plan)} requests made {len(a.tap.exchanges)} API calls"
    for got, e in zip(results, answered):
        if not isinstance(got, dict) or got.get("result") != e.text:
            return False, f"process_request() should return the reply as 'result'; got {got!r:.120}"
        if not _close(got.get("cost_usd"), e.usd):
            return False, f"cost_usd={got.get('cost_usd')!r}, the catalog prices that answer's usage at ${e.usd:.8f}"
        if got.get("credits_used") != 1:
            return False, f"credits_used={got.get('credits_used')!r} for a request of 1 unit"
    if [r.get("remaining_credits") for r in results] != [4, 3, 2, 2]:
        return False, f"remaining_credits after each request: {[r.get('remaining_credits') for r in results]}, expected [4, 3, 2, 2]"
    rows = _rows(db_path, "SELECT tenant_id, feature, units, cost_usd, model, prompt_tokens, completion_tokens, created_at "
                          "FROM usage_records ORDER BY id")
    want = [(t, f, 1) for t, _, f in plan]
    if [r[:3] for r in rows] != want:
        return False, f"usage_records holds {[r[:3] for r in rows]}, expected {want}"
    for i, (row, e) in enumerate(zip(rows, answered)):
        if not _close(row[3], e.usd):
            return False, f"usage_records row {i + 1}: cost_usd {row[3]!r}, the answer cost ${e.usd:.8f}"
        if row[4] != (e.data or {}).get("model") or (row[5], row[6]) != _usage(e.data):
            return False, f"usage_records row {i + 1}: model/tokens {row[4:7]}, the answer says {(e.data or {}).get('model')} {_usage(e.data)}"
        stamp = datetime.fromtimestamp(START + 60 * i, UTC)
        if not isinstance(row[7], str) or not row[7].startswith(stamp.strftime("%Y-%m-%dT%H:%M")):
            return False, f"usage_records row {i + 1}: created_at {row[7]!r}; expected iso(self.clock()), {stamp.isoformat()}"
    if (billing.remaining_credits("acme"), billing.remaining_credits("globex")) != (2, 2):
        return False, f"remaining_credits(): acme {billing.remaining_credits('acme')}, globex {billing.remaining_credits('globex')} (expected 2 and 2)"
    try:
        unknown = billing.remaining_credits("no-such-tenant")
        return False, f"remaining_credits('no-such-tenant') returned {unknown!r}; the contract raises KeyError for an unknown tenant"
    except KeyError:
        pass
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        return False, f"remaining_credits('no-such-tenant') raised {type(err).__name__}; the contract raises KeyError for an unknown tenant"
    other = ctx.attr("TenantBilling")(a.client, db_path, model=OTHER_MODEL, clock=ctx.clock.time)
    n = len(a.tap.exchanges)
    other.process_request("globex", _msgs(MARKETING))
    sent = [e.view["model"] for e in a.tap.since(n)]
    if sent != [OTHER_MODEL]:
        return False, f"TenantBilling(..., model={OTHER_MODEL!r}) sent its request to {sent}: call the API with self.model"
    return True, (f"4 usage rows with model, tokens and time, ${sum(e.usd for e in answered):.6f} in total; acme 2 credits left, "
                  f"globex 2; an unknown tenant is a KeyError; model={OTHER_MODEL!r} is the model called")


@_billing_check("ex07.credits-exhausted")
def credits_exhausted(ctx: Context, db_path: str) -> tuple[bool, str]:
    a = api(CASSETTE, latency=Latency(base=0.01))  # the API takes 10 ms
    billing = _learner_billing(ctx, a, db_path, tiny=("free", 5))
    out_of_credits = ctx.attr("OutOfCredits")
    answered, refused = [0], [0]
    lock = threading.Lock()

    def worker(_: int) -> None:
        for _ in range(2):
            try:
                billing.process_request("tiny", _msgs(MARKETING))
                with lock:
                    answered[0] += 1
            except out_of_credits:
                with lock:
                    refused[0] += 1

    errors = concurrently(worker)
    if errors:
        return False, f"process_request() raised under concurrency: {errors[0]}"
    calls = len(a.tap.exchanges)
    rows = _rows(db_path, "SELECT COUNT(*) FROM usage_records WHERE tenant_id = 'tiny'")[0][0]
    remaining = billing.remaining_credits("tiny")
    if answered[0] != 5 or calls != 5 or rows != 5 or remaining != 0:
        return False, (f"5 credits, 16 concurrent requests: {answered[0]} answered, {calls} API calls, {rows} usage rows, "
                       f"remaining_credits()={remaining} (expected 5, 5, 5, 0)")
    a = api(CASSETTE)
    billing = _learner_billing(ctx, a, db_path, unlucky=("free", 2), exact=("pro", 3), short=("free", 2))
    for failure in FAILURES:
        a.faults.steps[:] = parse_scenario(failure)
        try:
            billing.process_request("unlucky", _msgs(MARKETING))
            return False, f"the API answered {failure} but process_request() returned; let the error propagate"
        except out_of_credits:
            return False, f"the API answered {failure} and process_request() raised OutOfCredits; re-raise the API's error"
        except (openai.APIError, sqlite3.Error, KeyError, ValueError):
            pass
        left = billing.remaining_credits("unlucky")
        logged = _rows(db_path, "SELECT COUNT(*) FROM usage_records WHERE tenant_id = 'unlucky'")[0][0]
        if left != 2 or logged:
            return False, f"after a call that failed with {failure}, the tenant has {left} of 2 credits and {logged} usage row(s): give the credit back, record nothing"
    a.faults.steps[:] = parse_scenario("500")
    try:
        billing.process_request("unlucky", _msgs(MARKETING), units=2)
        return False, "the API answered 500 to a request of 2 units but process_request() returned; let the error propagate"
    except (openai.APIError, sqlite3.Error, KeyError, ValueError):
        pass
    if billing.remaining_credits("unlucky") != 2:
        return False, (f"a request of 2 units failed with 500 and the tenant has {billing.remaining_credits('unlucky')} of 2 credits: "
                       "give back every credit the request took (its units)")
    n = len(a.tap.exchanges)
    got = billing.process_request("exact", _msgs(SUMMARY), feature="ai_summary", units=3)
    if got.get("remaining_credits") != 0 or got.get("credits_used") != 3:
        return False, f"3 credits and a request of 3 units: got {got!r:.120} (expected credits_used 3, remaining_credits 0)"
    for tenant, units, have in (("exact", 1, 0), ("short", 3, 2)):
        try:
            billing.process_request(tenant, _msgs(SUMMARY), units=units)
            return False, f"a tenant with {have} credit(s) left was served a request of {units} unit(s)"
        except out_of_credits:
            pass
        if billing.remaining_credits(tenant) != have:
            return False, f"a refused request of {units} unit(s) changed the credits from {have} to {billing.remaining_credits(tenant)}"
    if len(a.tap.exchanges) != n + 1:
        return False, "a request refused for lack of credits still called the API: take the credits before calling"
    return True, (f"16 concurrent requests on 5 credits: 5 answered, {refused[0]} refused before calling; failures "
                  f"({', '.join(FAILURES)}) refunded; 3 units on 3 credits served, 1 on 0 and 3 on 2 refused")


#: Usage at the edges of November 2026 (and one in the next year): (when, tenant, feature).
EDGES = (
    ("2026-10-31T23:59:59", "acme", "ai_summary"),
    ("2026-11-01T00:00:00", "acme", "ai_content_generation"),
    ("2026-11-14T10:00:00", "acme%", "ai_content_generation"),
    ("2026-11-30T23:59:59", "acme", FEATURE_NAMES[2]),
    ("2026-11-30T23:59:59", "acme", "ai_content_generation"),
    ("2026-12-01T00:00:00", "acme", "ai_summary"),
    ("2026-12-31T23:59:59", "acme", "ai_summary"),
    ("2027-01-01T00:00:00", "acme", "ai_summary"),
)


@_billing_check("ex07.invoice")
def invoice(ctx: Context, db_path: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    billing = _learner_billing(ctx, a, db_path, acme=("pro", 20), **{"acme%": ("pro", 20)})
    paid: list[float] = []
    for when, tenant, feature in EDGES:
        ctx.clock.now = _at(when)
        n = len(a.tap.exchanges)
        billing.process_request(tenant, _msgs(MARKETING), feature=feature)
        paid.append(sum(e.usd for e in a.tap.since(n)))
    for month in ("2026-11", "2026-12"):
        want: dict[str, tuple[int, int, float]] = {}
        for (when, tenant, feature), usd in zip(EDGES, paid):
            if tenant == "acme" and when.startswith(month):
                n_, u, s = want.get(feature, (0, 0, 0.0))
                want[feature] = (n_ + 1, u + 1, s + usd)
        got = billing.invoice("acme", month)
        seen = {r["feature"]: (r["requests"], r["units"], r["cost_usd"]) for r in got} if isinstance(got, list) else {}
        ok = set(seen) == set(want) and all(seen[f][:2] == want[f][:2] and _close(seen[f][2], want[f][2]) for f in want)
        if not ok and {f: v[:2] for f, v in seen.items()} == {f: v[:2] for f, v in want.items()}:
            shown_usd = {f: seen[f][2] for f in seen}
            return False, (f"invoice('acme', '{month}'): cost_usd per feature {shown_usd}; the usage cost "
                           f"{ {f: round(v[2], 9) for f, v in want.items()} } (the sum of the rows' cost_usd, not rounded)")
        if not ok:
            shown = {f: (n_, u) for f, (n_, u, _) in seen.items()}
            return False, (f"invoice('acme', '{month}'): (requests, units) per feature {shown}; expected "
                           f"{ {f: (n_, u) for f, (n_, u, _) in want.items()} } (usage from the first to the last second of "
                           "the month, this tenant only: 'acme%' is another tenant)")
    return True, "November and December for acme, usage at the first and last second of each month, another tenant 'acme%' kept out"


# --------------------------------------------------------------------------- tenant ids, compared with the reference


def _tenants(module: ModuleType) -> dict[str, Any]:
    """Every awkward tenant id and feature name through one module's billing; the rows it leaves."""
    folder = _scratch("labkit-ex07-diff-")
    clock = Clock(now=START)
    a = api(CASSETTE)
    db_path = str(folder / "billing.sqlite3")
    try:
        billing = _billing(module, a.client, db_path, clock, **{t: ("pro", 3 + i) for i, t in enumerate(TENANT_IDS)})
        steps: dict[str, Any] = {}
        for i, tenant in enumerate(TENANT_IDS):
            feature = FEATURE_NAMES[i % len(FEATURE_NAMES)]
            clock.now = START + 60 * i
            n = len(a.tap.exchanges)
            name = f"{i + 1:02} tenant {tenant[:30]!r}, feature {feature!r}"
            try:
                got = billing.process_request(tenant, copy.deepcopy(MARKETING if i % 2 else SUMMARY), feature=feature, units=2)
                e = a.tap.since(n)[-1]
                steps[name] = {
                    "remaining_credits": got.get("remaining_credits"), "credits_used": got.get("credits_used"),
                    "result_is_the_answer": got.get("result") == e.text, "cost_is_the_answers": _close(got.get("cost_usd"), e.usd),
                    "remaining_credits()": billing.remaining_credits(tenant),
                    "invoice 2026-11": sorted((r["feature"], r["requests"], r["units"]) for r in billing.invoice(tenant, "2026-11")),
                }
            except Exception as err:  # noqa: BLE001 - an exception is an observation
                steps[name] = {RAISED: f"{type(err).__name__}"}
        tenants = _rows(db_path, "SELECT tenant_id, plan, credits_included, credits_used FROM tenants ORDER BY tenant_id")
        usage = _rows(db_path, "SELECT tenant_id, feature, model, units, created_at FROM usage_records ORDER BY id")
        return {"steps": steps, "rows in tenants": [list(t) for t in tenants], "rows in usage_records": [list(u) for u in usage]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@_billing_check("ex07.tenant-ids")
def tenant_ids(ctx: Context, db_path: str) -> tuple[bool, str]:
    ctx.attr("TenantBilling")
    ok, detail = ctx.differential("tenant ids with quotes, SQL and LIKE metacharacters, spaces, unicode, 500 characters", _tenants)
    if not ok:
        return False, detail
    ok, detail = _any_tenant_id(ctx, db_path)
    if not ok:
        return False, f"a generated tenant id: {detail}"
    return True, f"{len(TENANT_IDS)} awkward tenant ids and {len(FEATURE_NAMES)} feature names: the same rows as the reference; {detail}"


def _any_tenant_id(ctx: Context, db_path: str) -> tuple[bool, str]:
    """Property: any text (quotes, '%', '_', backslashes, unicode...) is billed as a tenant id like any other."""
    from hypothesis import strategies as st

    from .props import check_property

    billing = _learner_billing(ctx, api(CASSETTE), db_path)
    made = [0]

    def billed_like_any_other(text: str) -> None:
        made[0] += 1
        tenant = f"{made[0]}:{text}"  # a new tenant each time (hypothesis repeats and shrinks examples)
        try:
            billing.add_tenant(tenant, "pro", 3)
            got = billing.process_request(tenant, _msgs(SUMMARY), feature="ai_summary", units=2)
            left = billing.remaining_credits(tenant)
            lines = [(r["feature"], r["requests"], r["units"]) for r in billing.invoice(tenant, "2026-11")]
        except Exception as err:  # shown with the example that caused it
            raise AssertionError(f"your code raised {type(err).__name__}: {str(err)[:120]}") from err
        assert got.get("remaining_credits") == 1 and left == 1, f"3 credits, 2 used: remaining {got.get('remaining_credits')!r} / {left!r}"
        assert lines == [("ai_summary", 1, 2)], f"the invoice shows {lines} (expected one ai_summary line, 1 request, 2 units)"

    text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=30)
    return check_property(billed_like_any_other, max_examples=8, text=text)


# --------------------------------------------------------------------------- tiers


def _redis_check(check_id: str) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    return redis_check(check_id, tag="ex07", start=START)


def _gate(ctx: Context, a: API, r: redis.Redis, prefix: str) -> Any:
    return ctx.attr("FeatureGate")(a.client, r, prefix=prefix, clock=ctx.clock.time)


@_redis_check("ex07.tier-limits")
def tier_limits(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE, latency=Latency(base=0.005))
    gate = _gate(ctx, a, r, prefix)
    free = TIERS[DEFAULT_TIER]["requests_per_day"]
    results: list[Any] = []

    def worker(_: int) -> None:
        for _ in range(2):
            results.append(gate.process_with_tier_limits("freebie", "free", _msgs(STATUS)))  # list.append is thread-safe

    errors = concurrently(worker)
    if errors:
        return False, f"process_with_tier_limits() raised: {errors[0]}"
    answers = [g for g in results if isinstance(g, dict) and g.get("content")]
    refusals = [g for g in results if isinstance(g, dict) and g.get("error")]
    calls = len(a.tap.exchanges)
    if len(answers) != free or calls != free:
        return False, f"free tier ({free} a day), 16 concurrent requests: {len(answers)} answered, {calls} API calls (expected {free} and {free})"
    if LIMIT_REACHED != REFUSAL:
        changed = dict(LIMIT_REACHED)
        LIMIT_REACHED.clear()  # put the shared constant back, for whatever runs next in this process
        LIMIT_REACHED.update(REFUSAL)
        return False, (f"process_with_tier_limits() changed the course's LIMIT_REACHED itself (now {changed}): "
                       "return a new dict, {**LIMIT_REACHED, 'limit': N}")
    want = {**REFUSAL, "limit": free}
    if len(refusals) != 16 - free or not all(all(g.get(k) == v for k, v in want.items()) for g in refusals):
        return False, f"the {16 - free} refusals should carry {want}; got {refusals[:1]!r:.160}"
    a.faults.latency = None
    pro = gate.process_with_tier_limits("paula", "pro", _msgs(STATUS))
    if not pro.get("content"):
        return False, f"a pro user was refused after a free user used up their allowance: {pro!r:.120}"
    ctx.clock.now = _at("2026-11-10T23:59:59")
    late = gate.process_with_tier_limits("freebie", "free", _msgs(STATUS))
    if not late.get("error"):
        return False, "at 23:59:59 the same UTC day the free user was answered again: the allowance is per day"
    ctx.clock.now = _at("2026-11-11T00:00:00")
    again = gate.process_with_tier_limits("freebie", "free", _msgs(STATUS))
    if not again.get("content") or again.get("daily_usage") != 1:
        return False, f"at 00:00:00 UTC the next day the free user got {again!r:.100}: the count starts again at midnight UTC"
    for failure in ("500", "timeout", "401"):
        a.faults.steps[:] = parse_scenario(failure)
        try:
            gate.process_with_tier_limits("flaky", "pro", _msgs(STATUS))
            return False, f"the API answered {failure} and process_with_tier_limits() returned; let the error propagate"
        except (openai.APIError, KeyError, ValueError):
            pass
    after = gate.process_with_tier_limits("flaky", "pro", _msgs(STATUS))
    if after.get("daily_usage") != 1:
        return False, f"3 failed calls (500, timeout, 401) then one answer: daily_usage {after.get('daily_usage')!r}; a failed call must not use up the allowance"
    for user in ("team:1", "team:1:eu", "o'brien", "用户", "u" * 500):
        got = gate.process_with_tier_limits(user, "pro", _msgs(STATUS))
        if got.get("daily_usage") != 1:
            return False, f"user {user[:30]!r}'s first request today says daily_usage={got.get('daily_usage')!r}: another user's count (keys must keep ids apart)"
    lasting = [k for k in r.scan_iter(match=prefix + "*") if not 0 < r.ttl(k) <= 2 * 86400]
    if lasting:
        return False, f"{len(lasting)} key(s) under the gate's prefix never expire or outlive two days (TTL {r.ttl(lasting[0])}): give daily counters a TTL"
    return True, (f"free: {free} of 16 concurrent requests answered, the rest refused with an upgrade link; pro unaffected; "
                  "reset at midnight UTC; failed calls not counted; awkward ids counted apart; counters expire")


@_redis_check("ex07.tier-params")
def tier_params(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    a = api(CASSETTE)
    gate = _gate(ctx, a, r, prefix)
    seen = []
    for tier, expect in [("free", "free"), ("pro", "pro"), ("enterprise", "enterprise"), ("platinum", DEFAULT_TIER)]:
        n = len(a.tap.exchanges)
        try:
            got = gate.process_with_tier_limits(f"user-{tier}", tier, _msgs(STATUS))
        except openai.BadRequestError as err:
            return False, f"tier {tier!r}: the API answered 400: {str(err.message)[:160]}"
        sent = a.tap.since(n)
        if len(sent) != 1:
            return False, f"tier {tier!r}: {len(sent)} API calls for one request"
        view, limits = sent[0].view, TIERS[expect]
        want = {"model": limits["model"], "limit": limits["max_completion_tokens"], "effort": limits["reasoning_effort"]}
        wrong = {k: view[k] for k, v in want.items() if view[k] != v}
        if wrong:
            return False, f"tier {tier!r} sent {wrong}; TIER_LIMITS gives the {expect} tier {want}"
        errors = [f for f in lint_request(**sent[0].body) if f.severity == "error"]
        if errors:
            return False, f"tier {tier!r}: the real API would reject this request: {errors[0].code}: {errors[0].message}"
        # "tier" names the tier whose limits applied or the tier the caller gave: the contract leaves that open
        if got.get("tier") not in (expect, tier) or got.get("daily_limit") != limits["requests_per_day"] or got.get("daily_usage") != 1:
            return False, f"tier {tier!r}: the answer says tier={got.get('tier')!r}, daily_limit={got.get('daily_limit')!r}, daily_usage={got.get('daily_usage')!r}"
        seen.append(f"{tier}: {limits['model']}/{limits['max_completion_tokens']}/{limits['reasoning_effort']}")
    return True, "; ".join(seen)


# --------------------------------------------------------------------------- pipeline


def _pipeline(ctx: Context) -> tuple[API, dict[str, Any]]:
    a = api(CASSETTE)
    got = ctx.attr("ContentPipeline")(a.client).generate_blog_post(TOPIC)
    return a, got if isinstance(got, dict) else {}


def _pipeline_once(ctx: Context) -> tuple[API, dict[str, Any]]:
    """The pipeline's run, shared by the three pipeline checks of one session."""
    if "pipeline" not in ctx.memo:
        ctx.memo["pipeline"] = _pipeline(ctx)
    got: tuple[API, dict[str, Any]] = ctx.memo["pipeline"]
    return got


@register("ex07.pipeline-stages")
def pipeline_stages(ctx: Context) -> tuple[bool, str]:
    a, got = _pipeline_once(ctx)
    views = [e.view for e in a.tap.exchanges]
    models = tuple(v["model"] for v in views)
    if models != MODELS:
        return False, f"stage models {models}, expected {MODELS} (STAGE_MODELS: the flagship only for writing)"
    answers = [e.text for e in a.tap.exchanges]
    for i in range(1, 4):
        sent = "\n".join(text for _, text in views[i]["conversation"])
        if answers[i - 1] not in sent:
            return False, f"the {STAGES[i]} stage was not given the {STAGES[i - 1]} stage's output"
    if got.get("article") != answers[2]:
        return False, "'article' is not the text the write stage produced"
    return True, "research, outline, write, seo in order on " + ", ".join(models)


@register("ex07.seo-parse")
def seo_parse(ctx: Context) -> tuple[bool, str]:
    a, got = _pipeline_once(ctx)
    if len(a.tap.exchanges) != 4:
        return False, f"{len(a.tap.exchanges)} requests (expected 4 stages)"
    fmt = a.tap.exchanges[3].view["format"]
    if not fmt or fmt["type"] != "json_schema" or not fmt["strict"]:
        return False, f"the SEO request asks for {fmt}: use Structured Outputs (parse with a pydantic model: strict json_schema)"
    if not {"title", "meta_description", "keywords"} <= set(fmt["required"]):
        return False, f"the SEO schema requires {fmt['required']}; it needs title, meta_description and keywords"
    import json

    want = json.loads(a.tap.exchanges[3].text)
    pairs = {"seo_title": want["title"], "meta_description": want["meta_description"], "keywords": want["keywords"]}
    wrong = [k for k, v in pairs.items() if got.get(k) != v]
    if wrong:
        return False, "wrong or missing: " + ", ".join(f"{k}={got.get(k)!r:.60}" for k in wrong)
    return True, f"parsed: title {want['title']!r} ({len(want['title'])} chars), {len(want['keywords'])} keywords"


@register("ex07.pipeline-cost")
def pipeline_cost(ctx: Context) -> tuple[bool, str]:
    a, got = _pipeline_once(ctx)
    costs = [e.usd for e in a.tap.exchanges]
    stages = got.get("stage_costs")
    if isinstance(stages, dict) and len(costs) == 4:
        wrong = [s for s, c in zip(STAGES, costs) if not _close(stages.get(s), c)]
        if wrong:
            return False, f"stage_costs[{wrong[0]!r}] = {stages.get(wrong[0])!r}; that stage's answer cost ${costs[STAGES.index(wrong[0])]:.6f}"
    total = got.get("total_cost")
    if not _close(total, sum(costs)):
        return False, f"total_cost={total!r}; the four stages cost ${sum(costs):.6f} ({', '.join(f'${c:.6f}' for c in costs)})"
    return True, f"${sum(costs):.6f} over 4 stages (the write stage ${costs[2]:.6f}, reasoning tokens included)"
