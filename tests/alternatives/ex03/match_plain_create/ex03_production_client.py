"""Exercise 03, another valid solution: a `match` statement classifies errors, the waits come from a
small planner function, Chat Completions is called with plain create() (the request id read from
the parsed object's `_request_id`), and logging uses logger.info / warning / error."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai

from labkit.costs import cost

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 120.0


class EmptyResponseError(openai.OpenAIError):
    """The model answered without text."""


def is_retryable(err: BaseException) -> bool:
    match err:
        case openai.APIConnectionError():
            return True
        case openai.APIStatusError(status_code=status, code=code, response=response):
            override = response.headers.get("x-should-retry")
            if override == "true":
                return True
            if override == "false":
                return False
            if status == 429 and code == "insufficient_quota":
                return False
            return status in RETRYABLE_STATUS or status >= 500
        case _:
            return False


def _seconds_until(date_text: str) -> float | None:
    try:
        when = parsedate_to_datetime(date_text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.fromtimestamp(time.time(), tz=UTC)).total_seconds()


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.replace(".", "", 1).isdigit():
        return float(raw)
    return _seconds_until(raw)


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    return min(max_delay, base_delay * 2 ** (retry - 1))


def _status_of(err: BaseException) -> int | str:
    if isinstance(err, openai.APIStatusError):
        return err.status_code
    if isinstance(err, openai.APITimeoutError):
        return "timeout"
    return "connection_error"


class GPTClient:
    def __init__(self, client: openai.OpenAI, model: str, *, max_attempts: int = 4, base_delay: float = 1.0,
                 max_delay: float = 20.0, deadline: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
                 rng: random.Random | None = None) -> None:
        self._api = client.with_options(max_retries=0)
        self.model = model
        self.max_attempts, self.base_delay, self.max_delay, self.deadline = max_attempts, base_delay, max_delay, deadline
        self.sleep, self.clock = sleep, clock
        self.logger = logger if logger is not None else logging.getLogger(__name__)
        self.rng = rng if rng is not None else random.Random()
        self._requests = 0
        self._tokens = {"input_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0, "output_tokens": 0}
        self._cost = 0.0

    def _plan(self, err: BaseException, retry_number: int, elapsed: float) -> float | None:
        """The wait before retry ``retry_number``, or None when the error should be raised now."""
        if retry_number > self.max_attempts - 1 or not is_retryable(err):
            return None
        headers = err.response.headers if isinstance(err, openai.APIStatusError) else None
        server = retry_after_seconds(headers)
        if server is not None and server > MAX_RETRY_AFTER:
            return None
        if server is not None and server > 0:
            delay = server
        else:
            delay = self.rng.uniform(0.5, 1.0) * backoff_ceiling(retry_number, self.base_delay, self.max_delay)
        return None if elapsed + delay > self.deadline else delay

    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        t0 = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                completion = self._api.chat.completions.create(model=self.model, messages=messages, **params)  # type: ignore[arg-type]
            except (openai.APIStatusError, openai.APIConnectionError) as err:
                delay = self._plan(err, attempt, self.clock() - t0)
                info = {"request_id": getattr(err, "request_id", None), "attempt": attempt, "status": _status_of(err),
                        "wait": delay if delay is not None else 0}
                if delay is None:
                    self.logger.error("giving up after attempt %d: %s", attempt, info["status"], extra=info)
                    raise
                self.logger.warning("attempt %d failed (%s), retrying in %.2fs", attempt, info["status"], delay, extra=info)
                self.sleep(delay)
                continue
            self.logger.info("attempt %d ok", attempt,
                             extra={"request_id": completion._request_id, "attempt": attempt, "status": 200, "wait": 0})
            self._record(completion)
            text = completion.choices[0].message.content
            if not text:
                raise EmptyResponseError(f"no text in the answer (finish_reason={completion.choices[0].finish_reason})")
            return text

    def _record(self, completion: Any) -> None:
        usage = completion.usage
        self._requests += 1
        self._tokens["input_tokens"] += usage.prompt_tokens
        details = usage.prompt_tokens_details
        if details is not None:
            self._tokens["cached_tokens"] += details.cached_tokens or 0
            self._tokens["cache_write_tokens"] += getattr(details, "cache_write_tokens", 0) or 0
        self._tokens["output_tokens"] += usage.completion_tokens
        self._cost += cost(usage, completion.model).total_usd

    def get_usage_stats(self) -> dict[str, Any]:
        return {"requests": self._requests, **self._tokens, "cost_usd": self._cost}
