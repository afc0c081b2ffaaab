"""Lesson 04, troubleshooting: the requests, schema, fixtures, usage log and contracts of the five problems.

Exercise 04, its recordings (``cassettes/sources/ex04.py``), notebook 04 and the checks all read
these. The FAQ bot answers from lesson 03's support playbook (``labkit.course.ex03``).
``make_usage_log`` is the seeded generator of ``data/ex04_usage_log.jsonl``; the checks price
freshly generated logs, so answers typed in from the shipped file do not pass.

Prompt caching, as it works today (and as the usage log and the checks model it): automatic for
prompts of at least 1,024 tokens (no code, no "beta"); a request reads from the cache the longest
prefix, in steps of 128 tokens past 1,024, that it shares with a recent request; usage reports
``cached_tokens`` (``prompt_tokens_details`` / ``input_tokens_details``), billed 90-95% below the
input price, and, from GPT-5.6 on, ``cache_write_tokens``, billed at 1.25x input (2x for a 12-hour
lifetime). ``prompt_cache_key`` helps requests that share a prefix land on the same cache.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ..paths import data_dir
from .ex03 import CACHE_MIN_TOKENS, CACHE_STEP_TOKENS, SUPPORT_PLAYBOOK
from .models import BACKUP, DEFAULT, FAST, FLAGSHIP, LESSON_FLAGSHIP, LESSON_SMALL, REASONING

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

#: The fast sampling model lesson 04 uses throughout (triage, the rate-limit burst, the classifier).
MODEL = FAST

# --------------------------------------------------------------------------- 1. rate limits

#: A burst of triage calls: the answer's headers say the minute's token budget is nearly spent.
RATE_MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Reply with one word: the category of this support email (billing, technical, sales or other)."},
    {"role": "user", "content": "Hi, our invoice for October shows 14 seats but we only have 11 users. Can you correct it?"},
]
#: A one-word triage needs no reasoning: effort "none" keeps it fast and bills no hidden tokens.
RATE_PARAMS: dict[str, Any] = {"reasoning_effort": "none"}
#: The rate-limit headers recorded with the answer to RATE_MESSAGES (illustrative, written for the course).
RATE_HEADERS = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "212",
    "x-ratelimit-reset-requests": "34.56s",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "1450",
    "x-ratelimit-reset-tokens": "1m2.4s",
}

# --------------------------------------------------------------------------- 2. overloaded: fallback

#: The course's fallback cascade, in order: the best model, another generation, the cheapest.
FALLBACK_MODELS = (FLAGSHIP, BACKUP, FAST)
#: The models the lesson's own cascade names that have a role here (its middle step was an older
#: GPT-4o flagship): both shut down on 2026-12-11, so a cascade built on them fails on its first step.
LESSON_CASCADE = (LESSON_FLAGSHIP, LESSON_SMALL)
#: The request the fallback cascade sends to each model in turn.
OVERLOAD_MESSAGES = [
    {"role": "system", "content": "You write short, plain status updates for TaskFlow Pro customers."},
    {"role": "user", "content": "Write a two-sentence status update: Outlook calendar sync is delayed by up to "
                                "30 minutes, and a fix is being rolled out today."},
]
#: Settings the first model of the cascade rejects (400: it has no reasoning effort "none", so it
#: takes no temperature either) and the second accepts: the request bug a catch-everything cascade hides.
CASCADE_PARAMS: dict[str, Any] = {"reasoning_effort": "none", "temperature": 0.2}


@dataclass(frozen=True)
class FallbackContract:
    """When ``complete_with_fallback`` moves on to the next model, as data (the checks draw from it).

    Move on only when another model could succeed: a transient failure (``transient_statuses``,
    every status from ``server_errors_from``, a timeout or a dropped connection). Anything else
    fails the same way on every model, so raise it at once: ``fatal_statuses`` (a bad request or
    key, a missing permission, a retired model, an invalid body) and a 429 whose code is
    ``no_credit_code``. After the last model, re-raise the last error.
    """

    transient_statuses: frozenset[int] = frozenset({408, 409, 429})
    server_errors_from: int = 500
    server_statuses: tuple[int, ...] = (500, 502, 503, 529)
    fatal_statuses: tuple[int, ...] = (400, 401, 403, 404, 422)
    #: Statuses the contract does not name: not transient, so raised at once too.
    unnamed_statuses: tuple[int, ...] = (413, 499)
    no_credit_code: str = "insufficient_quota"


FALLBACK = FallbackContract()

# --------------------------------------------------------------------------- 3. costs

#: The model the fictional product's FAQ bot runs on: the everyday model.
FAQ_MODEL = DEFAULT
#: The FAQ question whose cache-friendly request is recorded, and when it was asked.
FAQ_QUESTION = "How do I reset two-factor authentication for a teammate who lost their phone?"
FAQ_TIME = datetime(2026, 10, 6, 9, 14)
#: Questions asked at different times: a cache-friendly prompt starts every one of them the same way.
FAQ_ASKED = [
    (FAQ_QUESTION, FAQ_TIME),
    ("Can I get a refund on a monthly plan?", datetime(2026, 10, 6, 16, 2)),
    (FAQ_QUESTION, datetime(2026, 10, 9, 11, 47)),
]
#: How long a cache entry lives after it was last used (the 30-minute lifetime writes are billed for).
CACHE_TTL_MINUTES = 30


def stamp(now: datetime) -> str:
    """How the FAQ bot writes the current time into its prompt."""
    return now.strftime("%Y-%m-%d %H:%M")


def faq_messages_v1(question: str, now: datetime) -> list[dict[str, str]]:
    """The FAQ bot as deployed (see the usage log's prompt_prefix): the timestamp comes first."""
    return [
        {"role": "system", "content": f"Current time: {stamp(now)}.\n{SUPPORT_PLAYBOOK}"},
        {"role": "user", "content": question},
    ]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def shared_text(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> str:
    """The text two conversations start with: every message they share in full, then the part of the
    first differing message's text that both start with (messages joined by a blank line)."""
    parts: list[str] = []
    for x, y in zip(a, b):
        if str(x.get("role", "")) != str(y.get("role", "")):
            break
        text, other = _text(x.get("content")), _text(y.get("content"))
        if text != other:
            parts.append(os.path.commonprefix([text, other]))
            break
        parts.append(text)
    return "\n\n".join(parts)


def shared_prefix_tokens(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], model: str = FAQ_MODEL) -> int:
    """Tokens at the start of two conversations that are identical: what the prompt cache can reuse.

    Counted with ``labkit.count_tokens`` as the model reads the messages, in order: every message
    the two share in full (its role, its text and the chat format's few tokens around them), then,
    at the first message that differs, its role and the part of its text both start with.
    """
    from ..tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, count_tokens

    total = 0
    for x, y in zip(a, b):
        role, text = str(x.get("role", "")), _text(x.get("content"))
        if role != str(y.get("role", "")):
            break
        other = _text(y.get("content"))
        if text == other:
            total += count_tokens([{"role": role, "content": text}], model) - REPLY_PRIMING
            continue
        common = os.path.commonprefix([text, other])
        total += TOKENS_PER_MESSAGE + count_tokens(role, model) + (count_tokens(common, model) if common else 0)
        break
    return total


def cacheable(prefix_tokens: int) -> int:
    """The part of a shared prefix the cache can serve: nothing under 1,024 tokens, then steps of 128."""
    return prefix_tokens // CACHE_STEP_TOKENS * CACHE_STEP_TOKENS if prefix_tokens >= CACHE_MIN_TOKENS else 0


#: The week of usage the notebook analyses (in data/, written by write_usage_log()).
USAGE_LOG = "ex04_usage_log.jsonl"
#: The product features the usage log bills.
FEATURES = ("ticket-triage", "faq-bot", "weekly-report", "doc-summarizer", "headline-gen")
#: Tokens the deployed FAQ prompts share when two arrive in the same minute (the stamp line and
#: the playbook; tests/test_ex04.py recounts it with shared_prefix_tokens).
FAQ_V1_SHARED = 1_145
#: The weekly report's model and effort (deep work, many hidden reasoning tokens).
REPORT_MODEL, REPORT_EFFORT = REASONING, "high"


def make_usage_log(seed: int = 20261001, days: int = 7) -> list[dict[str, Any]]:
    """A week of synthetic production usage (one dict per request), as a usage log would hold it.

    Built to hold the usual culprits: a FAQ bot whose prompt starts with a timestamp (so it writes
    its prompt to the cache on almost every call, at 1.25x input, and almost never reads it back),
    weekly reports on a reasoning model at high effort with thousands of reasoning tokens, and a
    summariser whose huge prompts top the token count without topping the bill. Every feature but
    the reports runs at reasoning effort "none" (no hidden tokens). Caching follows
    the rules in this module's docstring: a prompt of 1,024 tokens or more that misses the cache
    is written to it.
    """
    from ..authoring import SNAPSHOTS  # the snapshot ids the API reports (heavy import, so late)

    rng = random.Random(seed)
    start = datetime(2026, 10, 5, tzinfo=UTC)
    rows: list[dict[str, Any]] = []

    def add(when: datetime, feature: str, model: str, prompt: int, completion: int, *, cached: int = 0,
            reasoning: int = 0, effort: str = "none", prefix: str = "") -> None:
        written = 0 if cached else cacheable(prompt)
        rows.append({
            "ts": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "request_id": f"req_{rng.getrandbits(128):032x}",
            "feature": feature,
            "model": SNAPSHOTS.get(model, model),
            "effort": effort,
            "prompt_prefix": prefix or f"Current time: {stamp(when)}. You are the support assistant for TaskFlow Pro",
            "usage": {
                "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        })

    def moment(day: int) -> datetime:
        return start + timedelta(days=day, seconds=rng.randrange(7 * 3600, 20 * 3600))

    faq_times: list[datetime] = []
    for day in range(days):
        for _ in range(rng.randint(80, 100)):
            add(moment(day), "ticket-triage", FAST, rng.randint(280, 620), rng.randint(35, 90),
                prefix="You triage customer emails for TaskFlow Pro. Classify the email's sentiment")
        faq_times += [moment(day) for _ in range(rng.randint(105, 125))]
        for _ in range(rng.randint(2, 4)):
            add(moment(day), "doc-summarizer", FAST, rng.randint(60_000, 120_000), rng.randint(250, 400),
                prefix="Summarise the attached contract for a project manager. Contract text follows")
        for _ in range(rng.randint(10, 16)):
            add(moment(day), "headline-gen", FAST, rng.randint(60, 120), rng.randint(15, 40),
                prefix="You are a marketing copywriter. Write compelling 10-word headlines.")
    seen: dict[str, datetime] = {}  # the deployed prompt's cache entries, by the minute stamped in them
    for when in sorted(faq_times):
        last = seen.get(stamp(when))
        hit = last is not None and when - last <= timedelta(minutes=CACHE_TTL_MINUTES)
        seen[stamp(when)] = when
        add(when, "faq-bot", FAQ_MODEL, rng.randint(1150, 1260), rng.randint(110, 240),
            cached=cacheable(FAQ_V1_SHARED) if hit else 0)
    for week_day in range(0, days, 7):  # Monday: the weekly report for each of 12 teams, at effort high
        for _ in range(12):
            reasoning = rng.randint(4_000, 10_000) // 64 * 64
            add(moment(week_day), "weekly-report", REPORT_MODEL, rng.randint(3_000, 5_000),
                reasoning + rng.randint(800, 1_600), reasoning=reasoning, effort=REPORT_EFFORT,
                prefix="Write this team's weekly status report from the task activity below")
    rows.sort(key=lambda r: r["ts"])
    return rows


def faq_with_cache(rows: Sequence[Mapping[str, Any]], shared: int, ttl_minutes: int = CACHE_TTL_MINUTES) -> list[dict[str, Any]]:
    """The FAQ rows re-billed as if every prompt shared its first ``shared`` tokens: a request within
    ``ttl_minutes`` of the previous one reads them from the cache, any other writes its prompt to it."""
    out: list[dict[str, Any]] = []
    last: datetime | None = None
    for row in sorted(rows, key=lambda r: r["ts"]):
        when = datetime.strptime(row["ts"], "%Y-%m-%dT%H:%M:%SZ")
        hit = last is not None and when - last <= timedelta(minutes=ttl_minutes)
        last = when
        usage = dict(row["usage"])
        prompt = int(usage["prompt_tokens"])
        usage["prompt_tokens_details"] = {"cached_tokens": cacheable(shared) if hit else 0,
                                          "cache_write_tokens": 0 if hit else cacheable(prompt)}
        out.append({**row, "usage": usage})
    return out


def write_usage_log(path: str | Path | None = None) -> None:
    """Write the shipped usage log (default ``data/ex04_usage_log.jsonl``), one JSON object per line."""
    lines = [json.dumps(r, separators=(",", ":")) for r in make_usage_log()]
    Path(path or data_dir() / USAGE_LOG).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- 4. inconsistent outputs

#: The classifier's model and effort: at reasoning effort "none" the fast model accepts a
#: temperature (at any other effort it answers 400).
CLASSIFY_MODEL = MODEL
CLASSIFY_EFFORT = "none"
#: The temperatures the lesson calls consistent.
LOW_TEMPERATURE = (0.0, 0.3)
#: The classifier's system message: the task, and what "critical" means.
CLASSIFY_SYSTEM = (
    "You triage customer emails for TaskFlow Pro. Classify the email's sentiment, urgency and category, "
    "and summarise it in one sentence. Urgency is critical only for data loss, security incidents or a "
    "complete outage."
)


#: The classifier's answer: the schema Structured Outputs hold the model to. (No docstring: it
#: would go into the JSON schema, and so into every request.)
class Ticket(BaseModel):
    sentiment: Literal["positive", "neutral", "negative"]
    urgency: Literal["low", "medium", "high", "critical"]
    category: Literal["billing", "technical", "sales", "other"]
    summary: str


#: Emails the classifier is graded on (their recorded tickets are in cassettes/ex04.json).
CLASSIFY_EMAILS = [
    "Subject: All our projects are gone\n\nWe logged in this morning and every project in our workspace is empty. "
    "Tasks, files, comments, all gone. We have a client review at 2pm. Please call me.",
    "Subject: Question about annual billing\n\nHi! If we switch from monthly to annual billing halfway through "
    "the month, do we get credit for the days we already paid? Thanks, Maria",
    "Subject: Loving the new workload view\n\nJust wanted to say the workload view has made our Monday planning "
    "twice as fast. Is there a way to export it as an image for our weekly slides?",
]
#: The (sentiment, urgency, category) each of CLASSIFY_EMAILS should get.
TRIAGE = [("negative", "critical", "technical"), ("neutral", "low", "billing"), ("positive", "low", "other")]

#: The lesson's vague prompt, sent at a high temperature: a different shape of answer each time.
VAGUE_MESSAGES = [
    {"role": "system", "content": "Analyze customer emails and tell me the sentiment, urgency and category."},
    {"role": "user", "content": CLASSIFY_EMAILS[0]},
]
VAGUE_TEMPERATURE = 1.3
#: The effort every sampling request of lesson 04 runs at: "none", the only one that takes a temperature.
SAMPLING_EFFORT = "none"
#: The lesson's JSON-mode fix: valid JSON every time, but not always the same keys.
JSON_MODE_MESSAGES = [
    {"role": "system", "content": "Analyze customer emails. Output JSON with the sentiment, urgency, category and a one-sentence summary."},
    {"role": "user", "content": CLASSIFY_EMAILS[0]},
]
JSON_MODE_TEMPERATURE = 1.0
