"""Exercise 03, another valid solution: the policy is a small object that answers "wait how long, or
give up?", and the client is a plain while-loop around Chat Completions. Accounting reads usage with
labkit.costs.usage_details, which knows both APIs' field names."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai

from labkit.costs import cost, usage_details

TRANSIENT = {408, 409, 429}


class EmptyResponseError(openai.OpenAIError):
    """The API answered without text."""


def is_retryable(err: BaseException) -> bool:
    """Transient: connection problems, 408, 409, 429 (but not insufficient_quota), 5xx; x-should-retry decides first."""
    match err:
        case openai.APIConnectionError():
            return True
        case openai.APIStatusError(status_code=status) if err.response.headers.get("x-should-retry") in ("true", "false"):
            return err.response.headers["x-should-retry"] == "true"
        case openai.APIStatusError(status_code=429) if err.code == "insufficient_quota":
            return False
        case openai.APIStatusError(status_code=status):
            return status in TRANSIENT or status >= 500
    return False


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait the server asks for, in seconds, or None."""
    headers = headers or {}
    candidates = [(headers.get("retry-after-ms"), 0.001), (headers.get("retry-after"), 1.0)]
    for value, unit in candidates:
        if value is not None:
            try:
                return float(value) * unit
            except ValueError:
                continue
    when = headers.get("retry-after")
    if when is None:
        return None
    try:
        moment = parsedate_to_datetime(when)
    except (TypeError, ValueError):
        return None
    return (moment - datetime.now(UTC)).total_seconds()


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    """The most to wait before retry number ``retry`` (1, 2, ...): doubles each time, capped."""
    return min(max_delay, base_delay * 2 ** (retry - 1))


@dataclass
class RetryPolicy:
    """Decides, for the n-th failure of a call that started at ``started``, how long to wait (or None)."""

    max_attempts: int
    base_delay: float
    max_delay: float
    deadline: float
    rng: random.Random
    longest_asked: float = 120.0

    def wait_after(self, err: BaseException, attempt: int, elapsed: float) -> float | None:
        if attempt >= self.max_attempts or not is_retryable(err):
            return None
        asked = retry_after_seconds(err.response.headers) if isinstance(err, openai.APIStatusError) else None
        if asked is not None and asked > self.longest_asked:
            return None
        if asked is not None and asked > 0:
            wait = asked
        else:
            wait = backoff_ceiling(attempt, self.base_delay, self.max_delay) * self.rng.uniform(0.5, 1.0)
        return wait if elapsed + wait <= self.deadline else None


@dataclass
class _Totals:
    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, float] = field(default_factory=dict)


class GPTClient:
    """Chat Completions with one retry loop, driven by a RetryPolicy."""

    def __init__(self, client: openai.OpenAI, model: str, *, max_attempts: int = 4, base_delay: float = 1.0,
                 max_delay: float = 20.0, deadline: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
                 rng: random.Random | None = None) -> None:
        self.client = client.with_options(max_retries=0)
        self.model = model
        self.policy = RetryPolicy(max_attempts, base_delay, max_delay, deadline, rng or random.Random())
        self.sleep, self.clock = sleep, clock
        self.log = logger or logging.getLogger("gptclient")
        self.totals = _Totals()

    def _record(self, level: int, attempt: int, status: int | str, request_id: str | None, wait: float) -> None:
        self.log.log(level, "attempt %d: %s", attempt, status,
                     extra={"request_id": request_id, "attempt": attempt, "status": status, "wait": wait})

    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        """The reply's text, or the last typed error."""
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                raw = self.client.chat.completions.with_raw_response.create(model=self.model, messages=messages, **params)
            except openai.APIError as err:
                if not isinstance(err, (openai.APIStatusError, openai.APIConnectionError)):
                    raise
                wait = self.policy.wait_after(err, attempt, self.clock() - started)
                if isinstance(err, openai.APIStatusError):
                    status: int | str = err.status_code
                else:
                    status = "timeout" if isinstance(err, openai.APITimeoutError) else "connection_error"
                self._record(logging.ERROR if wait is None else logging.WARNING, attempt, status,
                             getattr(err, "request_id", None), wait or 0.0)
                if wait is None:
                    raise
                self.sleep(wait)
                continue
            self._record(logging.INFO, attempt, raw.status_code, raw.headers.get("x-request-id"), 0.0)
            completion = raw.parse()
            inp, cached, written, out, _ = usage_details(completion.usage)
            t = self.totals
            t.requests += 1
            t.input_tokens += inp
            t.cached_tokens += cached
            t.cache_write_tokens += written
            t.output_tokens += out
            priced = cost(completion.usage, completion.model).total_usd
            t.cost_usd += priced
            t.by_model[completion.model] = t.by_model.get(completion.model, 0.0) + priced
            text = completion.choices[0].message.content
            if not text:
                raise EmptyResponseError(f"{completion.id}: finish_reason {completion.choices[0].finish_reason}")
            return text

    def get_usage_stats(self) -> dict[str, Any]:
        """Successful requests, tokens and cost so far."""
        t = self.totals
        return {"requests": t.requests, "input_tokens": t.input_tokens, "cached_tokens": t.cached_tokens,
                "cache_write_tokens": t.cache_write_tokens, "output_tokens": t.output_tokens, "cost_usd": t.cost_usd,
                "cost_by_model": dict(t.by_model)}
