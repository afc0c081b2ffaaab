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
        # TODO: one SELECT.
        raise NotImplementedError("read the tenant's remaining credits")

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        """Bill one AI request to a tenant.

        Take `units` credits first, in ONE statement that only succeeds if enough are left (raise
        OutOfCredits otherwise, without calling the API); then call the API with self.model and the
        messages; if the call raises, give the credits back and re-raise (no usage row); record the
        usage with its real cost. Return a dict with "result" (the reply), "credits_used",
        "remaining_credits" and "cost_usd".
        """
        # TODO: many web workers run this at once: SELECT-then-UPDATE would let them all through.
        raise NotImplementedError("bill the request")

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        """INSERT one usage_records row, created_at = iso(self.clock())."""
        # TODO
        raise NotImplementedError("insert the usage record")

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        """One row per feature for a month ("YYYY-MM"): feature, requests, units, cost_usd (the exact sum, not rounded)."""
        # TODO: GROUP BY feature, only rows created in that month (_next_month helps).
        raise NotImplementedError("write the invoice query")


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
        # TODO: the lesson reads the count, calls the API, then increments: 8 concurrent requests
        # all see the same count. Count first (INCR returns the new value atomically), then decide.
        raise NotImplementedError("gate the request by tier")


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
        # TODO: each stage on STAGE_MODELS[stage] with stage_messages(stage, topic, previous_text);
        # the SEO stage with client.chat.completions.parse(..., response_format=SEOFields).
        raise NotImplementedError("run the pipeline")

# labkit starter 857261685afe (made from solutions/ex07_saas_patterns.py by `labkit exercises build`)
