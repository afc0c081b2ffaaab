"""Exercise 04, another valid solution: one anchored regex with a group per unit (Go writes h, m, s,
ms in that order), a recursive cascade, defaultdict and sorted for the bill, the time in a message
of its own between the playbook and the question, the classifier's strict json_schema written by
hand from the pydantic model and validated with model_validate_json, and diagnose_key collecting a set."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CLASSIFY_EFFORT, CLASSIFY_MODEL, CLASSIFY_SYSTEM, FALLBACK_MODELS, Ticket, stamp

_NUM = r"\d+(?:\.\d+)?"
_GO = re.compile(rf"(?:(?P<h>{_NUM})h)?(?:(?P<m>{_NUM})m(?!s))?(?:(?P<s>{_NUM})s)?(?:(?P<ms>{_NUM})ms)?")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_reset(text: str) -> float:
    found = _GO.fullmatch(text) if text else None
    if found is None or not any(found.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration such as 20ms, 1.5s or 6m0s")
    return sum(float(v) * _SECONDS[k] for k, v in found.groupdict().items() if v is not None)


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    limits: dict[str, float | int | None] = {}
    for name in ("limit_requests", "remaining_requests", "reset_requests", "limit_tokens", "remaining_tokens", "reset_tokens"):
        field, kind = name.split("_")
        raw = headers.get(f"x-ratelimit-{field}-{kind}")
        if raw is None:
            limits[name] = None
        elif field == "reset":
            limits[name] = parse_reset(raw)
        else:
            limits[name] = int(raw)
    return limits


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    pause = 0.0
    requests_left = limits.get("remaining_requests")
    if requests_left is not None and requests_left == 0:
        pause = max(pause, float(limits.get("reset_requests") or 0))
    tokens_left = limits.get("remaining_tokens")
    if tokens_left is not None and tokens_needed > tokens_left:
        pause = max(pause, float(limits.get("reset_tokens") or 0))
    return pause


def _another_model_could_work(err: Exception) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    if isinstance(err, openai.APIStatusError):
        if err.status_code == 429 and err.code == "insufficient_quota":
            return False
        return err.status_code >= 500 or err.status_code in {408, 409, 429}
    return False


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    first, *rest = models
    try:
        reply = client.chat.completions.create(model=first, messages=messages, **params)  # type: ignore[arg-type]
    except (openai.APIStatusError, openai.APIConnectionError) as err:
        if rest and _another_model_could_work(err):
            return complete_with_fallback(client, messages, rest, **params)
        raise
    return reply.choices[0].message.content or "", first


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    return cost(row["usage"], row["model"]).total_usd


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    bill: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        bill[row["feature"]] += request_cost(row)
    ordered = sorted(bill, key=lambda feature: -bill[feature])
    return {feature: bill[feature] for feature in ordered}


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    priced = []
    for row in rows:
        item = copy.deepcopy(dict(row))
        item["cost_usd"] = request_cost(row)
        priced.append(item)
    priced.sort(key=lambda item: -item["cost_usd"])
    return priced[:max(n, 0)]


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SUPPORT_PLAYBOOK},
        {"role": "system", "content": f"The current time is {stamp(now)}."},
        {"role": "user", "content": question},
    ]


_TICKET_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "ticket", "strict": True,
                    "schema": {**Ticket.model_json_schema(), "additionalProperties": False}},
}


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    completion = client.chat.completions.create(
        model=CLASSIFY_MODEL,
        messages=[{"role": "developer", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}],
        response_format=_TICKET_FORMAT,  # type: ignore[arg-type]
        reasoning_effort=CLASSIFY_EFFORT,  # type: ignore[arg-type]
        temperature=0.1,
    )
    content = completion.choices[0].message.content
    if not content:
        raise ValueError(f"no ticket for this email (refusal: {completion.choices[0].message.refusal!r})")
    return Ticket.model_validate_json(content)


def diagnose_key(key: str | None) -> list[str]:
    if key is None or key.strip() == "":
        return ["missing"]
    found: set[str] = set()
    trimmed = key.strip()
    if trimmed != key or re.search(r"\s", trimmed):
        found.add("whitespace")
    if len(trimmed) > 1 and trimmed[0] in "\"'" and trimmed[-1] == trimmed[0]:
        found.add("quoted")
        trimmed = trimmed[1:-1].strip()
    if trimmed[:3] != "sk-":
        found.add("wrong-prefix")
    if len(trimmed) < 40:
        found.add("too-short")
    order = ["whitespace", "quoted", "wrong-prefix", "too-short"]
    return [code for code in order if code in found]


def describe_key(key: str | None) -> str:
    codes = diagnose_key(key)
    if "missing" in codes:
        return "OPENAI_API_KEY: missing (set it in your environment or .env)"
    length = len(key or "")
    return f"OPENAI_API_KEY: {length} chars, " + ("ok" if not codes else "issues=" + "|".join(codes))
