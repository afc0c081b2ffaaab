"""Exercise 04, another valid solution: the key's problems as a StrEnum, the rate limits gathered in a
dataclass and returned with asdict, a duration read right to left by re.finditer with a check that the
matches tile the text, a for/else cascade that re-raises the last error, feature totals sorted by
dict.get, the FAQ question and time in one user message after the playbook, and the classifier's
instruction sent as a developer message through chat.completions.parse."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CLASSIFY_EFFORT, CLASSIFY_MODEL, CLASSIFY_SYSTEM, FALLBACK_MODELS, Ticket, stamp

PART = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|h|m|s)")
SCALE = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}


def parse_reset(text: str) -> float:
    value, position = 0.0, 0
    cleaned = text.strip()
    for match in PART.finditer(cleaned):
        if match.start() != position:
            break
        value += float(match["n"]) * SCALE[match["unit"]]
        position = match.end()
    if position == 0 or position != len(cleaned):
        raise ValueError(f"{text!r} is not a duration like 1s, 250ms or 1h2m3s")
    return value


@dataclass
class RateLimits:
    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


def _seconds(value: str | None) -> float | None:
    return None if value is None else parse_reset(value)


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    h = headers.get
    limits = RateLimits(
        limit_requests=_int(h("x-ratelimit-limit-requests")),
        remaining_requests=_int(h("x-ratelimit-remaining-requests")),
        reset_requests=_seconds(h("x-ratelimit-reset-requests")),
        limit_tokens=_int(h("x-ratelimit-limit-tokens")),
        remaining_tokens=_int(h("x-ratelimit-remaining-tokens")),
        reset_tokens=_seconds(h("x-ratelimit-reset-tokens")),
    )
    return asdict(limits)


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    pause = 0.0
    remaining = limits.get("remaining_requests")
    if remaining is not None and not remaining >= 1:
        pause = max(pause, float(limits.get("reset_requests") or 0))
    remaining = limits.get("remaining_tokens")
    if remaining is not None and remaining < tokens_needed:
        pause = max(pause, float(limits.get("reset_tokens") or 0))
    return pause


TRANSIENT = frozenset({408, 409, 429})


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    last_error: Exception | None = None
    for model in models:
        try:
            completion = client.chat.completions.create(model=model, messages=messages, **params)  # type: ignore[arg-type]
        except openai.APIConnectionError as err:
            last_error = err
        except openai.APIStatusError as err:
            if err.code == "insufficient_quota" or not (err.status_code in TRANSIENT or err.status_code >= 500):
                raise
            last_error = err
        else:
            text = completion.choices[0].message.content
            if text is None:
                raise RuntimeError(f"{model} sent no text")
            return text, model
    else:
        if last_error is None:
            raise ValueError("no models to try")
        raise last_error


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    return cost(row["usage"], row["model"]).total_usd


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for row in rows:
        totals.setdefault(row["feature"], 0.0)
        totals[row["feature"]] += request_cost(row)
    return {feature: totals[feature] for feature in sorted(totals, key=totals.__getitem__, reverse=True)}


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    copies = []
    for row in rows:
        copy = dict(row)
        copy["cost_usd"] = request_cost(row)
        copies.append(copy)
    copies.sort(key=lambda r: -r["cost_usd"])
    return copies[:n]


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SUPPORT_PLAYBOOK},
        {"role": "user", "content": f"{question}\n\n(asked {stamp(now)})"},
    ]


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    parsed = client.chat.completions.parse(
        model=CLASSIFY_MODEL,
        messages=[{"role": "developer", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}],
        response_format=Ticket,
        reasoning_effort=CLASSIFY_EFFORT,
        temperature=0.1,
    ).choices[0].message
    if parsed.parsed is None:
        raise ValueError(parsed.refusal or "no ticket came back")
    return parsed.parsed


class KeyProblem(StrEnum):
    MISSING = "missing"
    WHITESPACE = "whitespace"
    QUOTED = "quoted"
    WRONG_PREFIX = "wrong-prefix"
    TOO_SHORT = "too-short"


def diagnose_key(key: str | None) -> list[str]:
    if not (key or "").strip():
        return [KeyProblem.MISSING]
    assert key is not None
    problems: list[str] = []
    if any(ch.isspace() for ch in key):
        problems.append(KeyProblem.WHITESPACE)
    inner = key.strip()
    if len(inner) >= 2 and inner[0] in "'\"" and inner.endswith(inner[0]):
        problems.append(KeyProblem.QUOTED)
        inner = inner[1:-1].strip()
    if not inner.startswith("sk-"):
        problems.append(KeyProblem.WRONG_PREFIX)
    if len(inner) < 40:
        problems.append(KeyProblem.TOO_SHORT)
    return problems


def describe_key(key: str | None) -> str:
    problems = diagnose_key(key)
    if KeyProblem.MISSING in problems:
        return "API key: missing"
    length = len(key or "")
    return f"API key: {length} characters, " + (", ".join(problems) if problems else "no problems found")
