"""Exercise 06, another valid way: a request travels as a dataclass through small steps; one Lua
script applies the whole budget policy atomically (reserve for the cascade, else for CHEAP under
"fallback", else force under "alert") and says which it did; the reservation is undone by an
ExitStack callback unless the answer is settled; the rate limit is INCR then EXPIRE only when the
counter has no TTL yet; money in integer nano-dollars in one hash per month.
"""

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
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
    if isinstance(err, openai.APIStatusError):
        return err.status_code in RETRYABLE_STATUSES
    return isinstance(err, openai.APIConnectionError)


# KEYS: the month's books hash, its alert flag. ARGV: budget, amount for the cascade, amount for CHEAP, policy.
# Returns {outcome, amount}: outcome 'cascade', 'cheap', 'forced' (and 1 if this is the month's first alert) or 'no'.
POLICY_LUA = """
local books = KEYS[1]
local budget = tonumber(ARGV[1])
local used = tonumber(redis.call('HGET', books, 'spent') or '0') + tonumber(redis.call('HGET', books, 'held') or '0')
local function hold(amount) redis.call('HINCRBY', books, 'held', amount) end
if used + tonumber(ARGV[2]) <= budget then hold(ARGV[2]) return {'cascade', ARGV[2], 0} end
if ARGV[4] == 'fallback' then
  if used + tonumber(ARGV[3]) <= budget then hold(ARGV[3]) return {'cheap', ARGV[3], 0} end
  return {'no', '0', 0}
end
if ARGV[4] == 'alert' then
  hold(ARGV[2])
  local first = redis.call('SET', KEYS[2], '1', 'NX', 'EX', 3456000)
  return {'forced', ARGV[2], first and 1 or 0}
end
return {'no', '0', 0}
"""


@dataclass
class Call:
    request: dict[str, Any]
    user_id: str
    feature: str
    ttl: int
    month: str = ""
    models: list[str] = field(default_factory=list)
    held: int = 0

    @property
    def cacheable(self) -> bool:
        t = self.request.get("temperature")
        return self.ttl > 0 and (t is None or t <= NO_CACHE_ABOVE)


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
        self._policy = redis_client.register_script(POLICY_LUA)

    def month(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m")

    def _key(self, month: str, name: str) -> str:
        return f"{self.prefix}{month}:{name}"

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    def cache_key(self, request: dict[str, Any]) -> str:
        digest = hashlib.sha1(json.dumps(request, sort_keys=True, default=str).encode("utf-8")).hexdigest()
        return f"{self.prefix}c:{digest}"

    def check_rate_limit(self, user_id: str) -> bool:
        key = f"{self.prefix}limit:{int(self.clock() // self.window_s)}:{user_id}"
        count = self.redis.incr(key)
        if self.redis.ttl(key) < 0:
            self.redis.expire(key, self.window_s + 1)
        return count <= self.requests_per_minute

    # ---------------------------------------------------------------- the steps
    def _cached(self, call: Call) -> Answer | None:
        if not call.cacheable:
            return None
        raw = self.redis.get(self.cache_key(call.request))
        return None if raw is None else Answer(**{**json.loads(raw), "cost_usd": 0.0, "cached": True})

    def _admit(self, call: Call) -> None:
        if not self.check_rate_limit(call.user_id):
            raise RateLimitExceeded(call.user_id, self.window_s - self.clock() % self.window_s)

    def _reserve(self, call: Call, messages: Sequence[dict[str, Any]]) -> None:
        model, limit = call.request["model"], call.request["max_completion_tokens"]
        call.month = self.month()
        cascade = list(CASCADE[CASCADE.index(model):]) if model in CASCADE else [model]
        amounts = [math.ceil(self.max_cost(messages, limit, ms) * NANO) for ms in (cascade, [CHEAP])]
        keys = [self._key(call.month, "books"), self._key(call.month, "alerted")]
        outcome, held, first = self._policy(keys=keys, args=[round(self.monthly_budget_usd * NANO), *amounts, self.on_budget])
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome == "no":
            raise BudgetExceeded(f"the {call.month} budget of ${self.monthly_budget_usd} cannot cover this request")
        call.models, call.held = ([CHEAP] if outcome == "cheap" else cascade), int(held)
        if first:
            text = f"AI budget of ${self.monthly_budget_usd} exceeded in {call.month}; continuing"
            self.alerts.append(text)
            self._alert(text)

    def _ask(self, call: Call) -> tuple[Any, dict[str, Any]]:
        errors: list[openai.APIError] = []
        for model in call.models:
            body = {**call.request, "model": model}
            try:
                return self.client.chat.completions.create(**body), body
            except openai.APIError as err:
                if not is_retryable(err):
                    raise
                errors.append(err)
        raise errors[-1]

    def _settle(self, call: Call, response: Any) -> float:
        usd = cost(response.usage, response.model).total_usd
        paid = round(usd * NANO)
        books = self._key(call.month, "books")
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(books, "held", -call.held)
            pipe.hincrby(books, "spent", paid)
            pipe.hincrby(self._key(call.month, "users"), call.user_id, paid)
            pipe.hincrby(self._key(call.month, "features"), call.feature, paid)
            pipe.execute()
        return usd

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
        request = {"model": model, "messages": [dict(m) for m in messages], "reasoning_effort": reasoning_effort,
                   "max_completion_tokens": max_completion_tokens, **params}
        call = Call(request, user_id, feature, self.cache_ttl if cache_ttl is None else cache_ttl)
        hit = self._cached(call)
        if hit is not None:
            return hit
        self._admit(call)
        self._reserve(call, messages)
        with ExitStack() as undo:
            undo.callback(self.redis.hincrby, self._key(call.month, "books"), "held", -call.held)
            response, sent = self._ask(call)
            undo.pop_all()
        usd = self._settle(call, response)
        usage = response.usage
        answer = Answer(response.choices[0].message.content or "", response.model, usd, usage.prompt_tokens, usage.completion_tokens)
        if call.cacheable:
            stored = {"content": answer.content, "model": answer.model, "prompt_tokens": answer.prompt_tokens,
                      "completion_tokens": answer.completion_tokens}
            self.redis.set(self.cache_key(sent), json.dumps(stored), ex=call.ttl)
        return answer

    def _report(self, month: str | None, name: str) -> dict[str, float]:
        raw = self.redis.hgetall(self._key(month or self.month(), name))
        return {k.decode(): int(v) / NANO for k, v in raw.items()}

    def spend(self, month: str | None = None) -> float:
        return int(self.redis.hget(self._key(month or self.month(), "books"), "spent") or 0) / NANO

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        return self._report(month, "users")

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        return self._report(month, "features")
