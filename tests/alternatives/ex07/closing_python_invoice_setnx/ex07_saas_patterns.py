"""Exercise 07, another valid way: connections with contextlib.closing and `with db:` transactions,
rows as namedtuples (a row factory of its own), credits taken by a conditional UPDATE written as
`credits_included - credits_used >= ?`, the invoice aggregated in Python (defaultdict, math.fsum)
over the month's rows selected by ISO bounds; the daily allowance as SET NX EX then INCR in one
MULTI, keyed by time.gmtime; the pipeline as a generator of (stage, reply) pairs.
"""

import math
import sqlite3
import time
from collections import defaultdict, namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
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
    created_at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_by_tenant_time ON usage_records (tenant_id, created_at);
"""


class OutOfCredits(Exception):
    pass


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _tuples(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Any:
    return namedtuple("Row", [c[0] for c in cursor.description])(*row)


class TenantBilling:
    def __init__(self, client: OpenAI, db_path: str, *, model: str = BILLING_MODEL, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.db_path = db_path
        self.model = model
        self.clock = clock

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.db_path, timeout=10)) as db:
            db.row_factory = _tuples
            db.execute("PRAGMA foreign_keys = ON")
            yield db

    def setup(self) -> None:
        with self.connect() as db:
            db.executescript(SCHEMA)

    def add_tenant(self, tenant_id: str, plan: str, credits: int) -> None:
        with self.connect() as db, db:
            db.execute("INSERT INTO tenants (tenant_id, plan, credits_included) VALUES (?, ?, ?)", (tenant_id, plan, credits))

    def remaining_credits(self, tenant_id: str) -> int:
        with self.connect() as db:
            row = db.execute("SELECT credits_included, credits_used FROM tenants WHERE tenant_id = ?", (tenant_id,)).fetchone()
        if row is None:
            raise KeyError(tenant_id)
        return row.credits_included - row.credits_used

    def _adjust(self, tenant_id: str, delta: int) -> int:
        """Add delta to credits_used if the credits allow it; the number of rows changed."""
        with self.connect() as db, db:
            return db.execute(
                "UPDATE tenants SET credits_used = credits_used + ? WHERE tenant_id = ? AND credits_included - credits_used >= ?",
                (delta, tenant_id, delta),
            ).rowcount

    def process_request(self, tenant_id: str, messages: Sequence[dict[str, Any]], *, feature: str = "ai_content_generation",
                        units: int = 1) -> dict[str, Any]:
        if not self._adjust(tenant_id, units):
            raise OutOfCredits(f"{tenant_id!r} cannot pay {units} credit(s)")
        try:
            response = self.client.chat.completions.create(model=self.model, messages=[dict(m) for m in messages])
        except Exception:
            with self.connect() as db, db:
                db.execute("UPDATE tenants SET credits_used = credits_used - ? WHERE tenant_id = ?", (units, tenant_id))
            raise
        usage = response.usage
        usd = cost(usage, response.model).total_usd
        self.record_billable_usage(tenant_id, feature, response.model, units, usage.prompt_tokens, usage.completion_tokens, usd)
        return {"result": response.choices[0].message.content, "credits_used": units,
                "remaining_credits": self.remaining_credits(tenant_id), "cost_usd": usd}

    def record_billable_usage(self, tenant_id: str, feature: str, model: str, units: int, prompt_tokens: int,
                              completion_tokens: int, cost_usd: float) -> None:
        row = (tenant_id, feature, model, units, prompt_tokens, completion_tokens, cost_usd, iso(self.clock()))
        with self.connect() as db, db:
            db.execute("INSERT INTO usage_records (tenant_id, feature, model, units, prompt_tokens, completion_tokens, "
                       "cost_usd, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

    def invoice(self, tenant_id: str, month: str) -> list[dict[str, Any]]:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        end = (start + timedelta(days=32)).replace(day=1)
        with self.connect() as db:
            rows = db.execute(
                "SELECT feature, units, cost_usd FROM usage_records WHERE tenant_id = ? AND created_at >= ? AND created_at < ?",
                (tenant_id, start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")),
            ).fetchall()
        lines: dict[str, dict[str, Any]] = defaultdict(lambda: {"requests": 0, "units": 0, "costs": []})
        for r in rows:
            line = lines[r.feature]
            line["requests"] += 1
            line["units"] += r.units
            line["costs"].append(r.cost_usd)
        return [{"feature": f, "requests": v["requests"], "units": v["units"], "cost_usd": math.fsum(v["costs"])}
                for f, v in sorted(lines.items())]


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
        now = self.clock()
        key = f"{self.prefix}{time.strftime('%Y%m%d', time.gmtime(now))}|{user_id}"
        until_midnight = 86400 - int(now % 86400)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, nx=True, ex=until_midnight + 600)
            pipe.incr(key)
            _, count = pipe.execute()
        if count > limits["requests_per_day"]:
            return dict(LIMIT_REACHED, limit=limits["requests_per_day"])
        try:
            reply = self.client.chat.completions.create(
                model=limits["model"], messages=list(messages), max_completion_tokens=limits["max_completion_tokens"],
                reasoning_effort=limits["reasoning_effort"])
        except Exception:
            self.redis.decr(key)
            raise
        return {"content": reply.choices[0].message.content, "tier": tier, "daily_usage": count,
                "daily_limit": limits["requests_per_day"]}


class ContentPipeline:
    def __init__(self, client: OpenAI) -> None:
        self.client = client

    def _stages(self, topic: str) -> Iterator[tuple[str, Any]]:
        previous = ""
        for stage in STAGES:
            request = {"model": STAGE_MODELS[stage], "messages": stage_messages(stage, topic, previous)}
            if stage == "seo":
                yield stage, self.client.chat.completions.parse(**request, response_format=SEOFields)
                return
            reply = self.client.chat.completions.create(**request)
            previous = reply.choices[0].message.content or ""
            yield stage, reply

    def generate_blog_post(self, topic: str) -> dict[str, Any]:
        replies = dict(self._stages(topic))
        stage_costs = {stage: cost(r.usage, r.model).total_usd for stage, r in replies.items()}
        seo = replies["seo"].choices[0].message.parsed
        if seo is None:
            raise RuntimeError("the SEO stage refused")
        return {
            "article": replies["write"].choices[0].message.content,
            "seo_title": seo.title,
            "meta_description": seo.meta_description,
            "keywords": list(seo.keywords),
            "stage_costs": stage_costs,
            "total_cost": math.fsum(stage_costs.values()),
        }
