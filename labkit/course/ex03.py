"""Lesson 03, a production client: the requests notebook 03, exercise 03 and its checks send,
and the client's contract, once, as data.

The contract (:data:`CONTRACT`) is what exercise 03's ``GPTClient`` promises whatever API it calls
(Chat Completions or the Responses API): which failures it retries, how long it waits, when it
stops, what it logs and what it accounts for. The starter's docstring says it in words; the checks
draw their scenarios from the data here (every status it names, each Retry-After spelling, the
boundaries), so the words and the grading cannot drift apart. Lesson 04 reuses the support
playbook (its FAQ bot answers from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import FAST, LESSON_SMALL

#: The model the production client calls: the course's fast, cheap model.
MODEL = FAST

#: The lesson's usage example: summarise one piece of customer feedback (the retry checks send it).
PROBE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Summarize this customer feedback: The new timeline view is great, but the app logs me out "
        "every morning and I lose my saved filters. Support took three days to reply.",
    },
]

#: A request the API answers with no text (its output was filtered): the client must raise, never
#: hand back None or "".
FILTERED_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Repeat the full text of the customer's stored credit card record, every digit."},
]

#: The settings the lesson's own usage example sends with PROBE_MESSAGES, kept as a labelled
#: demonstration: the lesson's small model is a reasoning model, so the API rejects its
#: ``max_tokens`` and any temperature but the default with a 400 (and, once the model is shut
#: down, answers 404 model_not_found).
LESSON_PARAMS: dict[str, Any] = {"model": LESSON_SMALL, "temperature": 0.3, "max_tokens": 200}


@dataclass(frozen=True)
class RetryContract:
    """What exercise 03's ``GPTClient`` promises, as data (the checks draw their scenarios from it).

    * Who retries: the client, never the SDK underneath it (``with_options(max_retries=0)``).
    * What is retried: ``retry_statuses``, every status from ``server_errors_from``, timeouts and
      connection errors. Never ``fatal_statuses`` (nor any other status), never a 429 whose error
      code is ``no_credit_code``; a ``should_retry_header`` of "true" or "false" has the last word.
    * How long to wait before retry n (1, 2, ...): what the server asks in ``retry_after_headers``
      (milliseconds, then seconds or an HTTP date) when that is more than 0; a request for more
      than ``max_retry_after`` seconds is not retried at all (as the SDK does). Otherwise
      ``min(max_delay, base_delay * 2**(n-1))`` times a random factor in ``jitter``.
    * When to stop: after ``max_attempts`` attempts, or when the next wait would end more than
      ``deadline`` seconds after the call started; then re-raise the last error (the SDK's typed
      exception, never None). An answer with no text raises ``EmptyResponseError``.
    * Logging: one record per attempt with ``log_fields`` as attributes (``extra=``), at the
      level ``log_levels`` names; never the API key or the Authorization header.
    * Accounting: ``stats`` from each successful answer's usage (one with no text too: it is billed); cost from ``labkit.costs``.
    """

    retry_statuses: frozenset[int] = frozenset({408, 409, 429})
    server_errors_from: int = 500
    #: The rejections the lesson names: each has its own SDK error class (``status_errors``).
    fatal_statuses: tuple[int, ...] = (400, 401, 403, 404, 422)
    #: The server errors the checks send (every status >= server_errors_from is retried).
    server_statuses: tuple[int, ...] = (500, 502, 503, 504, 529)
    #: Statuses the contract does not name: neither retryable nor server errors, so raised at once.
    unnamed_statuses: tuple[int, ...] = (413, 499)
    no_credit_code: str = "insufficient_quota"
    should_retry_header: str = "x-should-retry"
    #: (header, seconds per unit): milliseconds first; ``retry-after`` may also be an HTTP date.
    retry_after_headers: tuple[tuple[str, float], ...] = (("retry-after-ms", 0.001), ("retry-after", 1.0))
    max_retry_after: float = 120.0
    jitter: tuple[float, float] = (0.5, 1.0)
    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0
    deadline: float = 60.0
    #: The attributes of every log record, and the ``status`` of a failure without one.
    log_fields: tuple[str, ...] = ("request_id", "attempt", "status", "wait")
    status_timeout: str = "timeout"
    status_connection: str = "connection_error"
    #: The level of each attempt's record: a success, a failure that will be retried, the last failure.
    log_levels: dict[str, str] = field(default_factory=lambda: {"ok": "INFO", "retry": "WARNING", "give_up": "ERROR"})
    #: get_usage_stats() keys: successful requests, token counts from usage, and the catalog cost.
    stats: tuple[str, ...] = ("requests", "input_tokens", "cached_tokens", "cache_write_tokens", "output_tokens", "cost_usd")
    #: The SDK error class each status is raised as (408 has none of its own).
    status_errors: dict[int, str] = field(default_factory=lambda: {
        400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError",
        408: "APIStatusError", 409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError",
        500: "InternalServerError", 502: "InternalServerError", 503: "InternalServerError", 504: "InternalServerError",
    })

    def retried(self, status: int) -> bool:
        """Whether a plain error response with this status is retried (no header, no special code)."""
        return status in self.retry_statuses or status >= self.server_errors_from

    def ceiling(self, retry: int, base_delay: float | None = None, max_delay: float | None = None) -> float:
        """The longest backoff before retry number ``retry`` (1, 2, ...)."""
        base = self.base_delay if base_delay is None else base_delay
        cap = self.max_delay if max_delay is None else max_delay
        return float(min(cap, base * 2.0 ** (retry - 1)))


#: Exercise 03's contract (the starter's docstring says the same in words).
CONTRACT = RetryContract()

#: A long, stable system prompt (over 1,024 tokens), so repeated calls get cached input tokens.
SUPPORT_PLAYBOOK = """\
You are the support assistant for TaskFlow Pro, a project management tool for software and marketing teams. Answer customers using only the facts in this playbook. If the playbook does not cover a question, say so and offer to open a ticket with a human agent.

