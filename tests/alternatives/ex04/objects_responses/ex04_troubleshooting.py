"""Exercise 04, another valid solution: small objects instead of free functions where it helps, a
hand-written duration scanner, a recursive cascade, the Responses API for the classifier, and a FAQ
layout with the playbook as a developer message and the time in a message of its own."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CLASSIFY_EFFORT, CLASSIFY_MODEL, CLASSIFY_SYSTEM, FALLBACK_MODELS, Ticket, stamp

# --------------------------------------------------------------------------- 1. rate limits

_SECONDS_PER = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_reset(text: str) -> float:
    """Seconds in a Go-style duration ("20ms", "1.5s", "6m0s", "1h2m3.5s"); ValueError otherwise."""
    total, number, i, seen = 0.0, "", 0, False
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else ch
        if unit not in _SECONDS_PER or not number or number.count(".") > 1:
            raise ValueError(f"not a duration: {text!r}")
        total += float(number) * _SECONDS_PER[unit]
        number, seen = "", True
        i += len(unit)
    if number or not seen:
        raise ValueError(f"not a duration: {text!r}")
    return total


@dataclass(frozen=True)
class Budget:
    limit: int | None
    remaining: int | None
    reset: float | None

    @classmethod
    def read(cls, headers: Mapping[str, str], kind: str) -> Budget:
        def number(name: str) -> int | None:
            value = headers.get(f"x-ratelimit-{name}-{kind}")
            return None if value is None else int(value)

        reset = headers.get(f"x-ratelimit-reset-{kind}")
        return cls(number("limit"), number("remaining"), None if reset is None else parse_reset(reset))

    def wait_for(self, needed: int) -> float:
        if self.remaining is None or self.remaining >= needed:
            return 0.0
        return self.reset or 0.0


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    """The six x-ratelimit-* values as numbers (None when a header is missing)."""
    out: dict[str, float | int | None] = {}
    for kind in ("requests", "tokens"):
        b = Budget.read(headers, kind)
        out |= {f"limit_{kind}": b.limit, f"remaining_{kind}": b.remaining, f"reset_{kind}": b.reset}
    return out


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    """0 when there is room, else the reset of each exhausted budget (the longest)."""
    requests = Budget(limits.get("limit_requests"), limits.get("remaining_requests"), limits.get("reset_requests"))
    tokens = Budget(limits.get("limit_tokens"), limits.get("remaining_tokens"), limits.get("reset_tokens"))
    return max(requests.wait_for(1), tokens.wait_for(tokens_needed))


# --------------------------------------------------------------------------- 2. fallback


def _worth_another_model(err: Exception) -> bool:
    if isinstance(err, openai.APIConnectionError):
        return True
    if isinstance(err, openai.RateLimitError):
        return err.code != "insufficient_quota"
    return isinstance(err, openai.APIStatusError) and (err.status_code in {408, 409} or err.status_code >= 500)


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    """(text, model) from the first model that answers; transient errors move on, others are raised."""
    first, *rest = models
    try:
        completion = client.chat.completions.create(model=first, messages=messages, **params)
    except (openai.APIStatusError, openai.APIConnectionError) as err:
        if not rest or not _worth_another_model(err):
            raise
        return complete_with_fallback(client, messages, rest, **params)
    text = completion.choices[0].message.content
    if text is None:
        raise RuntimeError(f"{first} answered without text")
    return text, first


# --------------------------------------------------------------------------- 3. costs


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    """One dict per line of a JSONL usage log."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def request_cost(row: Mapping[str, Any]) -> float:
    """USD for one logged request."""
    return cost(row["usage"], row["model"]).total_usd


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Total USD per feature, most expensive first."""
    totals: defaultdict[str, float] = defaultdict(float)
    for row in rows:
        totals[row["feature"]] += request_cost(row)
    return {k: totals[k] for k in sorted(totals, key=totals.__getitem__, reverse=True)}


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The n dearest requests, each with cost_usd."""
    import heapq

    return heapq.nlargest(n, ({**r, "cost_usd": request_cost(r)} for r in rows), key=lambda r: r["cost_usd"])


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    """The playbook as a developer message, then the time, then the question."""
    return [
        {"role": "developer", "content": SUPPORT_PLAYBOOK},
        {"role": "system", "content": f"The current time is {stamp(now)}."},
        {"role": "user", "content": question},
    ]


# --------------------------------------------------------------------------- 4. consistent outputs


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    """One email -> a Ticket, through the Responses API with a strict schema at temperature 0."""
    response = client.responses.parse(
        model=CLASSIFY_MODEL,
        input=[{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}],
        text_format=Ticket,
        reasoning={"effort": CLASSIFY_EFFORT},
        temperature=0,
    )
    if response.output_parsed is None:
        raise RuntimeError(f"no ticket in {response.id}")
    return response.output_parsed


# --------------------------------------------------------------------------- 5. keys


def diagnose_key(key: str | None) -> list[str]:
    """Problem codes for an API key ([] when well-formed)."""
    import re

    if key is None or key.strip() == "":
        return ["missing"]
    found = []
    if re.search(r"\s", key):
        found.append("whitespace")
    core = key.strip()
    m = re.fullmatch(r"(['\"])(.*)\1", core, flags=re.S)
    if m:
        found.append("quoted")
        core = m[2].strip()
    if not core.startswith("sk-"):
        found.append("wrong-prefix")
    if len(core) < 40:
        found.append("too-short")
    return found


def describe_key(key: str | None) -> str:
    """A printable line about the key: its length and its problems, no characters of it."""
    problems = diagnose_key(key)
    if "missing" in problems:
        return "OPENAI_API_KEY: missing (unset or blank)"
    assert key is not None
    return f"OPENAI_API_KEY: length {len(key)}, " + ("no problems found" if not problems else "problems found: " + " ".join(problems))
