"""Exercise 04 and notebook 04: troubleshooting (rate-limit headers, a fallback cascade, prompt caching, inconsistent vs structured outputs), authored."""

import json

from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import (
    CASCADE_PARAMS,
    CLASSIFY_EFFORT,
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
    RATE_PARAMS,
    SAMPLING_EFFORT,
    TRIAGE,
    VAGUE_MESSAGES,
    VAGUE_TEMPERATURE,
    Ticket,
    faq_messages_v1,
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
        lambda c: c.chat.completions.create(model=MODEL, messages=RATE_MESSAGES, **RATE_PARAMS),
        "billing",
        headers=RATE_HEADERS,
        label="a triage call late in a burst: x-ratelimit-remaining-tokens is low (illustrative headers)",
    )
    # 2. Overloaded: the course's cascade, each model's answer (reasoning tokens derived from its default effort).
    for model, reply in FALLBACK_REPLIES.items():
        a.call(lambda c, m=model: c.chat.completions.create(model=m, messages=OVERLOAD_MESSAGES), reply,
               label=f"fallback cascade: {model}'s answer")
    # ... and the cascade with effort "none" and a temperature: the first model has no effort "none".
    first, second = FALLBACK_MODELS[:2]
    a.call(
        lambda c: c.chat.completions.create(model=first, messages=OVERLOAD_MESSAGES, **CASCADE_PARAMS),
        error={"status": 400, "type": "invalid_request_error", "param": "reasoning_effort", "code": "unsupported_value",
               "message": "Unsupported value: 'reasoning_effort' does not support 'none' with this model. "
                          "Supported values are: 'low', 'medium', 'high', 'xhigh' and 'max'."},
        label=f"{first} rejects reasoning_effort='none' (400): a fallback must not hide this",
    )
    # ... which a catch-everything fallback hides: the second model accepts the settings and answers.
    a.call(
        lambda c: c.chat.completions.create(model=second, messages=OVERLOAD_MESSAGES, **CASCADE_PARAMS),
        FALLBACK_REPLIES[second],
        label=f"the naive cascade's second model answers: the {first} request bug stays hidden",
    )
    # 3. Costs: the FAQ bot as deployed (timestamp first): every call writes its prompt to the cache.
    a.call(
        lambda c: c.chat.completions.create(model=FAQ_MODEL, messages=faq_messages_v1(FAQ_QUESTION, FAQ_TIME)),
        FAQ_REPLY, cache="write",
        label="the FAQ bot as deployed, timestamp first: its prompt is written to the cache (1.25x input) and never read",
    )
    # ... and with its playbook first, twice: the first call writes the prefix, the second reads it.
    fixed = [
        {"role": "system", "content": SUPPORT_PLAYBOOK},
        {"role": "user", "content": f"Current time: {stamp(FAQ_TIME)}.\n{FAQ_QUESTION}"},
    ]
    for cache in ("write", "hit"):
        a.call(
            lambda c: c.chat.completions.create(model=FAQ_MODEL, messages=fixed), FAQ_REPLY, cache=cache,
            label=f"the FAQ bot with its playbook first: prompt cache {'written' if cache == 'write' else 'read'}",
        )
    # 4. Inconsistent outputs: a vague prompt at a high temperature, three times (authored variations).
    for i, reply in enumerate(VAGUE_REPLIES):
        a.call(
            lambda c: c.chat.completions.create(model=CLASSIFY_MODEL, reasoning_effort=SAMPLING_EFFORT,
                                                temperature=VAGUE_TEMPERATURE, messages=VAGUE_MESSAGES),
            reply, label=f"vague prompt, temperature {VAGUE_TEMPERATURE}: authored variation {i + 1} of {len(VAGUE_REPLIES)}",
        )
    for i, reply in enumerate(JSON_MODE_REPLIES):
        a.call(
            lambda c: c.chat.completions.create(model=CLASSIFY_MODEL, reasoning_effort=SAMPLING_EFFORT,
                                                temperature=JSON_MODE_TEMPERATURE, response_format={"type": "json_object"},
                                                messages=JSON_MODE_MESSAGES),
            reply, label=f"JSON mode: valid JSON, drifting keys (authored variation {i + 1} of {len(JSON_MODE_REPLIES)})",
        )
    # Structured Outputs through either API: the checks grade the request's meaning, not the method.
    for email, ticket in zip(CLASSIFY_EMAILS, TICKETS):
        messages = [{"role": "system", "content": CLASSIFY_SYSTEM}, {"role": "user", "content": email}]
        a.call(
            lambda c, m=messages: c.chat.completions.parse(
                model=CLASSIFY_MODEL, reasoning_effort=CLASSIFY_EFFORT, temperature=0, response_format=Ticket, messages=m),
            json.dumps(ticket), label="structured output (strict json_schema), effort none, temperature 0 (Chat Completions)",
        )
        a.call(
            lambda c, m=messages: c.responses.parse(
                model=CLASSIFY_MODEL, reasoning={"effort": CLASSIFY_EFFORT}, temperature=0, text_format=Ticket, input=m),
            json.dumps(ticket), label="structured output (strict json_schema), effort none, temperature 0 (Responses API)",
        )
