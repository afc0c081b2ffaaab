"""Exercise 03, another valid solution: tenacity does the retrying, and the client calls the Responses API.

The policy is the same contract (labkit/course/ex03.py); only the machinery differs: tenacity's
`retry=` decides what is retryable, `wait=` prefers the server's Retry-After, `stop=` combines the
attempt limit, the 120 s rule and the deadline (tenacity computes the next wait before it asks
`stop`), and `reraise=True` re-raises the SDK's own error.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import openai
import tenacity

from labkit.costs import cost

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 120.0


class EmptyResponseError(openai.OpenAIError):
    """The API answered, but with no text."""


def is_retryable(err: BaseException) -> bool:
    """Timeouts, connection errors, 408, 409, 429 and 5xx, unless the server says otherwise."""
    if isinstance(err, openai.APIConnectionError):
        return True
    if not isinstance(err, openai.APIStatusError):
        return False
    says = (err.response.headers.get("x-should-retry") or "").lower()
    if says in {"true", "false"}:
        return says == "true"
    if err.status_code == 429 and err.code == "insufficient_quota":
        return False
    return err.status_code in RETRYABLE_STATUS or err.status_code >= 500


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """retry-after-ms, then retry-after (seconds or an HTTP date), in seconds; None when absent."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else email.utils.mktime_tz(parsed) - time.time()


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    """The most to wait before retry number ``retry`` (1, 2, ...): doubles each time, capped."""
    return min(max_delay, base_delay * 2 ** (retry - 1))


def _asked(err: BaseException | None) -> float | None:
    return retry_after_seconds(err.response.headers) if isinstance(err, openai.APIStatusError) else None


def _status(err: BaseException) -> int | str:
    if isinstance(err, openai.APIStatusError):
        return err.status_code
    return "timeout" if isinstance(err, openai.APITimeoutError) else "connection_error"


class GPTClient:
    """A Responses API client whose retries are a tenacity policy."""

    def __init__(self, client: openai.OpenAI, model: str, *, max_attempts: int = 4, base_delay: float = 1.0,
                 max_delay: float = 20.0, deadline: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
                 rng: random.Random | None = None) -> None:
        self.client = client.with_options(max_retries=0)
        self.model = model
        self.max_attempts, self.base_delay, self.max_delay, self.deadline = max_attempts, base_delay, max_delay, deadline
        self.sleep, self.clock = sleep, clock
        self.log = logger or logging.getLogger(__name__)
        self.rng = rng or random.Random()
        self.totals = {"requests": 0, "input_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                       "output_tokens": 0, "cost_usd": 0.0}

    # -- the policy, as tenacity callbacks ---------------------------------------------------
    def _wait(self, state: tenacity.RetryCallState) -> float:
        asked = _asked(state.outcome.exception() if state.outcome else None)
        if asked is not None and asked > 0:
            return asked
        return backoff_ceiling(state.attempt_number, self.base_delay, self.max_delay) * self.rng.uniform(0.5, 1.0)

    def _stop(self, started: float) -> Callable[[tenacity.RetryCallState], bool]:
        def stop(state: tenacity.RetryCallState) -> bool:
            asked = _asked(state.outcome.exception() if state.outcome else None)
            return (state.attempt_number >= self.max_attempts
                    or (asked is not None and asked > MAX_RETRY_AFTER)
                    or self.clock() + state.upcoming_sleep - started > self.deadline)
        return stop

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        assert err is not None
        self.log.warning("retrying", extra={"request_id": getattr(err, "request_id", None), "attempt": state.attempt_number,
                                            "status": _status(err), "wait": state.upcoming_sleep})

    # -- one call ----------------------------------------------------------------------------
    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        """The reply's text; the SDK's typed error when the call cannot succeed."""
        started = self.clock()
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_retryable), wait=self._wait, stop=self._stop(started),
            sleep=self.sleep, before_sleep=self._log_retry, reraise=True)
        try:
            raw = retrying(lambda: self.client.responses.with_raw_response.create(model=self.model, input=messages, **params))
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            self.log.error("giving up", extra={"request_id": getattr(err, "request_id", None),
                                               "attempt": retrying.statistics.get("attempt_number", 1),
                                               "status": _status(err), "wait": 0})
            raise
        self.log.info("answered", extra={"request_id": raw.headers.get("x-request-id"),
                                         "attempt": retrying.statistics.get("attempt_number", 1),
                                         "status": raw.status_code, "wait": 0})
        response = raw.parse()
        usage = response.usage
        if usage is not None:
            details = usage.input_tokens_details
            self.totals["requests"] += 1
            self.totals["input_tokens"] += usage.input_tokens
            self.totals["cached_tokens"] += details.cached_tokens or 0
            self.totals["cache_write_tokens"] += getattr(details, "cache_write_tokens", 0) or 0
            self.totals["output_tokens"] += usage.output_tokens
            self.totals["cost_usd"] += cost(usage, response.model).total_usd
        if not response.output_text:
            raise EmptyResponseError(f"no text in response {response.id} (status {response.status})")
        return response.output_text

    def get_usage_stats(self) -> dict[str, Any]:
        """Successful requests, tokens and cost so far."""
        return dict(self.totals)
