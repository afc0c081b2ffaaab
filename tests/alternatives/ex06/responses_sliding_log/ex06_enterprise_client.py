"""Exercise 06, another valid way: the Responses API, small classes, a sliding-log rate limiter and
one hash of books per month (spent, reserved, and each user's and feature's share as fields).
"""

import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import openai
import redis
from openai import OpenAI

from labkit.costs import cost, estimate
from labkit.course.ex06 import (
    CACHE_TTL,
    CASCADE,
    CHEAP,
    EFFORT,
    MAX_COMPLETION_TOKENS,
    MONTHLY_BUDGET_USD,
    NO_CACHE_ABOVE,
    PREMIUM,
    REQUESTS_PER_MINUTE,
    RETRYABLE_STATUSES,
    WINDOW_S,
)
from labkit.tokens import count_tokens

log = logging.getLogger(__name__)
NANO = 1_000_000_000
BudgetPolicy = Literal["block", "fallback", "alert"]


@dataclass(frozen=True)
class Answer:
    content: str
    model: str
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


class RateLimitExceeded(Exception):
    def __init__(self, user_id: str, retry_after: float) -> None:
        super().__init__(f"rate limit exceeded for user {user_id!r}: retry in {retry_after:.0f} s")
        self.user_id = user_id
        self.retry_after = retry_after


class BudgetExceeded(Exception):
    pass


def is_retryable(err: Exception) -> bool:
    if isinstance(err, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return getattr(err, "status_code", None) in RETRYABLE_STATUSES


SLIDING_LOG = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
return 'ok'
"""

RESERVE = """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local amount = tonumber(ARGV[2])
if spent + held + amount > tonumber(ARGV[1]) and ARGV[3] ~= '1' then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved', amount)
return 1
"""

SETTLE = """
redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'user:' .. ARGV[3], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'feature:' .. ARGV[4], ARGV[2])
return 1
"""


class Limiter:
    """A sliding log per user: a sorted set of request times within the last window."""

    def __init__(self, r: redis.Redis, prefix: str, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.script = r.register_script(SLIDING_LOG)
        self.prefix, self.limit, self.window, self.clock = prefix, limit, window, clock

    def take(self, user_id: str) -> float:
        """0 when the request may go, else the seconds until it may."""
        got = self.script(keys=[f"{self.prefix}log:{user_id}"], args=[self.clock(), self.window, self.limit, uuid.uuid4().hex])
        text = got.decode() if isinstance(got, bytes) else str(got)
        return 0.0 if text == "ok" else max(float(text), 0.001)


class Books:
    """A month's money in one hash: spent, reserved, user:<id> and feature:<name> fields."""

    def __init__(self, r: redis.Redis, prefix: str) -> None:
        self.r, self.prefix = r, prefix
        self.reserve_script = r.register_script(RESERVE)
        self.settle_script = r.register_script(SETTLE)

    def key(self, month: str) -> str:
        return f"{self.prefix}books:{month}"

    def reserve(self, month: str, budget: int, amount: int, force: bool = False) -> bool:
        return bool(self.reserve_script(keys=[self.key(month)], args=[budget, amount, "1" if force else "0"]))

    def release(self, month: str, amount: int) -> None:
        self.r.hincrby(self.key(month), "reserved", -amount)

    def settle(self, month: str, held: int, spent: int, user: str, feature: str) -> None:
        self.settle_script(keys=[self.key(month)], args=[held, spent, user, feature])

    def shares(self, month: str, kind: str) -> dict[str, float]:
        head = f"{kind}:".encode()
        raw = self.r.hgetall(self.key(month))
        return {k[len(head):].decode(): int(v) / NANO for k, v in raw.items() if k.startswith(head)}

    def spent(self, month: str) -> float:
        return int(self.r.hget(self.key(month), "spent") or 0) / NANO


