"""Exercise 07: SaaS patterns (the lesson's three advanced use cases).

1. TenantBilling: usage-based billing per tenant in SQLite (one credit per generation).
2. FeatureGate: what each subscription tier may do, with a daily allowance counted in Redis.
3. ContentPipeline: research -> outline -> write -> SEO, with the SEO fields as structured output.

Edit the TODOs, then run `labkit check ex07` (or the last cell of notebooks/07_saas_patterns.ipynb).
Keep the names and the schema given here. The tiers, the pipeline's models and prompts and the SEO
fields come from labkit/course/ex07.py: the checks and the recordings use the same ones. Chat
Completions or the Responses API: either is fine. The checks use tenant ids and feature names with
quotes, SQL metacharacters and unicode, script failed calls, and compare the rows in your database
with the reference's.
"""

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import redis
from openai import OpenAI

from labkit.costs import cost
# The model tenants are billed for, the tiers and the pipeline's stages, models, prompts and SEO fields.
from labkit.course.ex07 import (
    BILLING_MODEL,
    DEFAULT_TIER,
    LIMIT_REACHED,
    STAGE_MODELS,
    STAGES,
    TIER_LIMITS,
    SEOFields,
    stage_messages,
)

# ----------------------------------------------------------------------------- 1. billing

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    tenant_id        TEXT PRIMARY KEY,
    plan             TEXT NOT NULL,
    credits_included INTEGER NOT NULL CHECK (credits_included >= 0),
    credits_used     INTEGER NOT NULL DEFAULT 0 CHECK (credits_used >= 0)
);
CREATE TABLE IF NOT EXISTS usage_records (
    id                INTEGER PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (tenant_id),
    feature           TEXT NOT NULL,
    model             TEXT NOT NULL,
    units             INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd          REAL NOT NULL,
    created_at        TEXT NOT NULL            -- ISO 8601, UTC
);
CREATE INDEX IF NOT EXISTS usage_by_tenant_time ON usage_records (tenant_id, created_at);
"""


class OutOfCredits(Exception):
    """The tenant has no credits left for this request."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class TenantBilling:
    """AI requests billed per tenant: one credit per generation, every request recorded in SQLite."""

    def __init__(self, client: OpenAI, db_path: str, *, model: str = BILLING_MODEL, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.db_path = db_path
        self.model = model
        self.clock = clock

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A new connection per use (as each web worker has its own), in autocommit mode, closed after."""
        db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        try:
            yield db
        finally:
            db.close()

    def setup(self) -> None:
        with self.connect() as db:
            db.executescript(SCHEMA)

    def add_tenant(self, tenant_id: str, plan: str, credits: int) -> None:
        with self.connect() as db:
            db.execute("INSERT INTO tenants (tenant_id, plan, credits_included) VALUES (?, ?, ?)", (tenant_id, plan, credits))

    def remaining_credits(self, tenant_id: str) -> int:
        """credits_included - credits_used for a tenant (KeyError if unknown)."""
        ### BEGIN SOLUTION: read the tenant's remaining credits
        ### TODO: one SELECT.
        with self.connect() as db:
            row = db.execute("SELECT credits_included - credits_used FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown tenant {tenant_id!r}")
        return int(row[0])
        ### END SOLUTION

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        """Bill one AI request to a tenant.

        Take `units` credits first, in ONE statement that only succeeds if enough are left (raise
        OutOfCredits otherwise, without calling the API); then call the API with self.model and the
        messages; if the call raises, give the credits back and re-raise (no usage row); record the
        usage with its real cost. Return a dict with "result" (the reply), "credits_used",
        "remaining_credits" and "cost_usd".
        """
        ### BEGIN SOLUTION: bill the request
        ### TODO: many web workers run this at once: SELECT-then-UPDATE would let them all through.
        with self.connect() as db:
            taken = db.execute(
                "UPDATE tenants SET credits_used = credits_used + ? "
                "WHERE tenant_id = ? AND credits_used + ? <= credits_included",
                (units, tenant_id, units),
            ).rowcount
        if taken != 1:
            raise OutOfCredits(f"tenant {tenant_id!r} has fewer than {units} credit(s) left")
        try:
            response = self.client.chat.completions.create(model=self.model, messages=list(messages))
        except BaseException:
            with self.connect() as db:
                db.execute("UPDATE tenants SET credits_used = credits_used - ? WHERE tenant_id = ?", (units, tenant_id))
            raise
        price = cost(response.usage, response.model).total_usd
        self.record_billable_usage(tenant_id, feature, response.model, units, response.usage.prompt_tokens,
                                   response.usage.completion_tokens, price)
        return {
            "result": response.choices[0].message.content,
            "credits_used": units,
            "remaining_credits": self.remaining_credits(tenant_id),
            "cost_usd": price,
        }
        ### END SOLUTION

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        """INSERT one usage_records row, created_at = iso(self.clock())."""
        ### BEGIN SOLUTION: insert the usage record
        ### TODO
        with self.connect() as db:
            db.execute(
                "INSERT INTO usage_records (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, iso(self.clock())),
            )
        ### END SOLUTION

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        """One row per feature for a month ("YYYY-MM"): feature, requests, units, cost_usd (the exact sum, not rounded)."""
        ### BEGIN SOLUTION: write the invoice query
        ### TODO: GROUP BY feature, only rows created in that month (_next_month helps).
        with self.connect() as db:
            rows = db.execute(
                "SELECT feature, COUNT(*) AS requests, SUM(units) AS units, SUM(cost_usd) AS cost_usd "
                "FROM usage_records WHERE tenant_id = ? AND created_at >= ? AND created_at < ? "
                "GROUP BY feature ORDER BY feature",
                (tenant_id, f"{month}-01", _next_month(month) + "-01"),
            ).fetchall()
        return [dict(r) for r in rows]
        ### END SOLUTION


def _next_month(month: str) -> str:
    year, mon = map(int, month.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


# ----------------------------------------------------------------------------- 2. tiers
# TIER_LIMITS[tier] (labkit/course/ex07.py) gives "requests_per_day", "model",
# "max_completion_tokens" and "reasoning_effort" for "free", "pro" and "enterprise"; an unknown
# tier gets DEFAULT_TIER's; LIMIT_REACHED is what a user over the allowance gets back.

class FeatureGate:
    """Different AI capabilities per subscription tier, with a daily request allowance in Redis."""

    def __init__(self, client: OpenAI, redis_client: redis.Redis, *, prefix: str = "gate:",
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.redis = redis_client
        self.prefix = prefix
        self.clock = clock

    def _day_key(self, user_id: str) -> tuple[str, int]:
        """The user's counter for today (UTC) and its time to live: the rest of the day plus an hour."""
        now = self.clock()
        day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")
        seconds_left = 86400 - int(now) % 86400
        return f"{self.prefix}daily:{user_id}:{day}", seconds_left + 3600

    def process_with_tier_limits(self, user_id: str, user_tier: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Answer within the tier's limits (unknown tiers get DEFAULT_TIER's).

        Over the daily allowance (per user and UTC day, by self.clock()), return {**LIMIT_REACHED,
        "limit": N} without calling the API. Otherwise call the tier's model with its output limit
        and reasoning effort and return {"content", "tier", "daily_usage", "daily_limit"}. A call
        that raises does not use up the allowance (re-raise it).
        """
        ### BEGIN SOLUTION: gate the request by tier
        ### TODO: the lesson reads the count, calls the API, then increments: 8 concurrent requests
        ### all see the same count. Count first (INCR returns the new value atomically), then decide.
        limits = TIER_LIMITS.get(user_tier, TIER_LIMITS[DEFAULT_TIER])
        key, ttl = self._day_key(user_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl)  # relative: Redis expires on its own clock, not on self.clock
        used, _ = pipe.execute()  # INCR first, then compare: two requests can never see the same count
        if used > limits["requests_per_day"]:
            return {**LIMIT_REACHED, "limit": limits["requests_per_day"]}
        try:
            response = self.client.chat.completions.create(
                model=limits["model"], messages=list(messages),
                max_completion_tokens=limits["max_completion_tokens"], reasoning_effort=limits["reasoning_effort"],
            )
        except BaseException:
            self.redis.decr(key)  # a failed call does not use up the allowance
            raise
        return {
            "content": response.choices[0].message.content,
            "tier": user_tier if user_tier in TIER_LIMITS else DEFAULT_TIER,
            "daily_usage": used,
            "daily_limit": limits["requests_per_day"],
        }
        ### END SOLUTION


# ----------------------------------------------------------------------------- 3. pipeline
# labkit/course/ex07.py gives STAGES (in order), STAGE_MODELS[stage], stage_messages(stage, topic,
# previous_text) and SEOFields, the pydantic model the SEO stage must return.


class ContentPipeline:
    """Research -> outline -> write -> SEO, cheap models for the cheap stages, with a cost total."""

    def __init__(self, client: OpenAI) -> None:
        self.client = client

    def generate_blog_post(self, topic: str) -> dict[str, Any]:
        """Run the four stages; return "article", "seo_title", "meta_description", "keywords",
        "stage_costs" (USD per stage) and "total_cost"."""
        ### BEGIN SOLUTION: run the pipeline
        ### TODO: each stage on STAGE_MODELS[stage] with stage_messages(stage, topic, previous_text);
        ### the SEO stage with client.chat.completions.parse(..., response_format=SEOFields).
        costs: dict[str, float] = {}
        text = ""
        for stage in STAGES[:-1]:
            response = self.client.chat.completions.create(
                model=STAGE_MODELS[stage], messages=stage_messages(stage, topic, text))
            costs[stage] = cost(response.usage, response.model).total_usd
            text = response.choices[0].message.content or ""
        article = text
        parsed = self.client.chat.completions.parse(
            model=STAGE_MODELS["seo"], messages=stage_messages("seo", topic, article), response_format=SEOFields)
        costs["seo"] = cost(parsed.usage, parsed.model).total_usd
        seo = parsed.choices[0].message.parsed
        if seo is None:
            raise ValueError(f"the SEO stage returned no structured output (refusal: {parsed.choices[0].message.refusal!r})")
        return {
            "article": article,
            "seo_title": seo.title,
            "meta_description": seo.meta_description,
            "keywords": seo.keywords,
            "stage_costs": costs,
            "total_cost": sum(costs.values()),
        }
        ### END SOLUTION
