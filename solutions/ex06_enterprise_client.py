"""Exercise 06: an enterprise client on a real Redis.

Build `EnterpriseGPTClient`: a response cache, per-user rate limits, a monthly budget with the
lesson's three policies, cost attribution and a model cascade. The checks run it against a real
redis-server with many threads and two processes at once, so every counter must be atomic; they
script the API's failures (every status of the contract in labkit/course/ex06.py) and compare
what your client does with what the reference does: requests sent, errors raised, money counted.

Edit the TODOs, then run `labkit check ex06` (or the last cell of notebooks/06_enterprise_client.ipynb).
Names given here (constants, Answer, the exceptions, the constructor's parameters) are what the
checks use: keep them.
"""

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
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
    ### BEGIN SOLUTION: decide which errors are retryable
    ### TODO: never True for 400/401/403/404/422 (FINAL_STATUSES): those fail the same way on every model.
    if isinstance(err, openai.APIConnectionError):  # APITimeoutError is one too
        return True
    return isinstance(err, openai.APIStatusError) and err.status_code in RETRYABLE_STATUSES
    ### END SOLUTION


### BEGIN SOLUTION
# Fixed window: INCR first, then compare. The script also sets the TTL in the same atomic step.
RATE_LIMIT_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return 0 end
return 1
"""

# Reserve a request's maximum cost if spent + reserved + amount stays within the budget.
# ARGV: budget, amount (nano-USD), force (1 = reserve even over budget). Returns 1 ok, 0 no, -1 forced.
RESERVE_LUA = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local reserved = tonumber(redis.call('GET', KEYS[2]) or '0')
local amount = tonumber(ARGV[2])
if spent + reserved + amount <= tonumber(ARGV[1]) then
  redis.call('INCRBY', KEYS[2], amount)
  return 1
end
if ARGV[3] == '1' then
  redis.call('INCRBY', KEYS[2], amount)
  return -1
end
return 0
"""
### END SOLUTION


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
        ### BEGIN SOLUTION
        self._rate_script = redis_client.register_script(RATE_LIMIT_LUA)
        self._reserve_script = redis_client.register_script(RESERVE_LUA)
        ### END SOLUTION

    # ------------------------------------------------------------------ given helpers
    def month(self) -> str:
        """The current month as "YYYY-MM" (UTC), by self.clock()."""
        return datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m")

    def _key(self, month: str, name: str) -> str:
        return f"{self.prefix}{month}:{name}"

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        """The most this request can cost on any model that may answer it (catalog prices)."""
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    # ------------------------------------------------------------------ your work
    def cache_key(self, request: dict[str, Any]) -> str:
        """A Redis key (under self.prefix) for this request body."""
        ### BEGIN SOLUTION: build the cache key
        ### TODO: the lesson hashes only the messages. Which other fields change the answer?
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return f"{self.prefix}cache:{hashlib.sha256(canonical.encode()).hexdigest()}"
        ### END SOLUTION

    def check_rate_limit(self, user_id: str) -> bool:
        """Count one request for this user in the current window; False once over requests_per_minute.

        Must be atomic: 8 threads in 2 processes will call it at the same moment. Give the counter a
        relative TTL (EXPIRE/PEXPIRE): Redis expires keys on its own clock, in real seconds.
        """
        ### BEGIN SOLUTION: write the atomic rate limiter
        ### TODO: a fixed window keyed by user and self.clock() // self.window_s (or a sliding window).
        window = int(self.clock() // self.window_s)
        key = f"{self.prefix}rl:{user_id}:{window}"
        ttl_ms = (self.window_s + 1) * 1000
        return bool(self._rate_script(keys=[key], args=[self.requests_per_minute, ttl_ms]))
        ### END SOLUTION
    ### BEGIN SOLUTION

    # ------------------------------------------------------------------ the solution's own helpers
    def _cacheable(self, request: dict[str, Any], ttl: int) -> bool:
        hot = request.get("temperature") is not None and request["temperature"] > NO_CACHE_ABOVE
        return ttl > 0 and not hot and not request.get("stream") and request.get("n", 1) == 1

    def _reserve(self, month: str, amount: int, *, force: bool = False) -> int:
        keys = [self._key(month, "spent"), self._key(month, "reserved")]
        return int(self._reserve_script(keys=keys, args=[int(self.monthly_budget_usd * NANO), amount, int(force)]))

    def _release(self, month: str, amount: int) -> None:
        self.redis.decrby(self._key(month, "reserved"), amount)

    def _settle(self, month: str, reserved: int, spent: int, user_id: str, feature: str, tokens: int) -> None:
        """Swap the reservation for the real cost and attribute it, all in one transaction."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.decrby(self._key(month, "reserved"), reserved)
        pipe.incrby(self._key(month, "spent"), spent)
        pipe.hincrby(self._key(month, "by_user"), user_id, spent)
        pipe.hincrby(self._key(month, "by_feature"), feature, spent)
        pipe.hincrby(self._key(month, "tokens_by_user"), user_id, tokens)
        pipe.execute()

    def _over_budget(self, month: str) -> None:
        if self.redis.set(self._key(month, "alerted"), 1, nx=True, ex=40 * 86400):
            message = f"monthly AI budget of ${self.monthly_budget_usd:,.6g} reached for {month}; continuing (alert policy)"
            self.alerts.append(message)
            self._alert(message)

    def _call(self, models: Sequence[str], request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        last: Exception | None = None
        for model in models:
            sent = {**request, "model": model}
            try:
                return self.client.chat.completions.create(**sent), sent
            except openai.APIError as err:
                if not is_retryable(err):
                    raise
                log.info("%s unavailable (%s); trying the next model", model, type(err).__name__)
                last = err
        assert last is not None
        raise last
    ### END SOLUTION

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
        """Answer one request for a user and a feature.

        The request is model, messages, reasoning_effort, max_completion_tokens and every other
        keyword given (params: temperature, verbosity, safety_identifier...), all sent as given.
        (Chat Completions or the Responses API: either is fine, with the same meaning.)

        1. Cache: unless cache_ttl is 0 (None means self.cache_ttl) or the request has an explicit
           temperature above NO_CACHE_ABOVE, return a cached answer as Answer(..., cost_usd=0.0,
           cached=True): no API call, and it does not count against the rate limit, even for a
           user who is over it.
        2. Rate limit: raise RateLimitExceeded(user_id, seconds_until_the_window_reopens).
        3. Budget: atomically reserve the request's maximum cost (self.max_cost over the models
           that may answer) so that spent + reserved never passes monthly_budget_usd. If it does not
           fit: "block" raises BudgetExceeded; "fallback" tries the reservation again for CHEAP and
           sends the request to CHEAP (BudgetExceeded if even that does not fit); "alert" sends it
           anyway and records one alert per month in self.alerts (and calls self._alert).
        4. Call the API; on a retryable error try the next model of CASCADE (from `model` on; a model
           outside CASCADE has no fallback); raise any other error at once, and the last error when
           every model failed. Whatever fails, release the reservation: a failed request costs
           nothing and holds nothing back.
        5. Settle: replace the reservation by the real cost (labkit.costs.cost(usage, model)),
           attributed to user, feature and month in one atomic step; cache the answer with a TTL.
        """
        ### BEGIN SOLUTION: write complete()
        ### TODO: see the steps above; notebook 06 walks through each one.
        ttl = self.cache_ttl if cache_ttl is None else cache_ttl
        request = {"model": model, "messages": list(messages), "reasoning_effort": reasoning_effort,
                   "max_completion_tokens": max_completion_tokens, **params}
        if self._cacheable(request, ttl):
            hit = self.redis.get(self.cache_key(request))
            if hit is not None:
                data = json.loads(hit)
                return Answer(data["content"], data["model"], 0.0, data["prompt_tokens"], data["completion_tokens"], cached=True)

        if not self.check_rate_limit(user_id):
            raise RateLimitExceeded(user_id, self.window_s - self.clock() % self.window_s)

        month = self.month()
        models = CASCADE[CASCADE.index(model):] if model in CASCADE else (model,)
        amount = math.ceil(self.max_cost(messages, max_completion_tokens, models) * NANO)
        if not self._reserve(month, amount):
            if self.on_budget == "block":
                raise BudgetExceeded(f"the ${self.monthly_budget_usd:,.6g} budget for {month} cannot cover this request")
            if self.on_budget == "fallback":
                models = (CHEAP,)
                amount = math.ceil(self.max_cost(messages, max_completion_tokens, models) * NANO)
                if not self._reserve(month, amount):
                    raise BudgetExceeded(f"the ${self.monthly_budget_usd:,.6g} budget for {month} cannot cover even {CHEAP}")
            else:
                self._reserve(month, amount, force=True)
                self._over_budget(month)

        try:
            response, sent = self._call(models, request)
        except BaseException:
            self._release(month, amount)
            raise
        usage = response.usage
        price = cost(usage, response.model).total_usd
        self._settle(month, amount, round(price * NANO), user_id, feature, usage.total_tokens)
        answer = Answer(response.choices[0].message.content or "", response.model, price,
                        usage.prompt_tokens, usage.completion_tokens)
        if self._cacheable(sent, ttl):
            self.redis.set(self.cache_key(sent), json.dumps(asdict(answer)), ex=ttl)
        return answer
        ### END SOLUTION

    def spend(self, month: str | None = None) -> float:
        """Total USD spent in a month (default: the current month)."""
        ### BEGIN SOLUTION: report the month's spend
        ### TODO
        return int(self.redis.get(self._key(month or self.month(), "spent")) or 0) / NANO
        ### END SOLUTION

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        """USD per user in a month (default: the current month)."""
        ### BEGIN SOLUTION: report spend per user
        ### TODO
        raw = self.redis.hgetall(self._key(month or self.month(), "by_user"))
        return {k.decode(): int(v) / NANO for k, v in sorted(raw.items())}
        ### END SOLUTION

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        """USD per feature in a month (default: the current month)."""
        ### BEGIN SOLUTION: report spend per feature
        ### TODO
        raw = self.redis.hgetall(self._key(month or self.month(), "by_feature"))
        return {k.decode(): int(v) / NANO for k, v in sorted(raw.items())}
        ### END SOLUTION
