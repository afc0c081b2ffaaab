"""Exercise 04, another valid solution: durations tokenized with itertools.groupby (runs of digits and
dots, runs of letters), the headers read through a table of (key, header, converter), the cascade as a
while loop over an index, the bill with collections.Counter and heapq.nlargest, the FAQ prompt with
the question as the user message and the time in a developer message after it, the classifier through
chat.completions.parse at temperature 0.3 (the top of the low range), and the key diagnosed with
str methods in a few named steps."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CLASSIFY_EFFORT, CLASSIFY_MODEL, CLASSIFY_SYSTEM, FALLBACK_MODELS, Ticket, stamp

SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_reset(text: str) -> float:
    runs = ["".join(chars) for _, chars in groupby(text.strip(), key=lambda ch: ch.isdigit() or ch == ".")]
    if not runs or len(runs) % 2:
        raise ValueError(f"not a duration: {text!r}")
    total = 0.0
    for number, unit in zip(runs[::2], runs[1::2], strict=True):
        if unit not in SECONDS_PER or not number[:1].isdigit() or number.count(".") > 1 or number.endswith("."):
            raise ValueError(f"not a duration: {text!r}")
        total += float(number) * SECONDS_PER[unit]
    return total


HEADERS: tuple[tuple[str, str, Callable[[str], float | int]], ...] = (
    ("limit_requests", "x-ratelimit-limit-requests", int),
    ("remaining_requests", "x-ratelimit-remaining-requests", int),
    ("reset_requests", "x-ratelimit-reset-requests", parse_reset),
    ("limit_tokens", "x-ratelimit-limit-tokens", int),
    ("remaining_tokens", "x-ratelimit-remaining-tokens", int),
    ("reset_tokens", "x-ratelimit-reset-tokens", parse_reset),
)


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    found: dict[str, float | int | None] = {}
    for key, header, convert in HEADERS:
        raw = headers.get(header)
        found[key] = None if raw is None else convert(raw)
    return found


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    requests_left, tokens_left = limits.get("remaining_requests"), limits.get("remaining_tokens")
    wait_requests = (limits.get("reset_requests") or 0.0) if requests_left is not None and requests_left <= 0 else 0.0
    wait_tokens = (limits.get("reset_tokens") or 0.0) if tokens_left is not None and tokens_left < tokens_needed else 0.0
    return wait_requests if wait_requests > wait_tokens else wait_tokens


def _worth_another_model(err: Exception) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    if isinstance(err, openai.APIStatusError):
        if err.status_code == 429:
            return err.code != "insufficient_quota"
        return err.status_code >= 500 or err.status_code in (408, 409)
    return False


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    i = 0
    while True:
        model = models[i]
        try:
            reply = client.chat.completions.create(model=model, messages=messages, **params)  # type: ignore[arg-type]
        except (openai.APIStatusError, openai.APIConnectionError) as err:
            if not _worth_another_model(err) or i == len(models) - 1:
                raise
            i += 1
            continue
        text = reply.choices[0].message.content
        if text is None:
            raise RuntimeError(f"{model} answered without text")
        return text, model


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    return cost(row["usage"], row["model"]).total_usd


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    bill: Counter[str] = Counter()
    for row in rows:
        bill[row["feature"]] += request_cost(row)  # type: ignore[assignment]
    return dict(bill.most_common())


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    priced = (dict(row, cost_usd=request_cost(row)) for row in rows)
    return heapq.nlargest(n, priced, key=lambda row: row["cost_usd"])


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SUPPORT_PLAYBOOK},
        {"role": "user", "content": question},
        {"role": "developer", "content": f"The current time is {stamp(now)}."},
    ]


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    completion = client.chat.completions.parse(
        model=CLASSIFY_MODEL,
        messages=[{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}],
        response_format=Ticket,
        reasoning_effort=CLASSIFY_EFFORT,
        temperature=0.3,
    )
    ticket = completion.choices[0].message.parsed
    if ticket is None:
        raise ValueError("the model refused to classify this email")
    return ticket


def diagnose_key(key: str | None) -> list[str]:
    if key is None or key.strip() == "":
        return ["missing"]
    found: list[str] = []
    core = key.strip()
    if core != key or any(ch.isspace() for ch in core):
        found.append("whitespace")
    quoted = len(core) > 1 and core[0] in "\"'" and core[-1] == core[0]
    if quoted:
        found.append("quoted")
        core = core[1:-1].strip()
    if core[:3] != "sk-":
        found.append("wrong-prefix")
    if len(core) < 40:
        found.append("too-short")
    return found


def describe_key(key: str | None) -> str:
    codes = diagnose_key(key)
    if key is None or codes == ["missing"]:
        return "OPENAI_API_KEY: missing (set it in the environment or .env)"
    status = "ok" if not codes else "; ".join(codes)
    return f"OPENAI_API_KEY: {len(key)} chars, {status}"
