"""Exercise 03, another valid solution: the attempts are a recursive method (attempt n calls attempt
n + 1 after its wait), the usage is a dataclass rendered with asdict, errors are sorted by a small
classifier that returns a label for the log, and an HTTP-date Retry-After is read with datetime in UTC.
Chat Completions through with_raw_response."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import CONTRACT


class EmptyResponseError(openai.OpenAIError):
    """The answer holds no text."""


def _label(err: BaseException) -> int | str:
    """What the log calls a failure: its status, or 'timeout' / 'connection_error'."""
    if isinstance(err, openai.APITimeoutError):
        return "timeout"
    if isinstance(err, openai.APIConnectionError):
        return "connection_error"
    if isinstance(err, openai.APIStatusError):
        return err.status_code
    return type(err).__name__


def is_retryable(err: BaseException) -> bool:
    label = _label(err)
    if label in ("timeout", "connection_error"):
        return True
    if not isinstance(err, openai.APIStatusError):
        return False
    said = (err.response.headers.get("x-should-retry") or "").lower()
    if said == "true":
        return True
    if said == "false":
        return False
    if err.code == "insufficient_quota":
        return False
    return err.status_code >= 500 or err.status_code in {408, 409, 429}


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    seconds = headers.get("retry-after")
    if seconds is None:
        return None
    try:
        return float(seconds)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(seconds)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    return min(max_delay, base_delay * 2 ** (retry - 1))


@dataclass
class Usage:
    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


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
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline
        self.sleep = sleep
        self.clock = clock
        self.logger = logger if logger is not None else logging.getLogger(__name__)
        self.rng = rng if rng is not None else random.Random()
        self.usage = Usage()

    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        return self._attempt(1, self.clock(), messages, params)

    def _attempt(self, n: int, started: float, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        try:
            raw = self.client.chat.completions.with_raw_response.create(model=self.model, messages=messages, **params)
            completion = raw.parse()
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            pause = self._pause(err, n, started)
            request_id = err.request_id if isinstance(err, openai.APIStatusError) else None
            level = logging.ERROR if pause is None else logging.WARNING
            self._record(level, request_id, n, _label(err), pause or 0.0)
            if pause is None:
                raise
            self.sleep(pause)
            return self._attempt(n + 1, started, messages, params)
        self._record(logging.INFO, raw.headers.get("x-request-id"), n, raw.status_code, 0.0)
        self._count(completion)
        message = completion.choices[0].message
        if not message.content:
            raise EmptyResponseError(f"no text in the answer (finish_reason {completion.choices[0].finish_reason})")
        return message.content

    def _pause(self, err: BaseException, n: int, started: float) -> float | None:
        if n >= self.max_attempts or not is_retryable(err):
            return None
        asked = retry_after_seconds(err.response.headers) if isinstance(err, openai.APIStatusError) else None
        if asked is not None and asked > CONTRACT.max_retry_after:
            return None
        if asked is not None and asked > 0:
            pause = asked
        else:
            pause = self.rng.uniform(0.5, 1.0) * backoff_ceiling(n, self.base_delay, self.max_delay)
        return None if (self.clock() - started) + pause > self.deadline else pause

    def _record(self, level: int, request_id: str | None, attempt: int, status: int | str, wait: float) -> None:
        self.logger.log(level, "attempt %d: %s (wait %.2fs)", attempt, status, wait,
                        extra={"request_id": request_id, "attempt": attempt, "status": status, "wait": wait})

    def _count(self, completion: Any) -> None:
        usage = completion.usage
        details = usage.prompt_tokens_details
        self.usage.requests += 1
        self.usage.input_tokens += usage.prompt_tokens
        self.usage.cached_tokens += (details.cached_tokens if details else 0) or 0
        self.usage.cache_write_tokens += getattr(details, "cache_write_tokens", 0) or 0
        self.usage.output_tokens += usage.completion_tokens
        self.usage.cost_usd += cost(usage, completion.model).total_usd

    def get_usage_stats(self) -> dict[str, Any]:
        return asdict(self.usage)