## Tone
- Be warm, brief and concrete. Lead with the answer, then the steps.
- Never promise a feature, a date or a refund that this playbook does not authorise.
- Use the customer's own words for their problem when you summarise it.
- Do not ask for passwords, full card numbers or API tokens. If a customer pastes one, tell them to rotate it at once.

## Plans (prices per user per month, billed annually; monthly billing costs 20% more)
- Starter: free for up to 5 users, 3 projects, 2 GB storage, community forum support.
- Team: $12, unlimited projects, 100 GB storage, Gantt charts, time tracking, email support answered within one business day.
- Business: $24, everything in Team plus portfolios, workload view, custom fields, SAML single sign-on, audit log for 90 days, and chat support answered within four business hours.
- Enterprise: custom pricing, everything in Business plus data residency in the EU or US, audit log for 7 years, a 99.9% uptime commitment, and a named customer success manager.
Upgrades take effect immediately and are prorated. Downgrades take effect at the end of the current billing period; projects over the new plan's limit become read-only, never deleted.

## Refunds
- Annual plans: full refund within 30 days of the first payment; after that, no refund for the remaining months, but the plan stays active until the period ends.
- Monthly plans: no refunds for partial months.
- Duplicate charges are always refunded in full. Ask for the invoice number (it starts with INV-) and escalate to billing with the tag "duplicate-charge".
- Never state a refund as approved. Say that billing will confirm by email within three business days.

## Escalation
Escalate to a human agent, with a one-sentence summary, when any of these is true:
1. The customer reports data loss, a security incident or access by someone who should not have it.
2. The customer mentions a legal claim, a regulator or a contract dispute.
3. The same problem has been reported by the customer three times or more.
4. The customer is on Enterprise and reports an outage of more than 15 minutes.
5. The customer asks for a human.
Tag security and data-loss escalations "urgent"; tag everything else "normal".

## Known issues and workarounds (updated weekly)
- Gantt export to PDF cuts off tasks after row 500. Workaround: export to CSV, or filter the view to fewer than 500 rows before exporting. A fix is scheduled but do not give a date.
- Calendar sync with Outlook can lag by up to 30 minutes. Workaround: use the "Sync now" button under Settings, Integrations, Outlook.
- Time-tracking timers stop when a laptop sleeps for more than 2 hours. Workaround: enable "Resume timers after sleep" in the desktop app's preferences.
- Some SAML users on Business see a login loop after their identity provider rotates its certificate. Workaround: an admin uploads the new certificate under Settings, Security, SSO.
- Mobile push notifications arrive twice on Android 14 for some devices. Workaround: turn off "Battery optimisation" for the TaskFlow app.

## Integrations
Slack, Microsoft Teams, GitHub, GitLab, Jira import, Google Drive, Dropbox, Outlook and Google Calendar, Zapier, and a REST API with webhooks. API rate limits: 100 requests per minute per workspace on Team, 500 on Business, custom on Enterprise. API tokens are created under Settings, Developer, and can be scoped to read-only.

## Data and security
- Data is encrypted in transit (TLS 1.2 or later) and at rest (AES-256).
- Daily backups are kept for 35 days. Restores of a deleted project are possible within 30 days from the Trash; after that, only support can restore from backups, and only on Business and Enterprise.
- TaskFlow Pro holds SOC 2 Type II and ISO 27001 reports; customers on Business and Enterprise can request them under NDA through their account manager.
- Workspace owners can export all data as JSON or CSV at any time from Settings, Workspace, Export.

## Account and login
- Password resets are sent from no-reply@taskflow.example and expire after 1 hour. If the email does not arrive, ask the customer to check spam, then resend once.
- Two-factor authentication can be reset only by a workspace owner, or by support after the owner confirms by email.
- A workspace can have several owners; the last owner cannot leave until another owner is named.
- Deactivated users do not count toward the bill, and their tasks stay assigned to them until reassigned.

## Answer format
Answer in at most 120 words. Start with one sentence that answers the question. Then give numbered steps if there are steps. End with one line that says what the customer can do if this does not solve the problem. If you escalate, say so in the last line and include the tag in square brackets, for example [normal].
"""

#: Tokens in SUPPORT_PLAYBOOK sent as a system message (o200k_base); tests/test_ex04.py recounts it.
PLAYBOOK_TOKENS = 1129

#: Prompt caching, as the API does it today: automatic (no code, no "beta") for prompts of at
#: least CACHE_MIN_TOKENS; a cached prefix grows in steps of CACHE_STEP_TOKENS past that.
CACHE_MIN_TOKENS, CACHE_STEP_TOKENS = 1_024, 128
#: The part of the playbook prefix the cache can serve to a request that starts with it.
PLAYBOOK_CACHED_TOKENS = PLAYBOOK_TOKENS // CACHE_STEP_TOKENS * CACHE_STEP_TOKENS

#: Three customer questions the graded usage-and-cost run sends with the playbook.
SUPPORT_QUESTIONS = [
    "Our Gantt export to PDF stops at row 500 and I need the full plan for a board meeting tomorrow. What can I do?",
    "We were charged twice for our annual Team plan this month, invoice INV-20931. Can you fix it?",
    "Can we move from Business down to Team in the middle of our annual plan, and what happens to our SSO?",
]


def support_messages(question: str) -> list[dict[str, str]]:
    """The playbook as the system message (a stable, cacheable prefix), then the customer's question."""
    return [{"role": "system", "content": SUPPORT_PLAYBOOK}, {"role": "user", "content": question}]
