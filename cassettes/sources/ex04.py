"""Exercise 04 and notebook 04: troubleshooting (rate-limit headers, a fallback cascade, inconsistent vs structured outputs), authored."""

import json

from labkit.catalog import get_model
from labkit.course.ex03 import PLAYBOOK_CACHED_TOKENS, SUPPORT_PLAYBOOK
from labkit.course.ex04 import (
    CASCADE_TEMPERATURE,
    CLASSIFY_EMAILS,
    CLASSIFY_MODEL,
    CLASSIFY_SYSTEM,
    FALLBACK_MODELS,
    FAQ_MODEL,
    FAQ_QUESTION,
    FAQ_TIME,
    JSON_MODE_MESSAGES,
    JSON_MODE_TEMPERATURE,
    MODEL,
    OVERLOAD_MESSAGES,
    RATE_HEADERS,
    RATE_MESSAGES,
    TRIAGE,
    VAGUE_MESSAGES,
    VAGUE_TEMPERATURE,
    Ticket,
    stamp,
)

SUMMARIES = [
    "Every project in the customer's workspace appears empty this morning, ahead of a 2pm client review.",
    "The customer asks whether switching from monthly to annual billing mid-month credits the days already paid.",
    "The customer praises the workload view and asks how to export it as an image for slides.",
]
TICKETS = [{"sentiment": s, "urgency": u, "category": c, "summary": summary} for (s, u, c), summary in zip(TRIAGE, SUMMARIES)]

VAGUE_REPLIES = [
    "Sentiment: Negative\nUrgency: Critical\nCategory: Technical issue (data loss)",
    "This customer is clearly upset. They report that all of their projects have disappeared, which they need "
    "for a client review at 2pm, so I would treat it as very urgent. It falls under technical support.",
    "**Sentiment:** very negative 😟\n**Urgency:** HIGH (deadline today)\n**Category:** Bug / data",
]
JSON_MODE_REPLIES = [
    '{"sentiment": "negative", "urgency": "critical", "category": "technical", '
    '"summary": "All projects in the workspace are empty before a client review."}',
    '{"Sentiment": "Negative", "priority": "urgent", "category": ["technical", "data loss"], '
    '"summary": "Customer reports every project is empty and needs it fixed before 2pm."}',
]
FALLBACK_REPLIES = dict(zip(FALLBACK_MODELS, [
    "Outlook calendar sync is currently delayed by up to 30 minutes, so new or changed events may take a "
    "little while to appear. We are rolling out a fix today and will confirm here once sync is back to normal.",
    "We're aware that Outlook calendar sync is running up to 30 minutes behind. A fix is being rolled out "
    "today, and we'll update you as soon as it's complete.",
    "Outlook calendar sync is delayed by up to 30 minutes right now. A fix is rolling out today, and "
    "we will post an update when it is done.",
]))
FAQ_REPLY = (
    "A workspace owner can reset two-factor authentication for your teammate.\n"
    "1. The owner opens Settings, Members and selects the teammate.\n"
    "2. They choose Reset two-factor authentication; the teammate sets it up again at next login.\n"
    "If no owner is available, reply here and support will reset it after the owner confirms by email."
)


def build(a) -> None:
    # 1. Rate limits: one answer whose headers show the minute's token budget nearly spent.
    a.call(
        lambda c: c.chat.completions.create(model=MODEL, messages=RATE_MESSAGES),
        "billing",
        headers=RATE_HEADERS,
        label="a triage call late in a burst: x-ratelimit-remaining-tokens is low (illustrative headers)",
    )
    # 2. Overloaded: the lesson's cascade, each model's answer (the reasoning models think first).
    for model, reply in FALLBACK_REPLIES.items():
        reasoning = ("Two sentences for customers. First: what is affected and how badly (Outlook calendar sync, up to 30 "
                     "minutes late), in plain words, so they know new events may appear late. Second: what we are doing "
                     "(a fix rolling out today) and that we will follow up. No blame, no internal detail, no promise of an "
                     "exact time.") if get_model(model).reasoning else ""
        a.call(lambda c, m=model: c.chat.completions.create(model=m, messages=OVERLOAD_MESSAGES), reply,
               reasoning=reasoning, label=f"fallback cascade: {model}'s answer")
    # ... and the cascade with a temperature: the first model, a GPT-5 reasoning model, rejects it.
    first, second = FALLBACK_MODELS[:2]
    a.call(
        lambda c: c.chat.completions.create(model=first, messages=OVERLOAD_MESSAGES, temperature=CASCADE_TEMPERATURE),
        error={"status": 400, "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value",
               "message": f"Unsupported value: 'temperature' does not support {CASCADE_TEMPERATURE} with this model. "
                          "Only the default (1) value is supported."},
        label=f"{first} rejects temperature={CASCADE_TEMPERATURE} (400): a fallback must not hide this",
    )
    # ... which a catch-everything fallback hides: the second model accepts the temperature and answers.
    a.call(
        lambda c: c.chat.completions.create(model=second, messages=OVERLOAD_MESSAGES, temperature=CASCADE_TEMPERATURE),
        FALLBACK_REPLIES[second],
        label=f"the naive cascade's second model answers: the {first} request bug stays hidden",
    )
    # 3. Costs: one FAQ answer with the cache-friendly prompt (playbook first), served from the prompt cache.
    a.call(
        lambda c: c.chat.completions.create(model=FAQ_MODEL, messages=[
            {"role": "system", "content": SUPPORT_PLAYBOOK},
            {"role": "user", "content": f"Current time: {stamp(FAQ_TIME)}.\n{FAQ_QUESTION}"},
        ]),
        FAQ_REPLY, cached_tokens=PLAYBOOK_CACHED_TOKENS,
        label=f"the FAQ bot with its playbook first: {PLAYBOOK_CACHED_TOKENS:,} prompt tokens served from the cache",
    )
    # 4. Inconsistent outputs: a vague prompt at a high temperature, three times (authored variations).
    for i, reply in enumerate(VAGUE_REPLIES):
        a.call(
            lambda c: c.chat.completions.create(model=CLASSIFY_MODEL, temperature=VAGUE_TEMPERATURE, messages=VAGUE_MESSAGES),
            reply, label=f"vague prompt, temperature {VAGUE_TEMPERATURE}: authored variation {i + 1} of {len(VAGUE_REPLIES)}",
        )
    for i, reply in enumerate(JSON_MODE_REPLIES):
        a.call(
            lambda c: c.chat.completions.create(model=CLASSIFY_MODEL, temperature=JSON_MODE_TEMPERATURE,
                                                response_format={"type": "json_object"}, messages=JSON_MODE_MESSAGES),
            reply, label=f"JSON mode: valid JSON, drifting keys (authored variation {i + 1} of {len(JSON_MODE_REPLIES)})",
        )
    for email, ticket in zip(CLASSIFY_EMAILS, TICKETS):
        a.call(
            lambda c, e=email: c.chat.completions.parse(
                model=CLASSIFY_MODEL, temperature=0, response_format=Ticket,
                messages=[{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": e}]),
            json.dumps(ticket), label="structured output (strict json_schema), temperature 0",
        )
