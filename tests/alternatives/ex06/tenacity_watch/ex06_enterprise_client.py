"""Exercise 06, another valid way: tenacity walks the cascade, the budget is reserved with an
optimistic WATCH/MULTI transaction, the limiter is INCR + EXPIRE in one MULTI, and money is kept in
micro-cents (integers) in plain keys and hashes.
"""

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import openai
import redis
from openai import OpenAI
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from labkit.costs import cost, estimate
from labkit.course.ex06 import CASCADE, CHEAP, EFFORT, MAX_COMPLETION_TOKENS, NO_CACHE_ABOVE, PREMIUM
from labkit.tokens import count_tokens

log = logging.getLogger(__name__)
UNIT = 10**8  # micro-cents per dollar
BudgetPolicy = Literal["block", "fallback", "alert"]
FINAL = (400, 401, 403, 404, 422)


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
        super().__init__(f"slow down, {user_id}")
        self.user_id = user_id
        self.retry_after = retry_after


class BudgetExceeded(Exception):
    pass


def is_retryable(err: Exception) -> bool:
    if isinstance(err, openai.APIStatusError):
        return err.status_code in (408, 409, 429) or err.status_code >= 500
    return isinstance(err, openai.APIConnectionError)


def _hot(request: dict[str, Any]) -> bool:
    t = request.get("temperature")
    return t is not None and float(t) > NO_CACHE_ABOVE


class EnterpriseGPTClient:
    def __init__(
        self,
        client: OpenAI,
        redis_client: redis.Redis,
        *,
        monthly_budget_usd: float = 1000.0,
        on_budget: BudgetPolicy = "fallback",
        requests_per_minute: int = 20,
        window_s: int = 60,
        cache_ttl: int = 3600,
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

    def month(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m")

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    def cache_key(self, request: dict[str, Any]) -> str:
        text = json.dumps(request, sort_keys=True, ensure_ascii=True)
        return self.prefix + "c:" + hashlib.md5(text.encode()).hexdigest()

    def check_rate_limit(self, user_id: str) -> bool:
        now = self.clock()
        key = f"{self.prefix}rate:{int(now // self.window_s)}:{user_id}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window_s * 2)
        count, _ = pipe.execute()
        return count <= self.requests_per_minute

    # money ------------------------------------------------------------------
    def _m(self, month: str, what: str) -> str:
        return f"{self.prefix}money:{month}:{what}"

    def _reserve(self, month: str, amount: int, force: bool) -> bool:
        limit = int(self.monthly_budget_usd * UNIT)
        spent_key, held_key = self._m(month, "spent"), self._m(month, "held")
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(spent_key, held_key)
                    spent = int(pipe.get(spent_key) or 0)
                    held = int(pipe.get(held_key) or 0)
                    if spent + held + amount > limit and not force:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.incrby(held_key, amount)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def _ask(self, models: list[str], request: dict[str, Any]) -> tuple[Any, str]:
        order = iter(models)
        for attempt in Retrying(stop=stop_after_attempt(len(models)), retry=retry_if_exception(is_retryable), reraise=True):
            with attempt:
                model = next(order)
                return self.client.chat.completions.create(**{**request, "model": model}), model
        raise AssertionError("unreachable")

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
        request = dict(params, model=model, messages=list(messages), reasoning_effort=reasoning_effort,
                       max_completion_tokens=max_completion_tokens)
        cacheable = ttl > 0 and not _hot(request)
        if cacheable:
            hit = self.redis.hgetall(self.cache_key(request))
            if hit:
                return Answer(hit[b"content"].decode(), hit[b"model"].decode(), 0.0, int(hit[b"prompt"]), int(hit[b"completion"]), True)
        if not self.check_rate_limit(user_id):
            raise RateLimitExceeded(user_id, self.window_s - self.clock() % self.window_s)
        month = self.month()
        models = list(CASCADE[CASCADE.index(model):]) if model in CASCADE else [model]
        amount = math.ceil(self.max_cost(messages, max_completion_tokens, models) * UNIT)
        if not self._reserve(month, amount, False):
            if self.on_budget == "block":
                raise BudgetExceeded("monthly budget reached")
            if self.on_budget == "fallback":
                models = [CHEAP]
                amount = math.ceil(self.max_cost(messages, max_completion_tokens, models) * UNIT)
                if not self._reserve(month, amount, False):
                    raise BudgetExceeded("monthly budget reached, even for the cheap model")
            else:
                self._reserve(month, amount, True)
                if self.redis.setnx(self._m(month, "alerted"), 1):
                    self.redis.expire(self._m(month, "alerted"), 60 * 86400)
                    self.alerts.append(f"budget reached in {month}")
                    self._alert(self.alerts[-1])
        try:
            response, used = self._ask(models, request)
        except Exception:
            self.redis.decrby(self._m(month, "held"), amount)
            raise
        price = cost(response.usage, response.model).total_usd
        units = round(price * UNIT)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.decrby(self._m(month, "held"), amount)
            pipe.incrby(self._m(month, "spent"), units)
            pipe.hincrby(self._m(month, "users"), user_id, units)
            pipe.hincrby(self._m(month, "features"), feature, units)
            pipe.execute()
        message = response.choices[0].message
        answer = Answer(message.content or "", response.model, price, response.usage.prompt_tokens, response.usage.completion_tokens)
        if cacheable:
            key = self.cache_key({**request, "model": used})
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"content": answer.content, "model": answer.model,
                                        "prompt": answer.prompt_tokens, "completion": answer.completion_tokens})
                pipe.expire(key, ttl)
                pipe.execute()
        return answer

    def spend(self, month: str | None = None) -> float:
        return int(self.redis.get(self._m(month or self.month(), "spent")) or 0) / UNIT

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        return {k.decode("utf-8"): int(v) / UNIT for k, v in self.redis.hgetall(self._m(month or self.month(), "users")).items()}

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        return {k.decode("utf-8"): int(v) / UNIT for k, v in self.redis.hgetall(self._m(month or self.month(), "features")).items()}
