"""Lesson 06, the enterprise client: its models, its contract, its requests and Planwise's traffic.

Exercise 06, its recordings (``cassettes/sources/ex06.py``, ``ex06_day.py``), notebook 06 and
the checks all read these. The recorded answers live in the cassette sources. The contract below
is what the checks hold a learner's client to: they draw their scenarios from it.
"""

from __future__ import annotations

from typing import Any

from .models import BACKUP, FAST, FLAGSHIP, LESSON_FLAGSHIP

# --------------------------------------------------------------------------- models

#: The client's default model: the course's flagship (the lesson's "gpt-5", the premium tier).
PREMIUM = FLAGSHIP
#: Where the "fallback" budget policy sends a request the budget cannot cover on PREMIUM: the
#: course's cheapest model (the lesson's "gpt-5-mini").
CHEAP = FAST
#: Tried in order when a model is unavailable (429, 5xx, timeouts), never on a bad request.
CASCADE = (PREMIUM, BACKUP, CHEAP)

# --------------------------------------------------------------------------- the default request

#: complete()'s default reasoning effort: support answers need little thought, and every model of
#: CASCADE accepts "low" (PREMIUM has no "none").
EFFORT = "low"
#: complete()'s default output limit (the lesson's 500), sent as max_completion_tokens: on a
#: reasoning model it covers the hidden reasoning tokens as well as the visible answer.
MAX_COMPLETION_TOKENS = 500

# --------------------------------------------------------------------------- the contract

#: HTTP statuses another model may answer (this model is busy, slow or failing right now):
#: complete() moves on to the next model of CASCADE.
RETRYABLE_STATUSES = (408, 409, 429, 500, 502, 503, 504)
#: Failures without an HTTP status that another model may not have: a timeout, a dropped connection.
RETRYABLE_FAULTS = ("timeout", "reset")
#: Statuses every model answers the same way (the request, the key or the model name is wrong):
#: complete() raises the SDK's error at once, tries no other model and charges nothing.
FINAL_STATUSES = (400, 401, 403, 404, 422)
#: A request sent with an explicit temperature above this asks for variety: it is never cached.
NO_CACHE_ABOVE = 0.7
#: The constructor's defaults: cache lifetime (s), requests per user per window, window (s), budget.
CACHE_TTL = 3600
REQUESTS_PER_MINUTE = 20
WINDOW_S = 60
MONTHLY_BUDGET_USD = 1000.0
#: What complete() does when the budget cannot cover a request.
BUDGET_POLICIES = ("block", "fallback", "alert")
#: User ids and feature names the checks use besides plain ones: quotes, Redis key separators,
#: glob and SQL metacharacters, unicode, a very long one. Keys and reports keep them apart, exactly.
ADVERSARIAL_IDS = (
    "o'brien", 'say "hi"', "team:42", "team:42:eu", "*", "user[1]?", "x'; DROP TABLE users;--",
    "zoë", " zoë ", "用户-7", "🙂", "tab\there", "u" * 600,
)

# --------------------------------------------------------------------------- support answers

#: The system message of every Planwise support answer.
SUPPORT = "You are a customer support agent for Planwise, a project management app. Answer in under 120 words."


def ask(question: str) -> list[dict[str, str]]:
    """A support request: SUPPORT, then the customer's question."""
    return [{"role": "system", "content": SUPPORT}, {"role": "user", "content": question}]


#: The support questions the exercise, its checks and notebook 06 send.
RESET = ask("How do I reset my password?")
EXPORT = ask("How do I export a project to CSV?")
BILLING = ask("Can I switch from monthly to annual billing?")
#: Marketing's request: CHEAP at effort "none" (where it samples) and a hot temperature, so
#: every tagline differs and none is cached.
TAGLINE = [{"role": "user", "content": "Write a one-line tagline for Planwise's new AI task planner."}]
TAGLINE_PARAMS: dict[str, Any] = {"model": CHEAP, "reasoning_effort": "none", "temperature": 1.2}
#: The short request the budget check and notebook 06 repeat until the budget says no.
BUDGET_PROBE = ask("Summarize ticket #4821 in one sentence: customer says the Gantt view freezes when a project has more than 500 tasks.")
#: BUDGET_PROBE's output limit (a small maximum cost per request).
BUDGET_MAX_OUT = 200

# --------------------------------------------------------------------------- the lesson as written

#: The lesson's request: its flagship with temperature 0.7 and max_tokens 500. The API rejects it
#: with a 400 (reasoning models take neither); from the model's shutdown date on, with a 404.
LESSON_REQUEST: dict[str, Any] = {"model": LESSON_FLAGSHIP, "messages": RESET, "temperature": 0.7, "max_tokens": 500}

# --------------------------------------------------------------------------- a day of traffic (notebook 06)

#: The rest of the day's support questions (the pool starts with RESET, EXPORT and BILLING).
DAY_QUESTIONS = (
    "How do I invite a teammate to my workspace?",
    "Can I recover a deleted task?",
    "How do I set up recurring tasks?",
    "Does Planwise integrate with Slack?",
    "How do I change my notification settings?",
    "Is my data encrypted?",
    "How do I cancel my subscription?",
    "Can I use Planwise offline?",
    "How do I add a custom field to a project?",
)
#: Every support request of the replayed day, most frequent first.
SUPPORT_POOL = [RESET, EXPORT, BILLING] + [ask(q) for q in DAY_QUESTIONS]

#: The system message of a ticket summary.
TICKET_SYSTEM = "Summarize the support ticket in one sentence for the agent queue."
#: Ticket summaries are meant to be stable: CHEAP at effort "none", a low temperature, a short limit.
TICKET_PARAMS: dict[str, Any] = {"model": CHEAP, "reasoning_effort": "none", "temperature": 0.2, "max_completion_tokens": 120}
#: The day's tickets, each summarized by the agents who open it.
DAY_TICKETS = (
    "Ticket #5102: Since this morning our Gantt chart shows every task shifted by one day. We're in Sydney (UTC+11).",
    "Ticket #5107: We were charged twice for November after upgrading from Pro to Business mid-cycle.",
    "Ticket #5111: SSO login with Okta fails with 'invalid audience' for new users only; existing users are fine.",
    "Ticket #5118: CSV export stops at 10,000 rows; our project has 14,200 tasks.",
    "Ticket #5120: Mobile app crashes when opening attachments larger than 50 MB on Android.",
    "Ticket #5124: Can we get an invoice with our VAT number added? We need it for our accountant.",
)


def ticket_messages(ticket: str) -> list[dict[str, str]]:
    """A ticket-summary request: TICKET_SYSTEM, then the ticket."""
    return [{"role": "system", "content": TICKET_SYSTEM}, {"role": "user", "content": ticket}]
