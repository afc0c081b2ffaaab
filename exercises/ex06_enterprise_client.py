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
    # TODO: never True for 400/401/403/404/422 (FINAL_STATUSES): those fail the same way on every model.
    raise NotImplementedError("decide which errors are retryable")


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
        return datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m")

    def _key(self, month: str, name: str) -> str:
        return f"{self.prefix}{month}:{name}"

    def max_cost(self, messages: Sequence[dict[str, Any]], max_completion_tokens: int, models: Sequence[str]) -> float:
        """The most this request can cost on any model that may answer it (catalog prices)."""
        return max(estimate(count_tokens(list(messages), m), max_completion_tokens, m).total_usd for m in models)

    # ------------------------------------------------------------------ your work
    def cache_key(self, request: dict[str, Any]) -> str:
        """A Redis key (under self.prefix) for this request body."""
        # TODO: the lesson hashes only the messages. Which other fields change the answer?
        raise NotImplementedError("build the cache key")

    def check_rate_limit(self, user_id: str) -> bool:
        """Count one request for this user in the current window; False once over requests_per_minute.

        Must be atomic: 8 threads in 2 processes will call it at the same moment. Give the counter a
        relative TTL (EXPIRE/PEXPIRE): Redis expires keys on its own clock, in real seconds.
        """
        # TODO: a fixed window keyed by user and self.clock() // self.window_s (or a sliding window).
        raise NotImplementedError("write the atomic rate limiter")

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
        # TODO: see the steps above; notebook 06 walks through each one.
        raise NotImplementedError("write complete()")

    def spend(self, month: str | None = None) -> float:
        """Total USD spent in a month (default: the current month)."""
        # TODO
        raise NotImplementedError("report the month's spend")

    def spend_by_user(self, month: str | None = None) -> dict[str, float]:
        """USD per user in a month (default: the current month)."""
        # TODO
        raise NotImplementedError("report spend per user")

    def spend_by_feature(self, month: str | None = None) -> dict[str, float]:
        """USD per feature in a month (default: the current month)."""
        # TODO
        raise NotImplementedError("report spend per feature")

# labkit starter e896facaf800 (made from solutions/ex06_enterprise_client.py by `labkit exercises build`)
