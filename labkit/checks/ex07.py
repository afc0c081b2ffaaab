"""Checks for exercise 07: tenant billing in SQLite, feature gating on a real Redis, the content pipeline."""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import redis

from ..costs import cost
from ..course.ex07 import MARKETING, STAGE_MODELS, STAGES, STATUS, SUMMARY, TIER_LIMITS, TOPIC
from ..lint import lint_request
from ..replay import load_cassette, resolve_cassette
from . import Context, fault_transport, register, replay_transport
from .redis_checks import DECEMBER, START, concurrently, redis_check

CASSETTE = "ex07"
#: The course's tiers as the checks expect them (a copy: code under test cannot change what is expected).
TIERS = copy.deepcopy(TIER_LIMITS)


def _inter(label: str) -> Any:
    for inter in load_cassette(resolve_cassette(CASSETTE)).interactions:
        if inter.label == label:
            return inter
    raise RuntimeError(f"cassettes/{CASSETTE}.json has no interaction labelled {label!r}: run `make cassettes`")


def _msgs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of one of the course's requests: code under test that edits its argument cannot change the course's."""
    return copy.deepcopy(messages)


def _reply(label: str) -> str:
    text = json.loads(_inter(label).content)["choices"][0]["message"]["content"]
    if not isinstance(text, str):
        raise RuntimeError(f"cassettes/{CASSETTE}.json: the interaction labelled {label!r} has no text reply: run `make cassettes`")
    return text


def _costs(client: Any) -> list[float]:
    out: list[float] = []
    for s in replay_transport(client).served:
        data = json.loads(load_cassette(resolve_cassette(s.cassette)).interactions[s.index].content)
        out.append(cost(data["usage"], data["model"]).total_usd)
    return out


def _close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


#: The recordings that answer MARKETING and SUMMARY.
REPLIES = {"marketing": "tenant request: marketing email", "summary": "tenant request: meeting summary"}
REQUESTS = {"marketing": MARKETING, "summary": SUMMARY}


# --------------------------------------------------------------------------- billing


def _billing_check(check_id: str) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    """Register a check that gets a fresh SQLite file (removed afterwards)."""

    def deco(fn: Callable[..., Any]) -> Callable[[Context], Any]:
        def run(ctx: Context) -> Any:
            folder = Path(tempfile.mkdtemp(prefix="labkit-ex07-"))
            ctx.clock.now = START
            try:
                return fn(ctx, str(folder / "billing.sqlite3"))
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        run.__name__ = fn.__name__
        return register(check_id)(run)

    return deco


def _billing(ctx: Context, client: Any, db_path: str, **tenants: tuple[str, int]) -> Any:
    """The learner's TenantBilling on a fresh database, with these tenants (id=(plan, credits))."""
    billing = ctx.attr("TenantBilling")(client, db_path, clock=ctx.clock.time)
    billing.setup()
    for tenant, (plan, credits) in tenants.items():
        billing.add_tenant(tenant, plan, credits)
    return billing


