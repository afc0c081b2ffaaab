"""Exercise 03, another valid solution: the Responses API through with_raw_response, an
itertools.count loop, a Counter for the accounting, a level table for the log records, and
Retry-After dates read with email.utils.parsedate_tz / mktime_tz."""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from email.utils import mktime_tz, parsedate_tz
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import CONTRACT

RETRYABLE_STATUS = CONTRACT.retry_statuses
MAX_RETRY_AFTER = CONTRACT.max_retry_after
LEVELS = {"ok": logging.INFO, "retry": logging.WARNING, "give_up": logging.ERROR}


class EmptyResponseError(openai.OpenAIError):
    pass


def is_retryable(err: BaseException) -> bool:
    if isinstance(err, openai.APIStatusError):
        said = err.response.headers.get("x-should-retry", "")
        if said in ("true", "false"):
            return said == "true"
        no_credit = err.status_code == 429 and err.code == CONTRACT.no_credit_code
        return not no_credit and (err.status_code >= 500 or err.status_code in RETRYABLE_STATUS)
    return isinstance(err, openai.APIConnectionError)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    headers = headers or {}
    for name, unit in CONTRACT.retry_after_headers:
        text = headers.get(name)
        if text is None:
            continue
        try:
            return float(text) * unit
        except ValueError:
            if name != "retry-after":
                continue
            parsed = parsedate_tz(text)
            return None if parsed is None else mktime_tz(parsed) - time.time()
    return None


def backoff_ceiling(retry: int, base_delay: float, max_delay: float) -> float:
    return float(min(max_delay, base_delay * (2 ** (retry - 1))))


class GPTClient:
    def __init__(self, client: openai.OpenAI, model: str, *, max_attempts: int = 4, base_delay: float = 1.0,
                 max_delay: float = 20.0, deadline: float = 60.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
                 rng: random.Random | None = None) -> None:
        self.client = client.with_options(max_retries=0)
        self.model = model
        self.limits = (max_attempts, base_delay, max_delay, deadline)
        self.sleep = sleep
        self.clock = clock
        self.log = logger or logging.getLogger("gptclient")
        self.rng = rng or random.Random()
        self.usage: Counter[str] = Counter()
        self.spent = 0.0

    def _note(self, kind: str, attempt: int, status: int | str, request_id: str | None, wait: float) -> None:
        self.log.log(LEVELS[kind], "%s attempt=%s status=%s wait=%.3f", kind, attempt, status, wait,
                     extra={"request_id": request_id, "attempt": attempt, "status": status, "wait": wait})

    def chat_completion(self, messages: list[dict[str, Any]], **params: Any) -> str:
        max_attempts, base, cap, deadline = self.limits
        start = self.clock()
        for attempt in itertools.count(1):
            try:
                raw = self.client.responses.with_raw_response.create(model=self.model, input=messages, **params)  # type: ignore[arg-type]
                response = raw.parse()
            except openai.APIError as err:
                if not isinstance(err, (openai.APIStatusError, openai.APIConnectionError)):
                    raise
                status: int | str = (err.status_code if isinstance(err, openai.APIStatusError)
                                     else "timeout" if isinstance(err, openai.APITimeoutError) else "connection_error")
                request_id = err.request_id if isinstance(err, openai.APIStatusError) else None
                wait: float | None = None
                if attempt < max_attempts and is_retryable(err):
                    asked = retry_after_seconds(err.response.headers if isinstance(err, openai.APIStatusError) else None)
                    if asked is None or asked <= 0:
                        wait = backoff_ceiling(attempt, base, cap) * self.rng.uniform(*CONTRACT.jitter)
                    elif asked <= MAX_RETRY_AFTER:
                        wait = asked
                    if wait is not None and self.clock() - start + wait > deadline:
                        wait = None
                if wait is None:
                    self._note("give_up", attempt, status, request_id, 0.0)
                    raise
                self._note("retry", attempt, status, request_id, wait)
                self.sleep(wait)
                continue
            self._note("ok", attempt, raw.status_code, raw.headers.get("x-request-id"), 0.0)
            u = response.usage
            if u is not None:
                self.usage.update(requests=1, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                                  cached_tokens=u.input_tokens_details.cached_tokens or 0,
                                  cache_write_tokens=getattr(u.input_tokens_details, "cache_write_tokens", 0) or 0)
                self.spent += cost(u, response.model).total_usd
            if not response.output_text:
                raise EmptyResponseError(f"response {response.id} has no text (status {response.status})")
            return response.output_text
        raise RuntimeError("unreachable")

    def get_usage_stats(self) -> dict[str, Any]:
        keys = ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens")
        return {**{k: self.usage[k] for k in keys}, "cost_usd": self.spent}
