"""Lesson 04, troubleshooting: the requests, schema, fixtures and usage log of the five problems.

Exercise 04, its recordings (``cassettes/sources/ex04.py``), notebook 04 and the checks all read
these. The FAQ bot answers from lesson 03's support playbook (``labkit.course.ex03``).
``make_usage_log`` is the seeded generator of ``data/ex04_usage_log.jsonl``; the checks price
freshly generated logs, so answers typed in from the shipped file do not pass.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from ..paths import data_dir
from .models import BACKUP, FAST, LESSON_FLAGSHIP, LESSON_SMALL

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

#: The lesson's fallback cascade, in order (its flagship, an older flagship, its small model).
FALLBACK_MODELS = (LESSON_FLAGSHIP, BACKUP, LESSON_SMALL)
#: The request the fallback cascade sends to each model in turn.
OVERLOAD_MESSAGES = [
    {"role": "system", "content": "You write short, plain status updates for TaskFlow Pro customers."},
    {"role": "user", "content": "Write a two-sentence status update: Outlook calendar sync is delayed by up to "
                                "30 minutes, and a fix is being rolled out today."},
]
#: A temperature GPT-5 models reject (400): the request bug a catch-everything cascade hides.
CASCADE_TEMPERATURE = 0.2

# --------------------------------------------------------------------------- 3. costs

#: The model the fictional product's FAQ bot runs on.
FAQ_MODEL = BACKUP
#: The FAQ question whose cache-friendly request is recorded, and when it was asked.
FAQ_QUESTION = "How do I reset two-factor authentication for a teammate who lost their phone?"
FAQ_TIME = datetime(2026, 10, 6, 9, 14)
#: Two questions asked at different times of one day: a cache-friendly prompt starts both the same way.
FAQ_ASKED = [(FAQ_QUESTION, FAQ_TIME), ("Can I get a refund on a monthly plan?", datetime(2026, 10, 6, 16, 2))]


def stamp(now: datetime) -> str:
    """How the FAQ bot writes the current time into its prompt."""
    return now.strftime("%Y-%m-%d %H:%M")


#: The week of usage the notebook analyses (in data/, written by write_usage_log()).
USAGE_LOG = "ex04_usage_log.jsonl"
#: The product features the usage log bills.
FEATURES = ("ticket-triage", "faq-bot", "weekly-report", "doc-summarizer", "headline-gen")


def make_usage_log(seed: int = 20261001, days: int = 7) -> list[dict[str, Any]]:
    """A week of synthetic production usage (one dict per request), as a usage log would hold it.

    Built to hold the usual culprits: a FAQ bot whose prompt starts with a timestamp (so the
    prompt cache never hits), weekly reports on a reasoning model with thousands of reasoning
    tokens, and a summariser whose huge prompts top the token count without topping the bill.
    """
    from ..authoring import SNAPSHOTS  # the snapshot ids the API reports (heavy import, so late)

    rng = random.Random(seed)
    start = datetime(2026, 10, 5, tzinfo=UTC)
    rows: list[dict[str, Any]] = []

    def add(when: datetime, feature: str, model: str, prompt: int, completion: int,
            cached: int = 0, reasoning: int = 0, prefix: str = "") -> None:
        rows.append({
            "ts": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "request_id": f"req_{rng.getrandbits(96):024x}",
            "feature": feature,
            "model": SNAPSHOTS[model],
            "prompt_prefix": prefix or f"Current time: {stamp(when)}. You are the support assistant for TaskFlow Pro",
            "usage": {
                "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        })

    def moment(day: int) -> datetime:
        return start + timedelta(days=day, seconds=rng.randrange(7 * 3600, 20 * 3600))

    for day in range(days):
        for _ in range(rng.randint(80, 100)):
            add(moment(day), "ticket-triage", FAST, rng.randint(280, 620), rng.randint(35, 90),
                cached=0, prefix="You triage customer emails for TaskFlow Pro. Classify the email's sentiment")
        for _ in range(rng.randint(105, 125)):
            add(moment(day), "faq-bot", FAQ_MODEL, rng.randint(1150, 1260), rng.randint(110, 240))
        for _ in range(rng.randint(2, 4)):
            add(moment(day), "doc-summarizer", FAST, rng.randint(60_000, 120_000), rng.randint(250, 400),
                prefix="Summarise the attached contract for a project manager. Contract text follows")
        for _ in range(rng.randint(10, 16)):
            add(moment(day), "headline-gen", FAST, rng.randint(60, 120), rng.randint(15, 40),
                prefix="You are a marketing copywriter. Write compelling 10-word headlines.")
    for week_day in range(0, days, 7):  # Monday: the weekly report for each of 12 teams
        for _ in range(12):
            reasoning = rng.randint(4_000, 10_000)
            add(moment(week_day), "weekly-report", LESSON_FLAGSHIP, rng.randint(3_000, 5_000),
                reasoning + rng.randint(800, 1_600), reasoning=reasoning,
                prefix="Write this team's weekly status report from the task activity below")
    rows.sort(key=lambda r: r["ts"])
    return rows


def write_usage_log(path: str | Path | None = None) -> None:
    """Write the shipped usage log (default ``data/ex04_usage_log.jsonl``), one JSON object per line."""
    lines = [json.dumps(r, separators=(",", ":")) for r in make_usage_log()]
    Path(path or data_dir() / USAGE_LOG).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- 4. inconsistent outputs

#: The classifier's model: a sampling model, so a low temperature is allowed.
CLASSIFY_MODEL = MODEL
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
#: The lesson's JSON-mode fix: valid JSON every time, but not always the same keys.
JSON_MODE_MESSAGES = [
    {"role": "system", "content": "Analyze customer emails. Output JSON with the sentiment, urgency, category and a one-sentence summary."},
    {"role": "user", "content": CLASSIFY_EMAILS[0]},
]
JSON_MODE_TEMPERATURE = 1.0
