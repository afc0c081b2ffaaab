"""Exercise 07, another valid way: credits taken by a conditional UPDATE read back through
total_changes, refunded in a finally guarded by a success flag; the invoice bounded with SQLite's
julianday(?, '+1 month') date arithmetic; the daily allowance as one Redis hash per UTC day (a field
per user, HINCRBY, the hash expiring after the day); the text stages on the Responses API and the SEO
stage on Chat Completions' parse(); the tier echoed as the caller gave it.
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
            for row in db.execute("SELECT credits_included - credits_used AS left_over FROM tenants WHERE tenant_id = ?", [tenant_id]):
                return int(row["left_over"])
        raise KeyError(tenant_id)

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        with self.connect() as db:
            before = db.total_changes
            db.execute("UPDATE tenants SET credits_used = credits_used + :units "
                       "WHERE tenant_id = :tenant AND credits_used + :units <= credits_included",
                       {"units": units, "tenant": tenant_id})
            if db.total_changes == before:
                raise OutOfCredits(tenant_id)
        answered = False
        try:
            response = self.client.chat.completions.create(model=self.model, messages=list(messages))
            answered = True
        finally:
            if not answered:
                with self.connect() as db:
                    db.execute("UPDATE tenants SET credits_used = credits_used - :units WHERE tenant_id = :tenant",
                               {"units": units, "tenant": tenant_id})
        price = cost(response.usage, response.model).total_usd
        self.record_billable_usage(tenant_id, feature, response.model, units, response.usage.prompt_tokens,
                                   response.usage.completion_tokens, price)
        return {"result": response.choices[0].message.content, "credits_used": units,
                "remaining_credits": self.remaining_credits(tenant_id), "cost_usd": price}

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        values = {"tenant_id": tenant_id, "feature": feature, "model": model, "units": units, "prompt_tokens": prompt_tokens,
                  "completion_tokens": completion_tokens, "cost_usd": cost_usd, "created_at": iso(self.clock())}
        columns = ", ".join(values)
        with self.connect() as db:
            db.execute(f"INSERT INTO usage_records ({columns}) VALUES ({', '.join(':' + c for c in values)})", values)

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        sql = """
            SELECT feature, COUNT(*) AS requests, SUM(units) AS units, SUM(cost_usd) AS cost_usd
            FROM usage_records
            WHERE tenant_id = :tenant
              AND julianday(created_at) >= julianday(:first)
              AND julianday(created_at) < julianday(:first, '+1 month')
            GROUP BY feature
            ORDER BY SUM(cost_usd) DESC
        """
        with self.connect() as db:
            return [dict(r) for r in db.execute(sql, {"tenant": tenant_id, "first": f"{month}-01"})]


class FeatureGate:
    def __init__(self, client: OpenAI, redis_client: redis.Redis, *, prefix: str = "gate:",
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.redis = redis_client
        self.prefix = prefix
        self.clock = clock

    def process_with_tier_limits(self, user_id: str, user_tier: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        limits = TIER_LIMITS.get(user_tier) or TIER_LIMITS[DEFAULT_TIER]
        now = self.clock()
        day = datetime.fromtimestamp(now, UTC).date().isoformat()
        key = f"{self.prefix}day:{day}"
        pipe = self.redis.pipeline()
        pipe.hincrby(key, user_id, 1)
        pipe.expire(key, 86400 - int(now) % 86400 + 3600)
        count = int(pipe.execute()[0])
        if count > limits["requests_per_day"]:
            return {"error": LIMIT_REACHED["error"], "upgrade_url": LIMIT_REACHED["upgrade_url"], "limit": limits["requests_per_day"]}
        try:
            response = self.client.chat.completions.create(
                model=limits["model"], messages=list(messages),
                max_completion_tokens=limits["max_completion_tokens"], reasoning_effort=limits["reasoning_effort"])
        except BaseException:
            self.redis.hincrby(key, user_id, -1)
            raise
        return {"content": response.choices[0].message.content, "tier": user_tier, "daily_usage": count,
                "daily_limit": limits["requests_per_day"]}


class ContentPipeline:
    def __init__(self, client: OpenAI) -> None:
        self.client = client

    def generate_blog_post(self, topic: str) -> dict[str, Any]:
        stage_costs: dict[str, float] = {}
        previous = ""
        texts: dict[str, str] = {}
        for stage in STAGES[:3]:
            messages = stage_messages(stage, topic, previous)
            response = self.client.responses.create(model=STAGE_MODELS[stage], instructions=messages[0]["content"],
                                                    input=messages[1]["content"])
            stage_costs[stage] = cost(response.usage, response.model).total_usd
            texts[stage] = previous = response.output_text
        seo_call = self.client.chat.completions.parse(model=STAGE_MODELS["seo"], messages=stage_messages("seo", topic, texts["write"]),
                                                      response_format=SEOFields)
        stage_costs["seo"] = cost(seo_call.usage, seo_call.model).total_usd
        seo = seo_call.choices[0].message.parsed
        if seo is None:
            raise ValueError("no SEO fields: " + str(seo_call.choices[0].message.refusal))
        return {"article": texts["write"], "seo_title": seo.title, "meta_description": seo.meta_description,
                "keywords": seo.keywords, "stage_costs": stage_costs, "total_cost": sum(stage_costs.values())}
