"""Exercise 03, another valid solution: the Responses API through plain create() (the request id read
from the parsed object's _request_id), a generator that yields each attempt's number, a lookup table
from exception class to the log's status word, the waits decided by a function returning a
(wait, reason) pair, and the usage kept in a collections.Counter plus a float for the cost."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import CONTRACT

STATUS_WORDS: tuple[tuple[type[BaseException], str], ...] = (
    (openai.APITimeoutError, "timeout"),  # before its parent class
    (openai.APIConnectionError, "connection_error"),
)


class EmptyResponseError(openai.OpenAIError):
    """An answer without text."""


def is_retryable(err: BaseException) -> bool:
    match err:
        case openai.APIConnectionError():
            return True
        case openai.APIStatusError(response=response) if response.headers.get("x-should-retry") in ("true", "false"):
            return bool(response.headers["x-should-retry"] == "true")
        case openai.RateLimitError(code="insufficient_quota"):
            return False
        case openai.APIStatusError(status_code=status):
            return status in CONTRACT.retry_statuses or status >= 500
        case _:
            return False


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    headers = headers or {}
    candidates = [(headers.get("retry-after-ms"), 0.001), (headers.get("retry-after"), 1.0)]
    for value, unit in candidates:
        if value is not None:
            try:
                return float(value) * unit
            except ValueError:
                continue
    text = headers.get("retry-after")
    parsed = email.utils.parsedate_tz(text) if text else None
    return None if parsed is None else email.utils.mktime_tz(parsed) - time.time()


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    ceiling = base_delay
    for _ in range(retry - 1):
        ceiling = min(max_delay, ceiling * 2)
    return min(max_delay, ceiling)


class GPTClient:
    def __init__(
        self,
        client: openai.OpenAI,
        model: str,
        *,
        max_attempts: int = CONTRACT.max_attempts,
        base_delay: float = CONTRACT.base_delay,
        max_delay: float = CONTRACT.max_delay,
        deadline: float = CONTRACT.deadline,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client.with_options(max_retries=0)
        self.model = model
        self.settings = {"max_attempts": max_attempts, "base_delay": base_delay, "max_delay": max_delay, "deadline": deadline}
        self.sleep, self.clock = sleep, clock
        self.logger = logger or logging.getLogger("gptclient")
        self.rng = rng or random.Random()
        self.tokens: Counter[str] = Counter()
        self.cost_usd = 0.0

    def _attempts(self) -> Iterator[int]:
        n = 0
        while n < self.settings["max_attempts"]:
            n += 1
            yield n

    def _plan(self, err: BaseException, attempt: int, started: float) -> tuple[float | None, str]:
        if not is_retryable(err):
            return None, "not retryable"
        if attempt == self.settings["max_attempts"]:
            return None, "out of attempts"
        asked = retry_after_seconds(err.response.headers) if isinstance(err, openai.APIStatusError) else None
        if asked is not None and asked > CONTRACT.max_retry_after:
            return None, "the server asks for too long"
        wait = asked if asked is not None and asked > 0 else (
            backoff_ceiling(attempt, self.settings["base_delay"], self.settings["max_delay"]) * self.rng.uniform(0.5, 1.0))
        if self.clock() - started + wait > self.settings["deadline"]:
            return None, "past the deadline"
        return wait, "retrying"

    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        started = self.clock()
        error: BaseException | None = None
        for attempt in self._attempts():
            try:
                response = self.client.responses.create(model=self.model, input=messages, **params)  # type: ignore[arg-type]
            except (openai.APIStatusError, openai.APIConnectionError) as err:
                error = err
                wait, reason = self._plan(err, attempt, started)
                status: int | str = next((word for cls, word in STATUS_WORDS if isinstance(err, cls)), "")
                if isinstance(err, openai.APIStatusError):
                    status = err.status_code
                request_id = err.request_id if isinstance(err, openai.APIStatusError) else None
                self.logger.log(logging.ERROR if wait is None else logging.WARNING, "attempt %s failed (%s): %s", attempt, status,
                                reason, extra={"request_id": request_id, "attempt": attempt, "status": status, "wait": wait or 0})
                if wait is None:
                    raise
                self.sleep(wait)
                continue
            self.logger.info("attempt %s answered", attempt,
                             extra={"request_id": response._request_id, "attempt": attempt, "status": 200, "wait": 0})
            self._account(response)
            if not response.output_text:
                raise EmptyResponseError(f"no text in response {response.id} (status {response.status})")
            return response.output_text
        assert error is not None
        raise error

    def _account(self, response: Any) -> None:
        usage = response.usage
        details = usage.input_tokens_details
        self.tokens.update({
            "requests": 1,
            "input_tokens": usage.input_tokens,
            "cached_tokens": getattr(details, "cached_tokens", 0) or 0,
            "cache_write_tokens": getattr(details, "cache_write_tokens", 0) or 0,
            "output_tokens": usage.output_tokens,
        })
        self.cost_usd += cost(usage, response.model).total_usd

    def get_usage_stats(self) -> dict[str, Any]:
        keys = ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens")
        return {**{key: self.tokens[key] for key in keys}, "cost_usd": self.cost_usd}
