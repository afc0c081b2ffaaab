"""Exercise 06, another valid way: no Lua at all. The budget is one "committed" counter (spent plus
reserved) taken optimistically with INCRBY and rolled back with DECRBY when it went over; the
rate limit is INCR on a per-user hash field named by the window, with the hash's TTL refreshed in
the same MULTI; money in integer pico-dollars (10^-12 USD); the cascade a
while loop over an index; cached answers as JSON with a blake2b key; decoding the
reports with a helper.
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

PICO = 10**12

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
    match err:
        case openai.APIConnectionError():
            return True
        case openai.APIStatusError() if err.status_code in RETRYABLE_STATUSES:
            return True
    return False


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


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

    def month(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m")

    def _key(self, month: str, name: str) -> str:
        return f"{self.prefix}{month}:{name}"

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    # ---------------------------------------------------------------- cache
    def cache_key(self, request: dict[str, Any]) -> str:
        blob = json.dumps(request, sort_keys=True, ensure_ascii=True, default=str).encode("ascii")
        return self.prefix + "answers:" + hashlib.blake2b(blob, digest_size=20).hexdigest()

    # ---------------------------------------------------------------- rate limit
    def check_rate_limit(self, user_id: str) -> bool:
        window = int(self.clock() // self.window_s)
        key = f"{self.prefix}windows:{user_id}"
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, str(window), 1)
            pipe.expire(key, self.window_s + 1)
            count, _ = pipe.execute()
        return int(count) <= self.requests_per_minute

    # ---------------------------------------------------------------- budget
    def _take(self, month: str, amount: int) -> bool:
        """Add amount to the committed counter; undo it if that went over the budget."""
        key = self._key(month, "committed")
        if self.redis.incrby(key, amount) <= round(self.monthly_budget_usd * PICO):
            return True
        self.redis.decrby(key, amount)
        return False

    def _give_back(self, month: str, amount: int) -> None:
        self.redis.decrby(self._key(month, "committed"), amount)

    def _pico(self, messages: Sequence[dict[str, Any]], limit: int, models: Sequence[str]) -> int:
        return math.ceil(self.max_cost(messages, limit, models) * PICO)

    def _send(self, models: Sequence[str], request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        i = 0
        while True:
            body = dict(request, model=models[i])
            try:
                return self.client.chat.completions.create(**body), body
            except openai.APIError as err:
                i += 1
                if not is_retryable(err) or i == len(models):
                    raise

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
        request: dict[str, Any] = dict(params)
        request.update(model=model, messages=[dict(m) for m in messages], reasoning_effort=reasoning_effort,
                       max_completion_tokens=max_completion_tokens)
        temperature = request.get("temperature")
        use_cache = ttl > 0 and not (temperature is not None and temperature > NO_CACHE_ABOVE)
        if use_cache:
            raw = self.redis.get(self.cache_key(request))
            if raw:
                hit = json.loads(raw)
                return Answer(hit["content"], hit["model"], 0.0, hit["prompt_tokens"], hit["completion_tokens"], True)

        if not self.check_rate_limit(user_id):
            raise RateLimitExceeded(user_id, self.window_s - self.clock() % self.window_s)

        month = self.month()
        models = list(CASCADE[CASCADE.index(model):]) if model in CASCADE else [model]
        held = self._pico(messages, max_completion_tokens, models)
        if not self._take(month, held):
            if self.on_budget == "block":
                raise BudgetExceeded(f"monthly budget ${self.monthly_budget_usd} reached for {month}")
            if self.on_budget == "fallback":
                models = [CHEAP]
                held = self._pico(messages, max_completion_tokens, models)
                if not self._take(month, held):
                    raise BudgetExceeded(f"monthly budget ${self.monthly_budget_usd} reached for {month}, even for {CHEAP}")
            else:
                self.redis.incrby(self._key(month, "committed"), held)
                if self.redis.set(self._key(month, "alerted"), "yes", nx=True, ex=45 * 86400):
                    note = f"AI budget of ${self.monthly_budget_usd} exceeded in {month}; requests continue"
                    self.alerts.append(note)
                    self._alert(note)

        try:
            response, sent = self._send(models, request)
        except BaseException:
            self._give_back(month, held)
            raise
        usage = response.usage
        usd = cost(usage, response.model).total_usd
        paid = round(usd * PICO)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(self._key(month, "committed"), paid - held)
            pipe.incrby(self._key(month, "spent"), paid)
            pipe.hincrby(self._key(month, "users"), user_id, paid)
            pipe.hincrby(self._key(month, "features"), feature, paid)
            pipe.execute()
        content = response.choices[0].message.content or ""
        answer = Answer(content, response.model, usd, usage.prompt_tokens, usage.completion_tokens)
        if use_cache:
            record = {"content": content, "model": response.model, "prompt_tokens": usage.prompt_tokens,
                      "completion_tokens": usage.completion_tokens}
            self.redis.set(self.cache_key(sent), json.dumps(record), ex=ttl)
        return answer

    # ---------------------------------------------------------------- reports
    def spend(self, month: str | None = None) -> float:
        return int(self.redis.get(self._key(month or self.month(), "spent")) or 0) / PICO

    def _shares(self, month: str | None, name: str) -> dict[str, float]:
        raw = self.redis.hgetall(self._key(month or self.month(), name))
        return {_text(k): int(v) / PICO for k, v in raw.items()}

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        return self._shares(month, "users")

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        return self._shares(month, "features")