class EnterpriseGPTClient:
    def __init__(
        self,
        client: OpenAI,
        redis_client: redis.Redis,
        *,
        monthly_budget_usd: float = MONTHLY_BUDGET_USD,
        on_budget: BudgetPolicy = "fallback",
        requests_per_minute: int = REQUESTS_PER_MINUTE,
        window_s: int = WINDOW_S,
        cache_ttl: int = CACHE_TTL,
        prefix: str = "ent:",
        clock: Callable[[], float] = time.time,
        alert: Callable[[str], None] | None = None,
    ) -> None:
        if on_budget not in ("block", "fallback", "alert"):
            raise ValueError("on_budget must be 'block', 'fallback' or 'alert'")
        self.client = client
        self.redis = redis_client
        self.monthly_budget_usd = monthly_budget_usd
        self.on_budget = on_budget
        self.requests_per_minute = requests_per_minute
        self.window_s = window_s
        self.cache_ttl = cache_ttl
        self.prefix = prefix
        self.clock = clock
        self.alerts: list[str] = []
        self._alert = alert or log.warning
        self.limiter = Limiter(redis_client, prefix, requests_per_minute, window_s, clock)
        self.books = Books(redis_client, prefix)

    def month(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m")

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    def cache_key(self, request: dict[str, Any]) -> str:
        digest = hashlib.blake2b(json.dumps(request, sort_keys=True, default=str).encode(), digest_size=20).hexdigest()
        return f"{self.prefix}answer:{digest}"

    def check_rate_limit(self, user_id: str) -> bool:
        return self.limiter.take(user_id) == 0.0

    def _ask(self, model: str, request: dict[str, Any]) -> Any:
        params = {k: v for k, v in request.items() if k not in ("model", "messages", "reasoning_effort", "max_completion_tokens")}
        if "verbosity" in params:
            params["text"] = {"verbosity": params.pop("verbosity")}
        return self.client.responses.create(
            model=model, input=request["messages"], reasoning={"effort": request["reasoning_effort"]},
            max_output_tokens=request["max_completion_tokens"], **params,
        )

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        user_id: str,
        feature: str = "chat",
        model: str = PREMIUM,
        reasoning_effort: str = EFFORT,
        max_completion_tokens: int = MAX_COMPLETION_TOKENS,
        cache_ttl: int | None = None,
        **params: Any,
    ) -> Answer:
        ttl = self.cache_ttl if cache_ttl is None else cache_ttl
        request = {"model": model, "messages": list(messages), "reasoning_effort": reasoning_effort,
                   "max_completion_tokens": max_completion_tokens, **params}
        temperature = params.get("temperature")
        use_cache = ttl > 0 and not (temperature is not None and temperature > NO_CACHE_ABOVE)
        if use_cache:
            stored = self.redis.get(self.cache_key(request))
            if stored:
                return Answer(**{**json.loads(stored), "cost_usd": 0.0, "cached": True})
        wait = self.limiter.take(user_id)
        if wait:
            raise RateLimitExceeded(user_id, wait)
        month, budget = self.month(), int(self.monthly_budget_usd * NANO)
        models = list(CASCADE[CASCADE.index(model):]) if model in CASCADE else [model]
        held = math.ceil(self.max_cost(messages, max_completion_tokens, models) * NANO)
        if not self.books.reserve(month, budget, held):
            if self.on_budget == "block":
                raise BudgetExceeded(f"budget for {month} reached")
            if self.on_budget == "fallback":
                models = [CHEAP]
                held = math.ceil(self.max_cost(messages, max_completion_tokens, models) * NANO)
                if not self.books.reserve(month, budget, held):
                    raise BudgetExceeded(f"budget for {month} reached, even for {CHEAP}")
            else:
                self.books.reserve(month, budget, held, force=True)
                if self.redis.set(f"{self.prefix}alerted:{month}", 1, nx=True, ex=3_000_000):
                    self.alerts.append(f"AI budget reached for {month}")
                    self._alert(self.alerts[-1])
        try:
            response, used = self._first_that_answers(models, request)
        except BaseException:
            self.books.release(month, held)
            raise
        price = cost(response.usage, response.model).total_usd
        self.books.settle(month, held, round(price * NANO), user_id, feature)
        answer = Answer(response.output_text, response.model, price, response.usage.input_tokens, response.usage.output_tokens)
        if use_cache:
            self.redis.set(self.cache_key({**request, "model": used}), json.dumps(asdict(answer)), ex=ttl)
        return answer

    def _first_that_answers(self, models: list[str], request: dict[str, Any]) -> tuple[Any, str]:
        error: Exception | None = None
        for model in models:
            try:
                return self._ask(model, request), model
            except Exception as err:
                if not is_retryable(err):
                    raise
                error = err
        raise error  # type: ignore[misc]

    def spend(self, month: str | None = None) -> float:
        return self.books.spent(month or self.month())

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        return self.books.shares(month or self.month(), "user")

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        return self.books.shares(month or self.month(), "feature")
