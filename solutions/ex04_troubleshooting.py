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

### BEGIN SOLUTION
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
### END SOLUTION


def parse_reset(text: str) -> float:
    """Seconds in an `x-ratelimit-reset-*` value such as "20ms", "1.5s", "6m0s" or "1h2m3s".

    Raise ValueError for anything else ("", "soon", "5 minutes"): a wrong pause is worse than none."""
    ### BEGIN SOLUTION: parse a reset duration
    ### TODO: add up each number times its unit (h = 3600, m = 60, s = 1, ms = 0.001); re.findall helps,
    ### but check that the parts you found make up the whole text.
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a rate-limit reset duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)
    ### END SOLUTION


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    """The six `x-ratelimit-*` headers as numbers: limit_requests, remaining_requests, reset_requests
    (seconds), limit_tokens, remaining_tokens, reset_tokens (seconds). None for a missing header."""
    ### BEGIN SOLUTION: read the rate-limit headers
    ### TODO: headers look like x-ratelimit-limit-requests, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens.
    out: dict[str, float | int | None] = {}
    for kind in ("requests", "tokens"):
        for field in ("limit", "remaining"):
            value = headers.get(f"x-ratelimit-{field}-{kind}")
            out[f"{field}_{kind}"] = int(value) if value is not None else None
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        out[f"reset_{kind}"] = parse_reset(reset) if reset is not None else None
    return out
    ### END SOLUTION


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    """Seconds to wait before sending a request of `tokens_needed` tokens: 0 if there is room,
    else the reset time of each exhausted budget (the longest, if both are)."""
    ### BEGIN SOLUTION: decide how long to pause
    ### TODO: compare remaining_requests with 1 and remaining_tokens with tokens_needed.
    waits = [0.0]
    if limits.get("remaining_requests") is not None and limits["remaining_requests"] < 1:
        waits.append(limits.get("reset_requests") or 0.0)
    if limits.get("remaining_tokens") is not None and limits["remaining_tokens"] < tokens_needed:
        waits.append(limits.get("reset_tokens") or 0.0)
    return max(waits)
    ### END SOLUTION


# --------------------------------------------------------------------------- 2. overloaded: fallback

### BEGIN SOLUTION
def _transient(err: BaseException) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    if not isinstance(err, openai.APIStatusError) or err.code == "insufficient_quota":
        return False
    return err.status_code in (408, 409, 429) or err.status_code >= 500
### END SOLUTION


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    """`(text, model)` from the first model in `models` (the lesson's cascade) that answers.

    Try each model once, in order. Fall back only on transient errors (openai.APIConnectionError,
    which includes timeouts, and statuses 408, 409, 429, >= 500), where another model could succeed.
    Re-raise anything else at once (400, 401, 403, 404 such as a retired model, 422, and a 429 whose
    code is "insufficient_quota": no credit fails on every model), and re-raise the last error if
    every model failed. The contract is `FALLBACK` in labkit/course/ex04.py.
    """
    ### BEGIN SOLUTION: write the fallback cascade
    ### TODO: loop over models; client.chat.completions.create(model=model, messages=messages, **params).
    last: BaseException | None = None
    for model in models:
        try:
            completion = client.chat.completions.create(model=model, messages=messages, **params)
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            if not _transient(err):
                raise  # a bad request or key fails on every model: surface it
            last = err
            continue
        content = completion.choices[0].message.content
        if content is None:
            raise RuntimeError(f"{model} returned no text")
        return content, model
    assert last is not None, "models must not be empty"
    raise last
    ### END SOLUTION


