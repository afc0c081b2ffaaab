"""Exercise 04, another valid solution in a functional style: one full-match regex for durations,
expressions instead of loops, a for/else cascade, itertools for the bill, the time appended to the
end of the system message (the playbook stays the shared prefix), and the classifier on the
everyday model at effort "none" with a low temperature."""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import openai

from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CLASSIFY_SYSTEM, FALLBACK_MODELS, Ticket, stamp
from labkit.course.models import DEFAULT

_GO = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?")


def parse_reset(text: str) -> float:
    """Seconds in an x-ratelimit-reset-* duration; ValueError for anything else."""
    m = _GO.fullmatch(text.strip())
    if not m or not any(m.groupdict().values()):
        raise ValueError(f"{text!r} is not a duration")
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(v) * scale[k] for k, v in m.groupdict().items() if v)


def read_rate_limits(headers: Mapping[str, str]) -> dict[str, float | int | None]:
    """limit_/remaining_/reset_ requests and tokens from the headers (None when absent)."""
    def get(name: str, convert: Any) -> Any:
        value = headers.get(f"x-ratelimit-{name.replace('_', '-', 1)}")
        return None if value is None else convert(value)

    return {f"{field}_{kind}": get(f"{field}_{kind}", parse_reset if field == "reset" else int)
            for kind in ("requests", "tokens") for field in ("limit", "remaining", "reset")}


def pause_before(limits: Mapping[str, Any], tokens_needed: int) -> float:
    """How long to wait before a request of tokens_needed tokens."""
    short = [("requests", 1), ("tokens", tokens_needed)]
    return max([0.0] + [limits.get(f"reset_{kind}") or 0.0 for kind, need in short
                        if limits.get(f"remaining_{kind}") is not None and limits[f"remaining_{kind}"] < need])


def complete_with_fallback(client: openai.OpenAI, messages: list[dict[str, Any]],
                           models: Sequence[str] = FALLBACK_MODELS, **params: Any) -> tuple[str, str]:
    """(text, model): fall back on transient errors only, re-raise the rest, and the last."""
    error: Exception | None = None
    for model in models:
        try:
            reply = client.chat.completions.create(model=model, messages=messages, **params)
        except openai.APIConnectionError as err:
            error = err
        except openai.APIStatusError as err:
            transient = (err.status_code in (408, 409, 429) or err.status_code >= 500) and err.code != "insufficient_quota"
            if not transient:
                raise
            error = err
        else:
            return reply.choices[0].message.content or "", model
    else:
        assert error is not None
        raise error


def load_usage_log(path: str | Path) -> list[dict[str, Any]]:
    """One dict per JSONL line."""
    return list(map(json.loads, filter(str.strip, Path(path).read_text(encoding="utf-8").splitlines())))


def request_cost(row: Mapping[str, Any]) -> float:
    """USD for one logged request."""
    return cost(row["usage"], row["model"]).total_usd


def cost_by_feature(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """USD per feature, dearest first."""
    feature = operator.itemgetter("feature")
    totals = {k: sum(map(request_cost, group)) for k, group in itertools.groupby(sorted(rows, key=feature), key=feature)}
    return dict(sorted(totals.items(), key=operator.itemgetter(1), reverse=True))


def top_requests(rows: Sequence[Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The n dearest requests with their cost_usd."""
    return sorted(({**r, "cost_usd": request_cost(r)} for r in rows), key=operator.itemgetter("cost_usd"), reverse=True)[:n]


def faq_messages(question: str, now: datetime) -> list[dict[str, str]]:
    """The playbook first; the time at the end of the same system message; the question last."""
    return [{"role": "system", "content": f"{SUPPORT_PLAYBOOK}\n\nCurrent time: {stamp(now)}"},
            {"role": "user", "content": question}]


def classify_email(client: openai.OpenAI, email: str) -> Ticket:
    """A Ticket for one email, from the everyday model at effort none, temperature 0.2."""
    completion = client.chat.completions.parse(
        model=DEFAULT, reasoning_effort="none", temperature=0.2, response_format=Ticket,
        messages=[{"role": "developer", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}])
    parsed = completion.choices[0].message.parsed
    if parsed is None:
        raise ValueError("the model refused to classify this email")
    return parsed


_WS = re.compile(r"\s")


def diagnose_key(key: str | None) -> list[str]:
    """missing / whitespace / quoted / wrong-prefix / too-short, in that order."""
    if not (key or "").strip():
        return ["missing"]
    assert key is not None
    bare = key.strip()
    quoted = len(bare) >= 2 and bare[0] in "\"'" and bare[-1] == bare[0]
    inner = bare[1:-1].strip() if quoted else bare
    checks = [("whitespace", bool(_WS.search(key))), ("quoted", quoted),
              ("wrong-prefix", not inner.startswith("sk-")), ("too-short", len(inner) < 40)]
    return [code for code, bad in checks if bad]


def describe_key(key: str | None) -> str:
    """Safe to print: codes and length only."""
    codes = diagnose_key(key)
    if codes == ["missing"]:
        return "no key (missing)"
    return f"a {len(key or '')}-character key; " + (", ".join(codes) if codes else "well-formed")
