"""Exercise 06, another valid way: a sliding-log rate limit on a sorted set in one MULTI pipeline
(the refused request's entry removed again), the budget reservation as a context manager, the
settlement in MULTI with INCRBY on plain keys, the cascade as a for/else, reports read by HSCAN.
"""
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import openai
import redis
from openai import OpenAI

from labkit.costs import cost, estimate

# The models by role: PREMIUM (the default), CHEAP (the budget fallback) and the CASCADE tried in
# order when a model is unavailable; complete()'s default effort and output limit; and the
# contract: which errors another model may answer, when not to cache, the constructor's defaults.
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

#: Money is kept in Redis as integer nano-dollars, so sums are exact.
NANO = 1_000_000_000

BudgetPolicy = Literal["block", "fallback", "alert"]


@dataclass(frozen=True)
class Answer:
    """What complete() returns: the reply, who answered, what it cost, whether it came from the cache."""

    content: str
    model: str
    cost_usd: float
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


class RateLimitExceeded(Exception):
    """This user sent too many requests in the current window."""

    def __init__(self, user_id: str, retry_after: float) -> None:
        super().__init__(f"rate limit exceeded for user {user_id!r}: retry in {retry_after:.0f} s")
        self.user_id = user_id
        self.retry_after = retry_after


class BudgetExceeded(Exception):
    """The monthly budget cannot cover this request."""


def is_retryable(err: Exception) -> bool:
    """True for errors another model may answer: a status in RETRYABLE_STATUSES, a timeout, a lost connection."""
    if isinstance(err, openai.APIStatusError):
        return err.status_code in RETRYABLE_STATUSES
    return isinstance(err, openai.APIConnectionError)


HOLD = """
local total = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[3] == '1' or total + tonumber(ARGV[2]) <= tonumber(ARGV[1]) then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class EnterpriseGPTClient:
    """An OpenAI client with a Redis cache, per-user rate limits, a monthly budget and cost attribution."""

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
        self.prefix = prefix  # put every key you create under this prefix
        self.clock = clock  # use self.clock(), never time.time(), so the checks can move time
        self.alerts: list[str] = []
        self._alert = alert or log.warning

    # ------------------------------------------------------------------ given helpers
    def month(self) -> str:
        """The current month as "YYYY-MM" (UTC), by self.clock()."""
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m")

    def _key(self, month: str, name: str) -> str:
        return f"{self.prefix}{month}:{name}"

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        """The most this request can cost on any model that may answer it (catalog prices)."""
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    def cache_key(self, request: dict[str, Any]) -> str:
        return self.prefix + "c:" + hashlib.md5(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def _rate_key(self, user_id: str) -> str:
        return f"{self.prefix}log:{user_id}"

    def check_rate_limit(self, user_id: str) -> bool:
        import uuid

        key, now = self._rate_key(user_id), self.clock()
        member = f"{now}:{uuid.uuid4().hex}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now - self.window_s)
        pipe.zadd(key, {member: now})
        pipe.zcard(key)
        pipe.expire(key, self.window_s + 5)
        count = pipe.execute()[2]
        if count > self.requests_per_minute:
            self.redis.zrem(key, member)
            return False
        return True

    def _reopens_in(self, user_id: str) -> float:
        oldest = self.redis.zrange(self._rate_key(user_id), 0, 0, withscores=True)
        return max(0.0, oldest[0][1] + self.window_s - self.clock()) if oldest else float(self.window_s)

    @contextmanager
    def _reservation(self, month: str, models: Sequence[str], messages: Sequence[dict[str, Any]], limit: int) -> Iterator[tuple[int, Sequence[str]]]:
        hold = self.redis.register_script(HOLD)
        keys = [self._key(month, "spent"), self._key(month, "held")]
        budget = round(self.monthly_budget_usd * NANO)
        amount = math.ceil(self.max_cost(messages, limit, models) * NANO)
        if not hold(keys=keys, args=[budget, amount, 0]):
            if self.on_budget == "block":
                raise BudgetExceeded(f"over the {month} budget")
            if self.on_budget == "fallback":
                models = (CHEAP,)
                amount = math.ceil(self.max_cost(messages, limit, models) * NANO)
                if not hold(keys=keys, args=[budget, amount, 0]):
                    raise BudgetExceeded(f"over the {month} budget even on {CHEAP}")
            else:
                hold(keys=keys, args=[budget, amount, 1])
                if self.redis.setnx(self._key(month, "alerted"), 1):
                    self.redis.expire(self._key(month, "alerted"), 62 * 86400)
                    self.alerts.append(f"budget exceeded in {month}")
                    self._alert(self.alerts[-1])
        try:
            yield amount, models
        finally:
            self.redis.decrby(keys[1], amount)

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
        request: dict[str, Any] = {"model": model, "messages": list(messages), "reasoning_effort": reasoning_effort,
                                   "max_completion_tokens": max_completion_tokens}
        request.update(params)
        ttl = self.cache_ttl if cache_ttl is None else cache_ttl
        use_cache = ttl > 0 and not ("temperature" in params and params["temperature"] > NO_CACHE_ABOVE)
        if use_cache and (raw := self.redis.get(self.cache_key(request))) is not None:
            return Answer(**{**json.loads(raw), "cost_usd": 0.0, "cached": True})
        if not self.check_rate_limit(user_id):
            raise RateLimitExceeded(user_id, self._reopens_in(user_id))
        month = self.month()
        chain = CASCADE[CASCADE.index(model):] if model in CASCADE else (model,)
        with self._reservation(month, chain, messages, max_completion_tokens) as (_, chain):
            for candidate in chain:
                try:
                    response = self.client.chat.completions.create(**{**request, "model": candidate})
                    break
                except openai.APIError as err:
                    if not is_retryable(err) or candidate == chain[-1]:
                        raise
            else:
                raise AssertionError("unreachable: the last model's error is raised in the loop")
            price = cost(response.usage, response.model).total_usd
            nano = round(price * NANO)
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(self._key(month, "spent"), nano)
                pipe.hincrby(self._key(month, "users"), user_id, nano)
                pipe.hincrby(self._key(month, "features"), feature, nano)
                pipe.execute()
        answer = Answer(response.choices[0].message.content or "", response.model, price,
                        response.usage.prompt_tokens, response.usage.completion_tokens)
        if use_cache:
            self.redis.set(self.cache_key({**request, "model": candidate}), json.dumps(asdict(answer)), ex=ttl)
        return answer

    def spend(self, month: str | None = None) -> float:
        return int(self.redis.get(self._key(month or self.month(), "spent")) or 0) / NANO

    def _report(self, name: str, month: str | None) -> dict[str, float]:
        return {k.decode(): int(v) / NANO for k, v in self.redis.hscan_iter(self._key(month or self.month(), name))}

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        return self._report("users", month)

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        return self._report("features", month)
