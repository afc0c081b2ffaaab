"""Exercise 06, another valid way: money as float dollars with INCRBYFLOAT in one hash of books per
month, reserved and settled by Lua scripts; the rate limit as SET NX EX then INCR; cached answers
stored as Redis hashes; the cascade walked by recursion.
"""
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    status = getattr(err, "status_code", None)
    if status is None:
        return isinstance(err, (openai.APITimeoutError, openai.APIConnectionError))
    return isinstance(err, openai.APIStatusError) and status in RETRYABLE_STATUSES


RESERVE = """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
if ARGV[3] == 'force' or spent + held + tonumber(ARGV[2]) <= tonumber(ARGV[1]) + 1e-12 then
  redis.call('HINCRBYFLOAT', KEYS[1], 'held', ARGV[2])
  return 1
end
return 0
"""

SETTLE = """
redis.call('HINCRBYFLOAT', KEYS[1], 'held', -tonumber(ARGV[1]))
redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[2])
redis.call('HINCRBYFLOAT', KEYS[2], ARGV[3], ARGV[2])
redis.call('HINCRBYFLOAT', KEYS[3], ARGV[4], ARGV[2])
return 1
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
        body = json.dumps(request, sort_keys=True, default=str)
        return self.prefix + "answer:" + hashlib.blake2b(body.encode("utf-8"), digest_size=20).hexdigest()

    def check_rate_limit(self, user_id: str) -> bool:
        window = int(self.clock()) // self.window_s
        key = f"{self.prefix}rate:{window}:{hashlib.sha1(user_id.encode()).hexdigest()}"
        self.redis.set(key, 0, ex=self.window_s * 2, nx=True)
        return self.redis.incr(key) <= self.requests_per_minute

    def _books(self, month: str) -> list[str]:
        return [self._key(month, "books"), self._key(month, "users"), self._key(month, "features")]

    def _hold(self, month: str, dollars: float, force: bool = False) -> bool:
        script = self.redis.register_script(RESERVE)
        return bool(script(keys=self._books(month)[:1], args=[self.monthly_budget_usd, repr(dollars), "force" if force else ""]))

    def _ask(self, models: Sequence[str], request: dict[str, Any]) -> Any:
        try:
            return self.client.chat.completions.create(**{**request, "model": models[0]})
        except openai.APIError as err:
            if len(models) == 1 or not is_retryable(err):
                raise
            return self._ask(models[1:], request)

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
        ttl = cache_ttl if cache_ttl is not None else self.cache_ttl
        request = dict(model=model, messages=[dict(m) for m in messages], reasoning_effort=reasoning_effort,
                       max_completion_tokens=max_completion_tokens, **params)
        temperature = params.get("temperature")
        cacheable = ttl > 0 and (temperature is None or temperature <= NO_CACHE_ABOVE)
        if cacheable:
            stored = self.redis.hgetall(self.cache_key(request))
            if stored:
                f = {k.decode(): v.decode() for k, v in stored.items()}
                return Answer(f["content"], f["model"], 0.0, int(f["prompt_tokens"]), int(f["completion_tokens"]), cached=True)
        if not self.check_rate_limit(user_id):
            raise RateLimitExceeded(user_id, self.window_s - (self.clock() % self.window_s))
        month = self.month()
        models: Sequence[str] = CASCADE[CASCADE.index(model):] if model in CASCADE else [model]
        held = self.max_cost(messages, max_completion_tokens, models)
        if not self._hold(month, held):
            if self.on_budget == "block":
                raise BudgetExceeded(f"budget for {month} reached")
            if self.on_budget == "fallback":
                models = [CHEAP]
                held = self.max_cost(messages, max_completion_tokens, models)
                if not self._hold(month, held):
                    raise BudgetExceeded(f"budget for {month} reached, even for {CHEAP}")
            else:
                self._hold(month, held, force=True)
                if self.redis.set(self._key(month, "alert-sent"), "1", nx=True, ex=3_000_000):
                    text = f"AI budget exceeded for {month}"
                    self.alerts.append(text)
                    self._alert(text)
        try:
            response = self._ask(models, request)
        except BaseException:
            self.redis.hincrbyfloat(self._books(month)[0], "held", -held)
            raise
        usage = response.usage
        price = cost(usage, response.model).total_usd
        self.redis.register_script(SETTLE)(keys=self._books(month), args=[repr(held), repr(price), user_id, feature])
        answer = Answer(response.choices[0].message.content or "", response.model, price, usage.prompt_tokens, usage.completion_tokens)
        if cacheable:
            key = self.cache_key(request)  # the question as asked, whichever model of the cascade answered
            pipe = self.redis.pipeline()
            pipe.hset(key, mapping={"content": answer.content, "model": answer.model, "prompt_tokens": answer.prompt_tokens,
                                    "completion_tokens": answer.completion_tokens})
            pipe.expire(key, ttl)
            pipe.execute()
        return answer

    def spend(self, month: str | None = None) -> float:
        return float(self.redis.hget(self._key(month or self.month(), "books"), "spent") or 0)

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        return {k.decode("utf-8"): float(v) for k, v in self.redis.hgetall(self._books(month or self.month())[1]).items()}

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        return {k.decode("utf-8"): float(v) for k, v in self.redis.hgetall(self._books(month or self.month())[2]).items()}
