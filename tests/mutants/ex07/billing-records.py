"""MUTANT (usage priced as total_tokens x one illustrative price). Exercise 07 (reference solution): SaaS patterns.

Usage-based billing per tenant in SQLite, feature gating by subscription tier on Redis, and a
multi-stage content pipeline whose SEO stage returns structured output.
"""

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import openai
import redis
from openai import OpenAI
from pydantic import BaseModel

from labkit.costs import cost

CHEAP = "gpt-5-mini"
PREMIUM = "gpt-5"

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

    def __init__(self, client: OpenAI, db_path: str, *, model: str = CHEAP, clock: Callable[[], float] = time.time) -> None:
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
        with self.connect() as db:
            row = db.execute("SELECT credits_included - credits_used FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            raise KeyError(f"unknown tenant {tenant_id!r}")
        return int(row[0])

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        """Take the credits, call the API, record the usage; give the credits back if the call fails."""
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
        price = response.usage.total_tokens * 0.002 / 1000  # MUTANT: the lesson's one price per token
        self.record_billable_usage(tenant_id, feature, response.model, units, response.usage.prompt_tokens,
                                   response.usage.completion_tokens, price)
        return {
            "result": response.choices[0].message.content,
            "credits_used": units,
            "remaining_credits": self.remaining_credits(tenant_id),
            "cost_usd": price,
        }

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        with self.connect() as db:
            db.execute(
                "INSERT INTO usage_records (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, iso(self.clock())),
            )

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        """One row per feature for a month ("YYYY-MM"): requests, units and our cost."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT feature, COUNT(*) AS requests, SUM(units) AS units, SUM(cost_usd) AS cost_usd "
                "FROM usage_records WHERE tenant_id = ? AND created_at >= ? AND created_at < ? "
                "GROUP BY feature ORDER BY feature",
                (tenant_id, f"{month}-01", _next_month(month) + "-01"),
            ).fetchall()
        return [dict(r) for r in rows]


def _next_month(month: str) -> str:
    year, mon = map(int, month.split("-"))
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


# ----------------------------------------------------------------------------- 2. tiers

TIER_LIMITS: dict[str, dict[str, Any]] = {
    "free": {"requests_per_day": 10, "model": CHEAP, "max_completion_tokens": 200, "reasoning_effort": "minimal"},
    "pro": {"requests_per_day": 500, "model": PREMIUM, "max_completion_tokens": 1000, "reasoning_effort": "low"},
    "enterprise": {"requests_per_day": 10000, "model": PREMIUM, "max_completion_tokens": 4000, "reasoning_effort": "medium"},
}


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
        limits = TIER_LIMITS.get(user_tier, TIER_LIMITS["free"])
        key, ttl = self._day_key(user_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl)  # relative: Redis expires on its own clock, not on self.clock
        used, _ = pipe.execute()  # INCR first, then compare: two requests can never see the same count
        if used > limits["requests_per_day"]:
            return {"error": "Daily limit reached", "upgrade_url": "/upgrade-to-pro", "limit": limits["requests_per_day"]}
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
            "tier": user_tier if user_tier in TIER_LIMITS else "free",
            "daily_usage": used,
            "daily_limit": limits["requests_per_day"],
        }


# ----------------------------------------------------------------------------- 3. pipeline


class SEOFields(BaseModel):
    """What the SEO stage must return (Structured Outputs guarantees this shape)."""

    title: str
    meta_description: str
    keywords: list[str]


STAGES = ("research", "outline", "write", "seo")
STAGE_MODELS = {"research": CHEAP, "outline": CHEAP, "write": PREMIUM, "seo": CHEAP}
SYSTEM_PROMPTS = {
    "research": "You are a research assistant. Find the key facts and angles on a topic.",
    "outline": "You are a content strategist. Turn research into a clear article outline.",
    "write": "You are a professional writer. Write engaging, accurate articles of about 300 words in Markdown.",
    "seo": "You are an SEO specialist. Write a title under 60 characters, a meta description under 160 characters and 5 to 8 keywords.",
}


def stage_messages(stage: str, topic: str, previous: str = "") -> list[dict[str, str]]:
    """The messages for one stage; `previous` is the text the stage before produced."""
    user = {
        "research": f"Research topic: {topic}. List 8 key points.",
        "outline": f"Topic: {topic}\n\nResearch:\n{previous}\n\nCreate a detailed outline.",
        "write": f"Outline:\n{previous}\n\nWrite the complete article.",
        "seo": f"Article:\n{previous}\n\nGenerate the SEO elements.",
    }[stage]
    return [{"role": "system", "content": SYSTEM_PROMPTS[stage]}, {"role": "user", "content": user}]


class ContentPipeline:
    """Research -> outline -> write -> SEO, cheap models for the cheap stages, with a cost total."""

    def __init__(self, client: OpenAI) -> None:
        self.client = client

    def generate_blog_post(self, topic: str) -> dict[str, Any]:
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


_ = openai  # the SDK's exceptions are what process_request lets through
