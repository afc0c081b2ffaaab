"""Exercise 03: a production client that retries by error type, honours Retry-After, keeps a
deadline, logs every attempt and accounts for usage and cost.

Edit the TODOs, then run `labkit check ex03` (or the last cell of notebooks/03_production_client.ipynb).
The checks run your GPTClient against scripted failures (every status below, timeouts, dropped
connections, each Retry-After spelling) on a fake clock: pass `sleep` and `clock` through and never
call time.sleep yourself. They compare what your client does (requests sent, waits, the error
raised, log records) with the reference solution on the same scenarios.

Use either API inside chat_completion: Chat Completions (`client.chat.completions`) or the
Responses API (`client.responses`, with `input=messages`). The contract is the same; it is
written once, as data, in labkit/course/ex03.py (`CONTRACT`):

* **Who retries.** GPTClient does, not the SDK: in __init__ keep `client.with_options(max_retries=0)`
  (the SDK retries twice by default, so stacking would turn 4 attempts into 12 requests).
* **What is retried.** Timeouts and connection errors (`openai.APIConnectionError`, whose subclass is
  `openai.APITimeoutError`), and statuses 408, 409, 429 and every status >= 500. Nothing else:
  400, 401, 403, 404, 422 are re-raised at once, and so is a 429 whose error code is
  `insufficient_quota` (no credit left: waiting adds none). A response header
  `x-should-retry: true|false` has the last word.
* **How long to wait** before retry n (n = 1, 2, ...): if the error response has `retry-after-ms`
  (milliseconds) or else `retry-after` (seconds, or an HTTP date) asking for more than 0 s, wait
  that long; if it asks for more than 120 s, do not retry at all (the SDK's rule). Otherwise wait
  `min(max_delay, base_delay * 2**(n-1))` times a random factor in [0.5, 1.0] drawn from `rng`.
* **When to stop.** After `max_attempts` attempts, or when the next wait would end later than
  `deadline` seconds after the call started (measured with `clock()`): re-raise the last error,
  the SDK's typed exception. Never return None: an answer with no text raises EmptyResponseError.
* **Logging.** One record per attempt on `logger`, with
  `extra={"request_id": ..., "attempt": n, "status": 200 | 429 | "timeout" | "connection_error" | ..., "wait": seconds}`
  (`request_id`: the error's, or the answer's `x-request-id` header, None if there was no response;
  `wait`: the sleep before the next attempt, 0 when there is none), at level INFO for a success,
  WARNING for a failure that will be retried, ERROR for the last one. Never log the API key or
  the request's headers (the Authorization header carries the key).
* **Accounting.** `get_usage_stats()` returns requests (successful calls), input_tokens,
  cached_tokens, cache_write_tokens, output_tokens (from each answer's usage) and cost_usd
  (`labkit.costs.cost(usage, model).total_usd`, which prices cached reads and cache writes).
  An answer with no text counts too: it was billed, even though chat_completion raises.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import openai

from labkit.costs import cost  # for the accounting in chat_completion
from labkit.course.ex03 import CONTRACT

RETRYABLE_STATUS = CONTRACT.retry_statuses  # {408, 409, 429}, and every status >= 500
MAX_RETRY_AFTER = CONTRACT.max_retry_after  # 120 s: a server that asks for longer is not retried


class EmptyResponseError(openai.OpenAIError):
    """The API answered, but with no text (filtered output, a refusal or a tool call): never return None."""


def is_retryable(err: BaseException) -> bool:
    """Worth another attempt: timeouts, connection errors, 408, 409, 429 and 5xx.

    400, 401, 403, 404 and 422 are never retried: the same request fails the same way.
    A 429 with code ``insufficient_quota`` (no credit left) is not retried either, and the
    server's ``x-should-retry`` header, when it says "true" or "false", has the last word.
    """
    # TODO: isinstance checks on openai.APIConnectionError and openai.APIStatusError (err.status_code,
    # err.code, err.response.headers).
    raise NotImplementedError("decide which errors are worth another attempt")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait in seconds: ``retry-after-ms`` first, then ``retry-after``
    (seconds, or an HTTP date such as "Wed, 21 Oct 2026 07:28:00 GMT"); None if absent or unreadable."""
    # TODO: read the two headers (they are strings); a retry-after that is not a number may be an
    # HTTP date: email.utils.parsedate_to_datetime reads it, and time.time() is now.
    raise NotImplementedError("read the Retry-After headers")


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    """The most to wait before retry number ``retry`` (1, 2, ...): doubles each time, capped."""
    return min(max_delay, base_delay * 2 ** (retry - 1))


class GPTClient:
    """A chat client that retries what is worth retrying, and only that.

    Keep the client you are given as ``client.with_options(max_retries=0)``: this class does the
    retrying, so the SDK must not retry underneath it (otherwise one call could make
    ``max_attempts x (max_retries + 1)`` requests).
    """

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
        # TODO: switch the SDK's own retries off on the client you keep (see the module docstring).
        self.client = client
        self.model = model
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline
        self.sleep = sleep
        self.clock = clock
        self.log = logger or logging.getLogger("ex03.gptclient")
        self.rng = rng or random.Random()
        self.stats: dict[str, Any] = {key: 0 for key in CONTRACT.stats} | {"cost_usd": 0.0}

    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        """The reply's text; raises the SDK's typed error when the call cannot succeed."""
        # TODO: loop over attempts 1..max_attempts:
        #   - send client.chat.completions.with_raw_response.create(model=self.model, messages=messages, **params)
        #     (raw.headers has x-request-id, raw.status_code the status, raw.parse() the ChatCompletion);
        #   - on openai.APIStatusError / openai.APIConnectionError: decide retry or give up, log, sleep, continue;
        #   - on success: log, account for usage, return the text (raise EmptyResponseError if there is none).
        raise NotImplementedError("write the retry loop")

    def get_usage_stats(self) -> dict[str, Any]:
        """Successful requests, tokens (input, cached, cache_write, output) and cost in USD."""
        # TODO: return a copy of what chat_completion accumulated.
        raise NotImplementedError("report usage and cost")

# labkit starter 984b71c0aeab (made from solutions/ex03_production_client.py by `labkit exercises build`)
