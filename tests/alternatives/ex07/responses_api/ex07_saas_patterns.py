"""Exercise 07, another valid way: every call on the Responses API (structured output with
responses.parse and text_format), credits taken with UPDATE ... RETURNING, the daily allowance
counted by a Lua script.
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
    def __init__(self, client: OpenAI, db_path: str, *, model: str = BILLING_MODEL, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.db_path = db_path
        self.model = model
        self.clock = clock

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
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
        with self.connect() as db:
            found = db.execute("SELECT credits_included, credits_used FROM tenants WHERE tenant_id = :t", {"t": tenant_id}).fetchone()
        if not found:
            raise KeyError(tenant_id)
        return found["credits_included"] - found["credits_used"]

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        with self.connect() as db:
            left = db.execute(
                "UPDATE tenants SET credits_used = credits_used + :u "
                "WHERE tenant_id = :t AND credits_included - credits_used >= :u "
                "RETURNING credits_included - credits_used",
                {"u": units, "t": tenant_id},
            ).fetchone()
        if left is None:
            raise OutOfCredits(tenant_id)
        try:
            response = self.client.responses.create(model=self.model, input=list(messages))
        except Exception:
            with self.connect() as db:
                db.execute("UPDATE tenants SET credits_used = credits_used - :u WHERE tenant_id = :t", {"u": units, "t": tenant_id})
            raise
        price = cost(response.usage, response.model).total_usd
        self.record_billable_usage(tenant_id, feature, response.model, units, response.usage.input_tokens,
                                   response.usage.output_tokens, price)
        return {"result": response.output_text, "credits_used": units, "remaining_credits": int(left[0]), "cost_usd": price}

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        row = {"tenant_id": tenant_id, "feature": feature, "model": model, "units": units, "prompt_tokens": prompt_tokens,
               "completion_tokens": completion_tokens, "cost_usd": cost_usd, "created_at": iso(self.clock())}
        with self.connect() as db:
            db.execute(f"INSERT INTO usage_records ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        year, mon = (int(x) for x in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=UTC)
        end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=UTC)
        with self.connect() as db:
            rows = db.execute(
                "SELECT feature, COUNT(*) AS requests, SUM(units) AS units, SUM(cost_usd) AS cost_usd FROM usage_records "
                "WHERE tenant_id = :t AND created_at >= :a AND created_at < :b GROUP BY feature",
                {"t": tenant_id, "a": iso(start.timestamp()), "b": iso(end.timestamp())},
            ).fetchall()
        return [dict(r) for r in rows]


DAILY = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
"""


class FeatureGate:
    def __init__(self, client: OpenAI, redis_client: redis.Redis, *, prefix: str = "gate:",
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.redis = redis_client
        self.prefix = prefix
        self.clock = clock
        self.count = redis_client.register_script(DAILY)

    def process_with_tier_limits(self, user_id: str, user_tier: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        tier = user_tier if user_tier in TIER_LIMITS else DEFAULT_TIER
        limits = TIER_LIMITS[tier]
        day = datetime.fromtimestamp(self.clock(), UTC).date().isoformat()
        key = f"{self.prefix}{day}|{user_id}"
        used = int(self.count(keys=[key], args=[2 * 86400]))
        if used > limits["requests_per_day"]:
            return dict(LIMIT_REACHED, limit=limits["requests_per_day"])
        try:
            response = self.client.responses.create(
                model=limits["model"], input=list(messages), max_output_tokens=limits["max_completion_tokens"],
                reasoning={"effort": limits["reasoning_effort"]},
            )
        except Exception:
            self.redis.decr(key)
            raise
        return {"content": response.output_text, "tier": tier, "daily_usage": used, "daily_limit": limits["requests_per_day"]}


class ContentPipeline:
    def __init__(self, client: OpenAI) -> None:
        self.client = client

    def generate_blog_post(self, topic: str) -> dict[str, Any]:
        costs: dict[str, float] = {}
        outputs: dict[str, str] = {}
        previous = ""
        for stage in STAGES:
            messages = stage_messages(stage, topic, previous)
            if stage == "seo":
                parsed = self.client.responses.parse(model=STAGE_MODELS[stage], input=messages, text_format=SEOFields)
                seo = parsed.output_parsed
                costs[stage] = cost(parsed.usage, parsed.model).total_usd
                break
            response = self.client.responses.create(model=STAGE_MODELS[stage], input=messages)
            costs[stage] = cost(response.usage, response.model).total_usd
            previous = outputs[stage] = response.output_text
        if seo is None:
            raise ValueError("no SEO fields")
        return {"article": outputs["write"], "seo_title": seo.title, "meta_description": seo.meta_description,
                "keywords": list(seo.keywords), "stage_costs": costs, "total_cost": sum(costs.values())}
