"""Exercise 07, another valid way: named SQL parameters, SELECT changes() after the conditional UPDATE,
the refund in a finally, the invoice by substr(created_at, 1, 7) with TOTAL(); the allowance as INCR then
EXPIRE on the first request, refusals given back; the SEO schema built by hand (strict json_schema) and
validated with pydantic.
"""

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
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
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


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
        with self.connect() as db:
            found = db.execute("SELECT credits_included, credits_used FROM tenants WHERE tenant_id = :t", {"t": tenant_id}).fetchall()
        if not found:
            raise KeyError(tenant_id)
        return found[0]["credits_included"] - found[0]["credits_used"]

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        """Bill one AI request to a tenant.

        Take `units` credits first, in ONE statement that only succeeds if enough are left (raise
        OutOfCredits otherwise, without calling the API); then call the API with self.model and the
        messages; if the call raises, give the credits back and re-raise (no usage row); record the
        usage with its real cost. Return a dict with "result" (the reply), "credits_used",
        "remaining_credits" and "cost_usd".
        """
        with self.connect() as db:
            db.execute("UPDATE tenants SET credits_used = credits_used + :u "
                       "WHERE tenant_id = :t AND credits_included - credits_used >= :u", {"u": units, "t": tenant_id})
            (changed,) = db.execute("SELECT changes()").fetchone()
        if not changed:
            raise OutOfCredits(tenant_id)
        done = False
        try:
            response = self.client.chat.completions.create(model=self.model, messages=[dict(m) for m in messages])
            done = True
        finally:
            if not done:
                with self.connect() as db:
                    db.execute("UPDATE tenants SET credits_used = credits_used - :u WHERE tenant_id = :t", {"u": units, "t": tenant_id})
        usage = response.usage
        usd = cost(usage, response.model).total_usd
        self.record_billable_usage(tenant_id, feature, response.model, units, usage.prompt_tokens, usage.completion_tokens, usd)
        return {"result": response.choices[0].message.content, "credits_used": units,
                "remaining_credits": self.remaining_credits(tenant_id), "cost_usd": usd}

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        """INSERT one usage_records row, created_at = iso(self.clock())."""
        row = {"tenant_id": tenant_id, "feature": feature, "model": model, "units": units, "prompt_tokens": prompt_tokens,
               "completion_tokens": completion_tokens, "cost_usd": cost_usd, "created_at": iso(self.clock())}
        with self.connect() as db:
            db.execute(f"INSERT INTO usage_records ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        """One row per feature for a month ("YYYY-MM"): feature, requests, units, cost_usd."""
        with self.connect() as db:
            rows = db.execute("SELECT feature, COUNT(id), TOTAL(units), TOTAL(cost_usd) FROM usage_records "
                              "WHERE tenant_id = ? AND substr(created_at, 1, 7) = ? GROUP BY feature", (tenant_id, month)).fetchall()
        return [{"feature": f, "requests": n, "units": int(u), "cost_usd": c} for f, n, u, c in rows]


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
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        seconds_left = 86400 - int(now) % 86400
        return f"{self.prefix}daily:{user_id}:{day}", seconds_left + 3600

    def process_with_tier_limits(self, user_id: str, user_tier: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Answer within the tier's limits (unknown tiers get DEFAULT_TIER's).

        Over the daily allowance (per user and UTC day, by self.clock()), return {**LIMIT_REACHED,
        "limit": N} without calling the API. Otherwise call the tier's model with its output limit
        and reasoning effort and return {"content", "tier", "daily_usage", "daily_limit"}. A call
        that raises does not use up the allowance (re-raise it).
        """
        tier = user_tier if user_tier in TIER_LIMITS else DEFAULT_TIER
        cfg = TIER_LIMITS[tier]
        key, ttl = self._day_key(user_id)
        count = self.redis.incr(key)
        if count == 1:
            self.redis.expire(key, ttl)
        if count > cfg["requests_per_day"]:
            self.redis.decr(key)  # only answered requests are counted
            return {**LIMIT_REACHED, "limit": cfg["requests_per_day"]}
        try:
            reply = self.client.chat.completions.create(model=cfg["model"], messages=list(messages),
                                                        max_completion_tokens=cfg["max_completion_tokens"],
                                                        reasoning_effort=cfg["reasoning_effort"])
        except Exception:
            self.redis.decr(key)
            raise
        return {"content": reply.choices[0].message.content, "tier": tier, "daily_usage": count, "daily_limit": cfg["requests_per_day"]}


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
        schema = SEOFields.model_json_schema()
        schema["additionalProperties"] = False
        seo_format = {"type": "json_schema", "json_schema": {"name": "seo_fields", "strict": True, "schema": schema}}
        previous, stage_costs, outputs = "", {}, {}
        for stage in STAGES:
            extra = {"response_format": seo_format} if stage == "seo" else {}
            reply = self.client.chat.completions.create(model=STAGE_MODELS[stage], messages=stage_messages(stage, topic, previous), **extra)
            stage_costs[stage] = cost(reply.usage, reply.model).total_usd
            outputs[stage] = previous = reply.choices[0].message.content or ""
        seo = SEOFields.model_validate_json(outputs["seo"])
        return {"article": outputs["write"], "seo_title": seo.title, "meta_description": seo.meta_description,
                "keywords": list(seo.keywords), "stage_costs": stage_costs, "total_cost": sum(stage_costs.values())}
