"""Lesson 06, the enterprise client: its models, its default request and Planwise's traffic.

Exercise 06, its recordings (``cassettes/sources/ex06.py``, ``ex06_day.py``), notebook 06 and
the checks all read these. The recorded answers live in the cassette sources.
"""

from __future__ import annotations

from .models import BACKUP, FAST, FLAGSHIP

# --------------------------------------------------------------------------- models

#: The client's default model (a sampling model: the cache policy depends on temperature).
PREMIUM = FLAGSHIP
#: Where the "fallback" budget policy sends a request the budget cannot cover on PREMIUM.
CHEAP = FAST
#: Tried in order when a model is unavailable (429, 5xx, timeouts), never on a bad request.
CASCADE = (PREMIUM, BACKUP, CHEAP)

# --------------------------------------------------------------------------- the default request

#: complete()'s default sampling temperature (the lesson's).
TEMPERATURE = 0.7
#: complete()'s default output limit (the lesson's 500, sent as max_completion_tokens).
MAX_COMPLETION_TOKENS = 500

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
#: Marketing's request, sent at temperature 1.0 (so never cached).
TAGLINE = [{"role": "user", "content": "Write a one-line tagline for Planwise's new AI task planner."}]
#: The short request the budget check and notebook 06 repeat until the budget says no.
BUDGET_PROBE = ask("Summarize ticket #4821 in one sentence: customer says the Gantt view freezes when a project has more than 500 tasks.")
#: BUDGET_PROBE's output limit (a small maximum cost per request).
BUDGET_MAX_OUT = 32

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

#: The system message of a ticket summary (sent to CHEAP).
TICKET_SYSTEM = "Summarize the support ticket in one sentence for the agent queue."
#: Ticket summaries are meant to be stable: a low temperature and a short output limit.
TICKET_TEMPERATURE = 0.2
TICKET_MAX_OUT = 120
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
