"""Exercise 04 (reference solution): the lesson's five common problems, diagnosed and fixed."""

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import openai
from pydantic import BaseModel

from labkit.checks.ex03 import SUPPORT_PLAYBOOK
from labkit.costs import cost

# --------------------------------------------------------------------------- 1. rate limits

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_reset(text: str) -> float:
    """Seconds in an ``x-ratelimit-reset-*`` value such as ``"20ms"``, ``"1.5s"``, ``"6m0s"`` or ``"1h2m3s"``."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a rate-limit reset duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    """The six ``x-ratelimit-*`` headers as numbers (resets in seconds); None for a missing header."""
    out: dict[str, float | int | None] = {}
    for kind in ("requests", "tokens"):
        for field in ("limit", "remaining"):
            value = headers.get(f"x-ratelimit-{field}-{kind}")
            out[f"{field}_{kind}"] = int(value) if value is not None else None
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        out[f"reset_{kind}"] = parse_reset(reset) if reset is not None else None
    return out


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    """Seconds to wait before sending a request of ``tokens_needed`` tokens: 0 if there is room."""
    waits = [0.0]
    if limits.get("remaining_requests") is not None and limits["remaining_requests"] < 1:
        waits.append(limits.get("reset_requests") or 0.0)
    if limits.get("remaining_tokens") is not None and limits["remaining_tokens"] < tokens_needed:
        waits.append(limits.get("reset_tokens") or 0.0)
    return max(waits)


# --------------------------------------------------------------------------- 2. overloaded: fallback

FALLBACK_MODELS = ("gpt-5", "gpt-4o", "gpt-5-mini")  # the lesson's cascade


def _transient(err: BaseException) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    return isinstance(err, openai.APIStatusError) and (err.status_code in (408, 409, 429) or err.status_code >= 500)


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    """``(text, model)`` from the first model that answers; falls back only on transient errors."""
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
            raise RuntimeError(f"{model} returned no text (finish_reason={completion.choices[0].finish_reason})")
        return content, model
    assert last is not None, "models must not be empty"
    raise last


# --------------------------------------------------------------------------- 3. costs


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    """One dict per line of a JSONL usage log."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    """USD for one logged request, priced from its usage (cached input and reasoning included)."""
    return cost(row["usage"], row["model"]).total_usd


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Total USD per feature, most expensive first."""
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["feature"]] = totals.get(row["feature"], 0.0) + request_cost(row)
    return dict(sorted(totals.items(), key=lambda kv: kv[1], reverse=True))


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` most expensive requests, each a copy of its row with ``cost_usd`` added, dearest first."""
    priced = [{**row, "cost_usd": request_cost(row)} for row in rows]
    return sorted(priced, key=lambda r: r["cost_usd"], reverse=True)[:n]


def stamp(now: datetime) -> str:
    """How the FAQ bot writes the current time into its prompt."""
    return now.strftime("%Y-%m-%d %H:%M")


def faq_messages_v1(question: str, now: datetime) -> list[dict[str, str]]:
    """The FAQ bot as deployed: the timestamp comes first, so no two prompts share a prefix."""
    return [
        {"role": "system", "content": f"Current time: {stamp(now)}.\n{SUPPORT_PLAYBOOK}"},
        {"role": "user", "content": question},
    ]


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    """Cache-friendly: the unchanging playbook first, everything that varies after it."""
    return [
        {"role": "system", "content": SUPPORT_PLAYBOOK},
        {"role": "user", "content": f"Current time: {stamp(now)}.\n{question}"},
    ]


# --------------------------------------------------------------------------- 4. inconsistent outputs

CLASSIFY_MODEL = "gpt-4.1-mini"
CLASSIFY_SYSTEM = (
    "You triage customer emails for TaskFlow Pro. Classify the email's sentiment, urgency and category, "
    "and summarise it in one sentence. Urgency is critical only for data loss, security incidents or a "
    "complete outage."
)


class Ticket(BaseModel):
    sentiment: Literal["positive", "neutral", "negative"]
    urgency: Literal["low", "medium", "high", "critical"]
    category: Literal["billing", "technical", "sales", "other"]
    summary: str


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    """One email -> a validated Ticket: Structured Outputs for the shape, temperature 0 for stability."""
    completion = client.chat.completions.parse(
        model=CLASSIFY_MODEL,
        messages=[{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}],
        response_format=Ticket,
        temperature=0,
    )
    message = completion.choices[0].message
    if message.parsed is None:
        raise RuntimeError(f"no ticket: {message.refusal or completion.choices[0].finish_reason}")
    return message.parsed


# --------------------------------------------------------------------------- 5. authentication (401)


def diagnose_key(key: str | None) -> list[str]:
    """Problems with an API key, as codes: missing, whitespace, quoted, wrong-prefix, too-short."""
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


def describe_key(key: str | None) -> str:
    """One line that is safe to print or log: never any character of the key beyond ``sk-``."""
    problems = diagnose_key(key)
    if problems == ["missing"]:
        return "key missing: OPENAI_API_KEY is unset or empty; export it or put it in .env"
    assert key is not None
    shape = "starts with sk-" if key.strip().strip("'\"").startswith("sk-") else "does not start with sk-"
    verdict = "looks well-formed" if not problems else "problems: " + ", ".join(problems)
    return f"key set, {len(key)} characters, {shape}; {verdict}"
