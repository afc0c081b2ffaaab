"""Exercise 04, another valid solution: table-driven rules (header names, unit suffixes tried
longest first, the key's problem checks), a cascade that collects its errors and re-raises the
last, min/max over generators for the pause, the time after the question in the user message,
and the classifier on the Responses API with a text format written as a dict, validated by pydantic."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import openai
from openai.lib._pydantic import to_strict_json_schema

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CLASSIFY_EFFORT, CLASSIFY_MODEL, CLASSIFY_SYSTEM, FALLBACK_MODELS, Ticket, stamp

# --------------------------------------------------------------------------- 1. rate limits

UNITS = (("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0))  # "ms" before "m"
HEADERS = {
    "limit_requests": ("x-ratelimit-limit-requests", int),
    "remaining_requests": ("x-ratelimit-remaining-requests", int),
    "reset_requests": ("x-ratelimit-reset-requests", "duration"),
    "limit_tokens": ("x-ratelimit-limit-tokens", int),
    "remaining_tokens": ("x-ratelimit-remaining-tokens", int),
    "reset_tokens": ("x-ratelimit-reset-tokens", "duration"),
}


def parse_reset(text: str) -> float:
    rest, total, parts = text, 0.0, 0
    while rest:
        digits = 0
        while digits < len(rest) and (rest[digits].isdigit() or (rest[digits] == "." and digits > 0)):
            digits += 1
        if digits == 0:
            raise ValueError(f"bad duration {text!r}")
        number, rest = rest[:digits], rest[digits:]
        unit = next(((u, f) for u, f in UNITS if rest.startswith(u)), None)
        if unit is None or number.endswith(".") or number.count(".") > 1:
            raise ValueError(f"bad duration {text!r}")
        total += float(number) * unit[1]
        rest = rest[len(unit[0]):]
        parts += 1
    if not parts:
        raise ValueError("empty duration")
    return total


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    def convert(raw: str | None, kind: Any) -> float | int | None:
        if raw is None:
            return None
        return parse_reset(raw) if kind == "duration" else kind(raw)

    return {key: convert(headers.get(name), kind) for key, (name, kind) in HEADERS.items()}


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    budgets = (("remaining_requests", 1, "reset_requests"), ("remaining_tokens", tokens_needed, "reset_tokens"))
    exhausted = (limits.get(reset) or 0.0 for left, need, reset in budgets
                 if limits.get(left) is not None and limits[left] < need)
    return max(exhausted, default=0.0)


# --------------------------------------------------------------------------- 2. fallback

NEVER_RECOVERS = {400, 401, 403, 404, 422}


def _recoverable(err: openai.APIError) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    if not isinstance(err, openai.APIStatusError):
        return False
    if err.code == "insufficient_quota" or err.status_code in NEVER_RECOVERS:
        return False
    return err.status_code >= 500 or err.status_code in (408, 409, 429)


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    errors: list[openai.APIError] = []
    for model in models:
        try:
            answer = client.chat.completions.create(model=model, messages=messages, **params)  # type: ignore[arg-type]
        except openai.APIError as err:
            if not _recoverable(err):
                raise
            errors.append(err)
            continue
        return str(answer.choices[0].message.content), model
    raise errors[-1]


# --------------------------------------------------------------------------- 3. costs


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line]


def request_cost(row: Mapping[str, Any]) -> float:
    return float(cost(row["usage"], row["model"]).total_usd)


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    features = {row["feature"] for row in rows}
    totals = [(sum(request_cost(r) for r in rows if r["feature"] == f), f) for f in features]
    return {f: usd for usd, f in sorted(totals, reverse=True)}


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    ranked = sorted(range(len(rows)), key=lambda i: request_cost(rows[i]), reverse=True)[:n]
    return [dict(rows[i], cost_usd=request_cost(rows[i])) for i in ranked]


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    return [{"role": "system", "content": SUPPORT_PLAYBOOK},
            {"role": "user", "content": f"{question}\n\n(asked at {stamp(now)})"}]


# --------------------------------------------------------------------------- 4. structured outputs

TICKET_TEXT_FORMAT = {"type": "json_schema", "name": "Ticket", "strict": True, "schema": to_strict_json_schema(Ticket)}


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    response = client.responses.create(
        model=CLASSIFY_MODEL,
        instructions=CLASSIFY_SYSTEM,
        input=email,
        text={"format": TICKET_TEXT_FORMAT},  # type: ignore[typeddict-item]
        reasoning={"effort": CLASSIFY_EFFORT},  # type: ignore[typeddict-item]
        temperature=0.2,
    )
    return Ticket.model_validate_json(response.output_text)


# --------------------------------------------------------------------------- 5. keys

KEY_RULES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("whitespace", lambda raw, bare: raw != raw.strip() or any(c.isspace() for c in raw.strip())),
    ("quoted", lambda raw, bare: bare != raw.strip()),
    ("wrong-prefix", lambda raw, bare: not bare.startswith("sk-")),
    ("too-short", lambda raw, bare: len(bare) < 40),
]


def _unquote(text: str) -> str:
    for q in ('"', "'"):
        if len(text) >= 2 and text.startswith(q) and text.endswith(q):
            return text[1:-1].strip()
    return text


def diagnose_key(key: str | None) -> list[str]:
    if not (key or "").strip():
        return ["missing"]
    assert key is not None
    bare = _unquote(key.strip())
    return [code for code, rule in KEY_RULES if rule(key, bare)]


def describe_key(key: str | None) -> str:
    codes = diagnose_key(key)
    if codes == ["missing"]:
        return "No API key found (missing): set OPENAI_API_KEY."
    summary = "no problems found" if not codes else "found: " + ", ".join(codes)
    return f"API key of length {len(key or '')}: {summary}."