# --------------------------------------------------------------------------- 3. costs


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    """One dict per line of a JSONL usage log (fields: ts, request_id, feature, model, effort, prompt_prefix, usage)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    """USD for one logged request, priced from row["usage"] for row["model"] with the catalog
    (cached input and reasoning included)."""
    ### BEGIN SOLUTION: price one request
    ### TODO: one line with labkit.costs.cost.
    return cost(row["usage"], row["model"]).total_usd
    ### END SOLUTION


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Total USD per feature, as a dict ordered most expensive first."""
    ### BEGIN SOLUTION: sum cost per feature
    ### TODO
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["feature"]] = totals.get(row["feature"], 0.0) + request_cost(row)
    return dict(sorted(totals.items(), key=lambda kv: kv[1], reverse=True))
    ### END SOLUTION


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The `n` most expensive requests, dearest first, each a copy of its row with "cost_usd" added."""
    ### BEGIN SOLUTION: find the dearest requests
    ### TODO
    priced = [{**row, "cost_usd": request_cost(row)} for row in rows]
    return sorted(priced, key=lambda r: r["cost_usd"], reverse=True)[:n]
    ### END SOLUTION


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    """The same information as faq_messages_v1 (the playbook, the time written by stamp(now), the
    question), ordered so that every request shares a prefix of at least 1,024 tokens, which the
    prompt cache can serve (labkit.course.ex04.shared_prefix_tokens measures it)."""
    ### BEGIN SOLUTION: make the FAQ prompt cache-friendly
    ### TODO: keep the playbook, the time (use stamp(now)) and the question; change the order.
    return [
        {"role": "system", "content": SUPPORT_PLAYBOOK},
        {"role": "user", "content": f"Current time: {stamp(now)}.\n{question}"},
    ]
    ### END SOLUTION


# --------------------------------------------------------------------------- 4. inconsistent outputs


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    """One email -> a validated Ticket (the schema in labkit/course/ex04.py), the same way every time.

    Send CLASSIFY_MODEL (or another current model) a system message (CLASSIFY_SYSTEM) and the email
    as the user message, with Structured Outputs and a low temperature (0 to 0.3). Today's models
    take a temperature only at reasoning effort "none" (CLASSIFY_EFFORT); at any other effort the
    API answers 400.
    """
    ### BEGIN SOLUTION: classify with structured outputs
    ### TODO: client.chat.completions.parse(..., response_format=Ticket, reasoning_effort=..., temperature=...);
    ### return .parsed. (Or client.responses.parse(..., text_format=Ticket, reasoning={"effort": ...}).)
    completion = client.chat.completions.parse(
        model=CLASSIFY_MODEL,
        messages=[{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}],
        response_format=Ticket,
        reasoning_effort=CLASSIFY_EFFORT,
        temperature=0,
    )
    message = completion.choices[0].message
    if message.parsed is None:
        raise RuntimeError(f"no ticket (refusal: {message.refusal!r})")
    return message.parsed
    ### END SOLUTION


# --------------------------------------------------------------------------- 5. authentication (401)


def diagnose_key(key: str | None) -> list[str]:
    """Problems with an API key, as codes: "missing" (None or blank), "whitespace" (around or inside
    it), "quoted" (wrapped in matching quotes), "wrong-prefix" (not "sk-" once stripped and unquoted),
    "too-short" (under 40 characters once stripped and unquoted). [] for a well-formed key."""
    ### BEGIN SOLUTION: diagnose the key
    ### TODO
    if key is None or not key.strip():
        return ["missing"]
    problems = []
    if key != key.strip() or any(ch.isspace() for ch in key.strip()):
        problems.append("whitespace")
    bare = key.strip()
    if len(bare) >= 2 and bare[0] == bare[-1] and bare[0] in "'\"":
        problems.append("quoted")
        bare = bare[1:-1].strip()
    if not bare.startswith("sk-"):
        problems.append("wrong-prefix")
    if len(bare) < 40:
        problems.append("too-short")
    return problems
    ### END SOLUTION


def describe_key(key: str | None) -> str:
    """One line that is safe to print or log: the problem codes (from diagnose_key) and the key's
    length, and never any character of the key."""
    ### BEGIN SOLUTION: describe the key safely
    ### TODO: build it from diagnose_key(key); do not slice the key.
    problems = diagnose_key(key)
    if problems == ["missing"]:
        return "key missing: OPENAI_API_KEY is unset or empty; export it or put it in .env"
    assert key is not None
    verdict = "looks well-formed" if not problems else "problems: " + ", ".join(problems)
    return f"key set, {len(key)} characters; {verdict}"
    ### END SOLUTION