def _rows(db_path: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    import sqlite3

    db = sqlite3.connect(db_path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


@_billing_check("ex07.billing-records")
def billing_records(ctx: Context, db_path: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    billing = _billing(ctx, client, db_path, acme=("pro", 5), globex=("free", 3))
    plan = [("acme", "marketing", "ai_content_generation"), ("acme", "marketing", "ai_content_generation"),
            ("acme", "summary", "ai_summary"), ("globex", "marketing", "ai_content_generation")]
    results = [billing.process_request(t, _msgs(REQUESTS[what]), feature=f) for t, what, f in plan]
    costs = _costs(client)
    if len(costs) != len(plan):
        return False, f"{len(plan)} requests made {len(costs)} API calls"
    for (_t, what, _), got, c in zip(plan, results, costs):
        if not isinstance(got, dict) or got.get("result") != _reply(REPLIES[what]):
            return False, f"process_request() should return the reply as 'result'; got {got!r:.120}"
        if not _close(got.get("cost_usd"), c):
            return False, f"cost_usd={got.get('cost_usd')!r}, the catalog prices that usage at ${c:.8f}"
    if [r.get("remaining_credits") for r in results] != [4, 3, 2, 2]:
        return False, f"remaining_credits after each request: {[r.get('remaining_credits') for r in results]}, expected [4, 3, 2, 2]"
    rows = _rows(db_path, "SELECT tenant_id, feature, units, cost_usd FROM usage_records ORDER BY id")
    want = [(t, f, 1) for t, _, f in plan]
    if [r[:3] for r in rows] != want:
        return False, f"usage_records holds {[r[:3] for r in rows]}, expected {want}"
    if not all(_close(r[3], c) for r, c in zip(rows, costs)):
        return False, f"usage_records.cost_usd {[r[3] for r in rows]} differ from the real costs {[round(c, 8) for c in costs]}"
    if (billing.remaining_credits("acme"), billing.remaining_credits("globex")) != (2, 2):
        return False, f"remaining_credits(): acme {billing.remaining_credits('acme')}, globex {billing.remaining_credits('globex')} (expected 2 and 2)"
    return True, f"4 usage rows, ${sum(costs):.6f} in total; acme 2 credits left, globex 2"


@_billing_check("ex07.credits-exhausted")
def credits_exhausted(ctx: Context, db_path: str) -> tuple[bool, str]:
    client = ctx.faults.client((), CASSETTE, latency=ctx.faults.Latency(base=0.01))  # the API takes 10 ms
    billing = _billing(ctx, client, db_path, tiny=("free", 5))
    out_of_credits = ctx.attr("OutOfCredits")
    messages = _msgs(MARKETING)
    answered, refused = [0], [0]
    lock = threading.Lock()

    def worker(_: int) -> None:
        for _ in range(2):
            try:
                billing.process_request("tiny", messages)
                with lock:
                    answered[0] += 1
            except out_of_credits:
                with lock:
                    refused[0] += 1

    errors = concurrently(worker)
    if errors:
        return False, f"process_request() raised under concurrency: {errors[0]}"
    calls = len(fault_transport(client).attempts)
    rows = _rows(db_path, "SELECT COUNT(*) FROM usage_records WHERE tenant_id = 'tiny'")[0][0]
    remaining = billing.remaining_credits("tiny")
    if answered[0] != 5 or calls != 5 or rows != 5 or remaining != 0:
        return False, (f"5 credits, 16 concurrent requests: {answered[0]} answered, {calls} API calls, {rows} usage rows, "
                       f"remaining_credits()={remaining} (expected 5, 5, 5, 0)")
    failing = ctx.faults.client("500", CASSETTE)
    billing = ctx.attr("TenantBilling")(failing, db_path, clock=ctx.clock.time)
    billing.add_tenant("unlucky", "free", 2)
    try:
        billing.process_request("unlucky", messages)
        return False, "the API answered 500 but process_request() did not raise"
    except openai.APIStatusError:
        pass
    if billing.remaining_credits("unlucky") != 2:
        return False, f"after a failed call the tenant has {billing.remaining_credits('unlucky')} of 2 credits: give the credit back"
    return True, f"16 concurrent requests on 5 credits: 5 answered, {refused[0]} refused before calling; a 500 refunded its credit"


@_billing_check("ex07.invoice")
def invoice(ctx: Context, db_path: str) -> tuple[bool, str]:
    client = ctx.client(CASSETTE)
    billing = _billing(ctx, client, db_path, acme=("pro", 10), globex=("pro", 10))
    plan = [(START, "acme", "marketing", "ai_content_generation"), (START + 60, "acme", "marketing", "ai_content_generation"),
            (START + 120, "acme", "summary", "ai_summary"), (START + 180, "globex", "summary", "ai_summary"),
            (DECEMBER, "acme", "marketing", "ai_content_generation")]
    for at, t, what, f in plan:
        ctx.clock.now = at
        billing.process_request(t, _msgs(REQUESTS[what]), feature=f)
    costs = _costs(client)
    want: dict[str, tuple[int, int, float]] = {}
    for (at, t, _, f), c in zip(plan, costs):
        if t == "acme" and at < DECEMBER:
            n, u, s = want.get(f, (0, 0, 0.0))
            want[f] = (n + 1, u + 1, s + c)
    got = billing.invoice("acme", "2026-11")
    seen = {r["feature"]: (r["requests"], r["units"], r["cost_usd"]) for r in got} if isinstance(got, list) else {}
    ok = set(seen) == set(want) and all(seen[f][:2] == want[f][:2] and _close(seen[f][2], want[f][2]) for f in want)
    if not ok:
        return False, f"invoice('acme', '2026-11') = {got!r:.200}; expected per feature (requests, units, cost) {want}"
    return True, "November for acme: " + ", ".join(f"{f} {n} request(s) ${s:.6f}" for f, (n, _, s) in sorted(want.items()))


# --------------------------------------------------------------------------- tiers


def _redis_check(check_id: str) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    return redis_check(check_id, tag="ex07", start=START)


@_redis_check("ex07.tier-limits")
def tier_limits(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.faults.client((), CASSETTE, latency=ctx.faults.Latency(base=0.005))
    gate = ctx.attr("FeatureGate")(client, r, prefix=prefix, clock=ctx.clock.time)
    messages = _msgs(STATUS)
    results: list[Any] = []

    def worker(_: int) -> None:
        for _ in range(2):
            results.append(gate.process_with_tier_limits("freebie", "free", messages))  # list.append is thread-safe

    errors = concurrently(worker)
    if errors:
        return False, f"process_with_tier_limits() raised: {errors[0]}"
    answers = [g for g in results if isinstance(g, dict) and g.get("content")]
    refusals = [g for g in results if isinstance(g, dict) and g.get("error")]
    calls = len(fault_transport(client).attempts)
    if len(answers) != 10 or calls != 10:
        return False, f"free tier (10 a day), 16 concurrent requests: {len(answers)} answered, {calls} API calls (expected 10 and 10)"
    if len(refusals) != 6 or not all(g.get("upgrade_url") and g.get("limit") == 10 for g in refusals):
        return False, f"the 6 refusals should carry 'error', 'upgrade_url' and 'limit': 10; got {refusals[:1]!r:.160}"
    pro = gate.process_with_tier_limits("paula", "pro", _msgs(STATUS))
    if not pro.get("content"):
        return False, f"a pro user was refused after a free user used up their allowance: {pro!r:.120}"
    ctx.clock.now += 86400
    again = gate.process_with_tier_limits("freebie", "free", messages)
    if not again.get("content"):
        return False, "the free user was still refused the next day: the daily count must reset"
    return True, "free: 10 of 16 concurrent requests answered, 6 refused with an upgrade link; pro unaffected; reset the next day"


@_redis_check("ex07.tier-params")
def tier_params(ctx: Context, r: redis.Redis, prefix: str) -> tuple[bool, str]:
    client = ctx.faults.client((), CASSETTE)
    gate = ctx.attr("FeatureGate")(client, r, prefix=prefix, clock=ctx.clock.time)
    seen = []
    for tier, expect in [("free", "free"), ("pro", "pro"), ("enterprise", "enterprise"), ("platinum", "free")]:
        gate.process_with_tier_limits(f"user-{tier}", tier, _msgs(STATUS))
        body = fault_transport(client).attempts[-1].body or {}
        model, limit = TIERS[expect]["model"], TIERS[expect]["max_completion_tokens"]
        if body.get("model") != model:
            return False, f"tier {tier!r} sent model={body.get('model')!r}; TIER_LIMITS gives the {expect} tier {model!r}"
        if body.get("max_completion_tokens") != limit:
            return False, f"tier {tier!r} sent max_completion_tokens={body.get('max_completion_tokens')!r} (expected {limit}; max_tokens={body.get('max_tokens')!r})"
        errors = [f for f in lint_request(**body) if f.severity == "error"]
        if errors:
            return False, f"tier {tier!r}: the real API would reject this request: {errors[0].code}: {errors[0].message}"
        seen.append(f"{tier}: {model}/{limit}")
    return True, "; ".join(seen)


# --------------------------------------------------------------------------- pipeline

#: Each stage's model, in order (STAGE_MODELS: the flagship only for writing).
MODELS = tuple(STAGE_MODELS[stage] for stage in STAGES)


def _pipeline(ctx: Context) -> tuple[Any, dict[str, Any], list[Any]]:
    client = ctx.faults.client((), CASSETTE)
    got = ctx.attr("ContentPipeline")(client).generate_blog_post(TOPIC)
    return client, got, fault_transport(client).attempts


@register("ex07.pipeline-stages")
def pipeline_stages(ctx: Context) -> tuple[bool, str]:
    _, got, attempts = _pipeline(ctx)
    models = tuple((a.body or {}).get("model") for a in attempts)
    if models != MODELS:
        return False, f"stage models {models}, expected {MODELS} (STAGE_MODELS: the flagship only for writing)"
    for i in range(1, 4):
        previous = _reply(f"pipeline stage: {STAGES[i - 1]}")
        sent = json.dumps((attempts[i].body or {}).get("messages"), ensure_ascii=False)
        if json.dumps(previous, ensure_ascii=False)[1:-1] not in sent:
            return False, f"the {STAGES[i]} stage was not given the {STAGES[i - 1]} stage's output"
    if got.get("article") != _reply("pipeline stage: write"):
        return False, "'article' is not the text the write stage produced"
    return True, "research, outline, write, seo in order on " + ", ".join(models)


@register("ex07.seo-parse")
def seo_parse(ctx: Context) -> tuple[bool, str]:
    _, got, attempts = _pipeline(ctx)
    if len(attempts) != 4:
        return False, f"{len(attempts)} requests (expected 4 stages)"
    fmt = (attempts[3].body or {}).get("response_format") or {}
    schema = (fmt.get("json_schema") or {})
    if fmt.get("type") != "json_schema" or schema.get("strict") is not True:
        return False, f"the SEO request's response_format is {json.dumps(fmt)[:80]}: use Structured Outputs (parse with a pydantic model)"
    required = set((schema.get("schema") or {}).get("required") or [])
    if not {"title", "meta_description", "keywords"} <= required:
        return False, f"the SEO schema requires {sorted(required)}; it needs title, meta_description and keywords"
    want = json.loads(_reply("pipeline stage: seo (structured output)"))
    pairs = {"seo_title": want["title"], "meta_description": want["meta_description"], "keywords": want["keywords"]}
    wrong = [k for k, v in pairs.items() if got.get(k) != v]
    if wrong:
        return False, "wrong or missing: " + ", ".join(f"{k}={got.get(k)!r:.60}" for k in wrong)
    return True, f"parsed: title {want['title']!r} ({len(want['title'])} chars), {len(want['keywords'])} keywords"


@register("ex07.pipeline-cost")
def pipeline_cost(ctx: Context) -> tuple[bool, str]:
    client, got, _ = _pipeline(ctx)
    costs = _costs(client)
    total = got.get("total_cost")
    if not _close(total, sum(costs)):
        return False, f"total_cost={total!r}; the four stages cost ${sum(costs):.6f} ({', '.join(f'${c:.6f}' for c in costs)})"
    return True, f"${sum(costs):.6f} over 4 stages (the write stage ${costs[2]:.6f})"
