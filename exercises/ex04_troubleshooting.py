"""Exercise 04: the lesson's five common problems, diagnosed and fixed.

Edit the TODOs, then run `labkit check ex04` (or the last cell of notebooks/04_troubleshooting.ipynb).
Five parts, one per problem:

1. "Rate limit exceeded": read the `x-ratelimit-*` headers and pause only as long as needed.
2. "Model overloaded": a fallback cascade that moves on only for transient errors.
3. "Costs higher than expected": price a usage log, find the expensive parts, fix the FAQ prompt.
4. "Inconsistent outputs": Structured Outputs and a low temperature.
5. "401 Unauthorized": diagnose a key without ever printing it.

The lesson's data and contracts (the cascade's models and when to fall back, the prompt-caching
rules, the support playbook, the classifier's prompt and its `Ticket` schema) are in
labkit/course/ex04.py and labkit/course/ex03.py.
"""

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import (
    CLASSIFY_EFFORT,
    CLASSIFY_MODEL,
    CLASSIFY_SYSTEM,
    FALLBACK_MODELS,
    Ticket,
    faq_messages_v1,  # noqa: F401  (the FAQ prompt as deployed, the timestamp first: compare yours with it)
    stamp,
)

# --------------------------------------------------------------------------- 1. rate limits


def parse_reset(text: str) -> float:
    """Seconds in an `x-ratelimit-reset-*` value such as "20ms", "1.5s", "6m0s" or "1h2m3s".

    Raise ValueError for anything else ("", "soon", "5 minutes"): a wrong pause is worse than none."""
    # TODO: add up each number times its unit (h = 3600, m = 60, s = 1, ms = 0.001); re.findall helps,
    # but check that the parts you found make up the whole text.
    raise NotImplementedError("parse a reset duration")


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    """The six `x-ratelimit-*` headers as numbers: limit_requests, remaining_requests, reset_requests
    (seconds), limit_tokens, remaining_tokens, reset_tokens (seconds). None for a missing header."""
    # TODO: headers look like x-ratelimit-limit-requests, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens.
    raise NotImplementedError("read the rate-limit headers")


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    """Seconds to wait before sending a request of `tokens_needed` tokens: 0 if there is room,
    else the reset time of each exhausted budget (the longest, if both are)."""
    # TODO: compare remaining_requests with 1 and remaining_tokens with tokens_needed.
    raise NotImplementedError("decide how long to pause")


# --------------------------------------------------------------------------- 2. overloaded: fallback


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    """`(text, model)` from the first model in `models` (the lesson's cascade) that answers.

    Try each model once, in order. Fall back only on transient errors (openai.APIConnectionError,
    which includes timeouts, and statuses 408, 409, 429, >= 500), where another model could succeed.
    Re-raise anything else at once (400, 401, 403, 404 such as a retired model, 422, and a 429 whose
    code is "insufficient_quota": no credit fails on every model), and re-raise the last error if
    every model failed. The contract is `FALLBACK` in labkit/course/ex04.py.
    """
    # TODO: loop over models; client.chat.completions.create(model=model, messages=messages, **params).
    raise NotImplementedError("write the fallback cascade")


# --------------------------------------------------------------------------- 3. costs


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    """One dict per line of a JSONL usage log (fields: ts, request_id, feature, model, effort, prompt_prefix, usage)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    """USD for one logged request, priced from row["usage"] for row["model"] with the catalog
    (cached input and reasoning included)."""
    # TODO: one line with labkit.costs.cost.
    raise NotImplementedError("price one request")


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Total USD per feature, as a dict ordered most expensive first."""
    # TODO
    raise NotImplementedError("sum cost per feature")


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The `n` most expensive requests, dearest first, each a copy of its row with "cost_usd" added."""
    # TODO
    raise NotImplementedError("find the dearest requests")


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    """The same information as faq_messages_v1 (the playbook, the time written by stamp(now), the
    question), ordered so that every request shares a prefix of at least 1,024 tokens, which the
    prompt cache can serve (labkit.course.ex04.shared_prefix_tokens measures it)."""
    # TODO: keep the playbook, the time (use stamp(now)) and the question; change the order.
    raise NotImplementedError("make the FAQ prompt cache-friendly")


# --------------------------------------------------------------------------- 4. inconsistent outputs


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    """One email -> a validated Ticket (the schema in labkit/course/ex04.py), the same way every time.

    Send CLASSIFY_MODEL (or another current model) a system message (CLASSIFY_SYSTEM) and the email
    as the user message, with Structured Outputs and a low temperature (0 to 0.3). Today's models
    take a temperature only at reasoning effort "none" (CLASSIFY_EFFORT); at any other effort the
    API answers 400.
    """
    # TODO: client.chat.completions.parse(..., response_format=Ticket, reasoning_effort=..., temperature=...);
    # return .parsed. (Or client.responses.parse(..., text_format=Ticket, reasoning={"effort": ...}).)
    raise NotImplementedError("classify with structured outputs")


# --------------------------------------------------------------------------- 5. authentication (401)


def diagnose_key(key: str | None) -> list[str]:
    """Problems with an API key, as codes: "missing" (None or blank), "whitespace" (around or inside
    it), "quoted" (wrapped in matching quotes), "wrong-prefix" (not "sk-" once stripped and unquoted),
    "too-short" (under 40 characters once stripped and unquoted). [] for a well-formed key."""
    # TODO
    raise NotImplementedError("diagnose the key")


def describe_key(key: str | None) -> str:
    """One line that is safe to print or log: the problem codes (from diagnose_key) and the key's
    length, and never any character of the key."""
    # TODO: build it from diagnose_key(key); do not slice the key.
    raise NotImplementedError("describe the key safely")

# labkit starter 3624d9a2a0c5 (made from solutions/ex04_troubleshooting.py by `labkit exercises build`)
