"""Exercise 04 and notebook 04: troubleshooting (rate-limit headers, a fallback cascade, inconsistent vs structured outputs), authored."""

import json
from typing import Literal

from pydantic import BaseModel

from labkit.checks.ex03 import SUPPORT_PLAYBOOK
from labkit.checks.ex04 import CLASSIFY_EMAILS, OVERLOAD_MESSAGES, RATE_HEADERS, RATE_MESSAGES

# The reference solution's classifier settings, repeated here so the cassette does not import solutions/.
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


TICKETS = [
    {"sentiment": "negative", "urgency": "critical", "category": "technical",
     "summary": "Every project in the customer's workspace appears empty this morning, ahead of a 2pm client review."},
    {"sentiment": "neutral", "urgency": "low", "category": "billing",
     "summary": "The customer asks whether switching from monthly to annual billing mid-month credits the days already paid."},
    {"sentiment": "positive", "urgency": "low", "category": "other",
     "summary": "The customer praises the workload view and asks how to export it as an image for slides."},
]

VAGUE_SYSTEM = "Analyze customer emails and tell me the sentiment, urgency and category."
VAGUE_REPLIES = [
    "Sentiment: Negative\nUrgency: Critical\nCategory: Technical issue (data loss)",
    "This customer is clearly upset. They report that all of their projects have disappeared, which they need "
    "for a client review at 2pm, so I would treat it as very urgent. It falls under technical support.",
    "**Sentiment:** very negative 😟\n**Urgency:** HIGH (deadline today)\n**Category:** Bug / data",
]
JSON_MODE_SYSTEM = "Analyze customer emails. Output JSON with the sentiment, urgency, category and a one-sentence summary."
JSON_MODE_REPLIES = [
    '{"sentiment": "negative", "urgency": "critical", "category": "technical", '
    '"summary": "All projects in the workspace are empty before a client review."}',
    '{"Sentiment": "Negative", "priority": "urgent", "category": ["technical", "data loss"], '
    '"summary": "Customer reports every project is empty and needs it fixed before 2pm."}',
]
FALLBACK_REPLIES = {
    "gpt-5": "Outlook calendar sync is currently delayed by up to 30 minutes, so new or changed events may take a "
             "little while to appear. We are rolling out a fix today and will confirm here once sync is back to normal.",
    "gpt-4o": "We're aware that Outlook calendar sync is running up to 30 minutes behind. A fix is being rolled out "
              "today, and we'll update you as soon as it's complete.",
    "gpt-5-mini": "Outlook calendar sync is delayed by up to 30 minutes right now. A fix is rolling out today, and "
                  "we will post an update when it is done.",
}
FAQ_QUESTION = "How do I reset two-factor authentication for a teammate who lost their phone?"
FAQ_REPLY = (
    "A workspace owner can reset two-factor authentication for your teammate.\n"
    "1. The owner opens Settings, Members and selects the teammate.\n"
    "2. They choose Reset two-factor authentication; the teammate sets it up again at next login.\n"
    "If no owner is available, reply here and support will reset it after the owner confirms by email."
)


def build(a) -> None:
    # 1. Rate limits: one answer whose headers show the minute's token budget nearly spent.
    a.call(
        lambda c: c.chat.completions.create(model="gpt-4.1-mini", messages=RATE_MESSAGES),
        "billing",
        headers=RATE_HEADERS,
        label="a triage call late in a burst: x-ratelimit-remaining-tokens is low (illustrative headers)",
    )
    # 2. Overloaded: the lesson's cascade gpt-5 -> gpt-4o -> gpt-5-mini, each model's answer.
    for model, reply in FALLBACK_REPLIES.items():
        reasoning = ("Two sentences for customers. First: what is affected and how badly (Outlook calendar sync, up to 30 "
                     "minutes late), in plain words, so they know new events may appear late. Second: what we are doing "
                     "(a fix rolling out today) and that we will follow up. No blame, no internal detail, no promise of an "
                     "exact time.") if model.startswith("gpt-5") else ""
        a.call(lambda c, m=model: c.chat.completions.create(model=m, messages=OVERLOAD_MESSAGES), reply,
               reasoning=reasoning, label=f"fallback cascade: {model}'s answer")
    # ... and the cascade with temperature=0.2: the first model, a GPT-5 reasoning model, rejects it.
    a.call(
        lambda c: c.chat.completions.create(model="gpt-5", messages=OVERLOAD_MESSAGES, temperature=0.2),
        error={"status": 400, "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value",
               "message": "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported."},
        label="gpt-5 rejects temperature=0.2 (400): a fallback must not hide this",
    )
    # ... which a catch-everything fallback hides: gpt-4o accepts the temperature and answers.
    a.call(
        lambda c: c.chat.completions.create(model="gpt-4o", messages=OVERLOAD_MESSAGES, temperature=0.2),
        FALLBACK_REPLIES["gpt-4o"],
        label="the naive cascade's second model answers: the gpt-5 request bug stays hidden",
    )
    # 3. Costs: one FAQ answer with the cache-friendly prompt (playbook first), served from the prompt cache.
    a.call(
        lambda c: c.chat.completions.create(model="gpt-4o", messages=[
            {"role": "system", "content": SUPPORT_PLAYBOOK},
            {"role": "user", "content": f"Current time: 2026-10-06 09:14.\n{FAQ_QUESTION}"},
        ]),
        FAQ_REPLY, cached_tokens=1024,
        label="the FAQ bot with its playbook first: 1,024 prompt tokens served from the cache",
    )
    # 4. Inconsistent outputs: a vague prompt at temperature 1.3, three times (authored variations).
    for i, reply in enumerate(VAGUE_REPLIES):
        a.call(
            lambda c: c.chat.completions.create(model=CLASSIFY_MODEL, temperature=1.3, messages=[
                {"role": "system", "content": VAGUE_SYSTEM}, {"role": "user", "content": CLASSIFY_EMAILS[0]}]),
            reply, label=f"vague prompt, temperature 1.3: authored variation {i + 1} of 3",
        )
    for i, reply in enumerate(JSON_MODE_REPLIES):
        a.call(
            lambda c: c.chat.completions.create(model=CLASSIFY_MODEL, temperature=1.0, response_format={"type": "json_object"},
                                                messages=[{"role": "system", "content": JSON_MODE_SYSTEM},
                                                          {"role": "user", "content": CLASSIFY_EMAILS[0]}]),
            reply, label=f"JSON mode: valid JSON, drifting keys (authored variation {i + 1} of 2)",
        )
    for email, ticket in zip(CLASSIFY_EMAILS, TICKETS):
        a.call(
            lambda c, e=email: c.chat.completions.parse(
                model=CLASSIFY_MODEL, temperature=0, response_format=Ticket,
                messages=[{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": e}]),
            json.dumps(ticket), label="structured output (strict json_schema), temperature 0",
        )
