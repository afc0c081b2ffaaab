"""Exercise 07, another valid way: Chat Completions; credits checked and taken inside one
BEGIN IMMEDIATE transaction (SQLite's write lock makes SELECT-then-UPDATE safe there); the invoice
matches the month with strftime; the allowance is INCR + EXPIRE in one MULTI; the pipeline is a
table of stages.
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
            (left,) = db.execute("SELECT credits_included - credits_used FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone() or (None,)
        if left is None:
            raise KeyError(tenant_id)
        return int(left)

    def _adjust(self, tenant_id: str, units: int, check: bool) -> int | None:
        """Add units to credits_used under the write lock; None if check and not enough are left."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT credits_included, credits_used FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
                if row is None or (check and row["credits_used"] + units > row["credits_included"]):
                    db.execute("ROLLBACK")
                    return None
                db.execute("UPDATE tenants SET credits_used = ? WHERE tenant_id = ?", (row["credits_used"] + units, tenant_id))
                db.execute("COMMIT")
                return int(row["credits_included"] - row["credits_used"] - units)
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        left = self._adjust(tenant_id, units, check=True)
        if left is None:
            raise OutOfCredits(f"{tenant_id}: not enough credits")
        try:
            response = self.client.chat.completions.create(model=self.model, messages=list(messages))
        except BaseException:
            self._adjust(tenant_id, -units, check=False)
            raise
        usage = response.usage
        price = cost(usage, response.model).total_usd
        self.record_billable_usage(tenant_id, feature, response.model, units, usage.prompt_tokens, usage.completion_tokens, price)
        return {"result": response.choices[0].message.content, "credits_used": units, "remaining_credits": left, "cost_usd": price}

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        with self.connect() as db:
            db.execute("INSERT INTO usage_records (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, "
                       "created_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?",
                       (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, iso(self.clock())))

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        with self.connect() as db:
            rows = db.execute(
                "SELECT feature, COUNT(*), TOTAL(units), TOTAL(cost_usd) FROM usage_records "
                "WHERE tenant_id = ? AND strftime('%Y-%m', created_at) = ? GROUP BY feature",
                (tenant_id, month),
            ).fetchall()
        return [{"feature": f, "requests": n, "units": int(u), "cost_usd": c} for f, n, u, c in rows]


class FeatureGate:
    def __init__(self, client: OpenAI, redis_client: redis.Redis, *, prefix: str = "gate:",
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.redis = redis_client
        self.prefix = prefix
        self.clock = clock

    def process_with_tier_limits(self, user_id: str, user_tier: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        tier = user_tier if user_tier in TIER_LIMITS else DEFAULT_TIER
        limits = TIER_LIMITS[tier]
        key = f"{self.prefix}{user_id}@{int(self.clock() // 86400)}"
        with self.redis.pipeline(transaction=True) as pipe:
            used = pipe.incr(key).expire(key, 90_000).execute()[0]
        if used > limits["requests_per_day"]:
            return {**LIMIT_REACHED, "limit": limits["requests_per_day"]}
        try:
            response = self.client.chat.completions.create(
                model=limits["model"], messages=list(messages), reasoning_effort=limits["reasoning_effort"],
                max_completion_tokens=limits["max_completion_tokens"],
            )
        except BaseException:
            self.redis.decr(key)
            raise
        return {"content": response.choices[0].message.content, "tier": tier, "daily_usage": used,
                "daily_limit": limits["requests_per_day"]}


class ContentPipeline:
    def __init__(self, client: OpenAI) -> None:
        self.client = client

    def _text(self, stage: str, topic: str, previous: str) -> tuple[str, float]:
        r = self.client.chat.completions.create(model=STAGE_MODELS[stage], messages=stage_messages(stage, topic, previous))
        return r.choices[0].message.content or "", cost(r.usage, r.model).total_usd

    def _seo(self, stage: str, topic: str, previous: str) -> tuple[SEOFields, float]:
        r = self.client.chat.completions.parse(model=STAGE_MODELS[stage], messages=stage_messages(stage, topic, previous),
                                               response_format=SEOFields)
        parsed = r.choices[0].message.parsed
        if parsed is None:
            raise ValueError("the SEO stage refused")
        return parsed, cost(r.usage, r.model).total_usd

    def generate_blog_post(self, topic: str) -> dict[str, Any]:
        results: dict[str, Any] = {}
        costs: dict[str, float] = {}
        previous = ""
        for stage in STAGES:
            step = self._seo if stage == "seo" else self._text
            results[stage], costs[stage] = step(stage, topic, previous)
            previous = results[stage] if isinstance(results[stage], str) else previous
        seo: SEOFields = results["seo"]
        return {"article": results["write"], "seo_title": seo.title, "meta_description": seo.meta_description,
                "keywords": seo.keywords, "stage_costs": costs, "total_cost": sum(costs.values())}
