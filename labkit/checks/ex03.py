"""Checks for exercise 03: the production client, run against scripted faults on an injected clock.

Every check builds the learner's ``GPTClient`` on ``labkit.faults.client(scenario, "ex03", clock=...)``
(a real ``openai.OpenAI`` whose transport plays the scenario, then answers from the cassette)
with ``sleep=clock.sleep`` and ``clock=clock.time``, so a whole run takes milliseconds. The
transport's ``attempts`` are the ground truth for how many HTTP requests were sent.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import openai

from ..costs import cost
from ..replay import load_cassette, resolve_cassette
from ..clock import Clock
from . import Context, register

MODEL = "gpt-4.1-mini"

#: The lesson's usage example: summarise one piece of customer feedback.
PROBE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {
        "role": "user",
        "content": "Summarize this customer feedback: The new timeline view is great, but the app logs me out "
        "every morning and I lose my saved filters. Support took three days to reply.",
    },
]

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

SUPPORT_QUESTIONS = [
    "Our Gantt export to PDF stops at row 500 and I need the full plan for a board meeting tomorrow. What can I do?",
    "We were charged twice for our annual Team plan this month, invoice INV-20931. Can you fix it?",
    "Can we move from Business down to Team in the middle of our annual plan, and what happens to our SSO?",
]


def support_messages(question: str) -> list[dict[str, str]]:
    """The playbook as the system message (a stable, cacheable prefix), then the customer's question."""
    return [{"role": "system", "content": SUPPORT_PLAYBOOK}, {"role": "user", "content": question}]


# --------------------------------------------------------------------------- helpers

_SETTINGS = {"max_attempts": 4, "base_delay": 1.0, "max_delay": 30.0, "deadline": 60.0}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _logger(name: str) -> tuple[logging.Logger, _Capture]:
    """A private logger that keeps its records and prints nothing."""
    log = logging.getLogger(f"labkit.checks.ex03.{name}")
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.DEBUG)
    cap = _Capture()
    log.addHandler(cap)
    return log, cap


def _run(ctx: Context, scenario: str, *, max_retries: int = 0, calls: list[list[dict[str, str]]] | None = None,
         logger: logging.Logger | None = None, **settings: Any) -> dict[str, Any]:
    """Build the learner's client on a fault scenario and make the calls; report what happened."""
    clock = Clock()
    sdk = ctx.faults.client(scenario, "ex03", clock=clock, max_retries=max_retries)
    transport = sdk._labkit_transport
    gpt = ctx.attr("GPTClient")(sdk, MODEL, sleep=clock.sleep, clock=clock.time,
                                logger=logger or _logger("quiet")[0], **{**_SETTINGS, **settings})
    results: list[Any] = []
    error: BaseException | None = None
    for messages in calls or [PROBE_MESSAGES]:
        try:
            results.append(gpt.chat_completion(messages))
        except openai.OpenAIError as err:  # anything else is reported by the runner
            error = err
            break
    return {"gpt": gpt, "results": results, "error": error, "attempts": [a.outcome for a in transport.attempts],
            "sleeps": list(clock.sleeps), "transport": transport, "clock": clock}


def _err(e: BaseException | None) -> str:
    return "nothing" if e is None else f"{type(e).__name__}"


def _fmt(waits: list[float]) -> str:
    return "[" + ", ".join(f"{w:.3g}" for w in waits) + "]"


def _expect_success(run: dict[str, Any], attempts: int) -> str | None:
    """None if the call returned text after exactly ``attempts`` HTTP attempts, else what went wrong."""
    if run["error"] is not None:
        return f"raised {_err(run['error'])} ({str(run['error'])[:80]}) after {len(run['attempts'])} attempt(s) {run['attempts']}"
    if not run["results"] or not isinstance(run["results"][0], str):
        return f"returned {run['results'][0] if run['results'] else None!r:.60} instead of the reply's text"
    if len(run["attempts"]) != attempts:
        return f"{len(run['attempts'])} HTTP attempts {run['attempts']} (expected {attempts})"
    return None


# --------------------------------------------------------------------------- checks


@register("ex03.retry-after")
def retry_after(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "429 retry-after-ms=2500 retry-after=7, 429 retry-after=4, ok")
    problem = _expect_success(run, 3)
    if problem:
        return False, f"429, 429, ok: {problem}"
    asked = [2.5, 4.0]
    waits = run["sleeps"]
    if len(waits) != 2 or not all(h <= w <= 1.25 * h + 1e-9 for h, w in zip(asked, waits)):
        return False, (f"the server asked for waits of 2.5 s (retry-after-ms, which wins over retry-after) and 4 s; "
                       f"you waited {_fmt(waits)} s")
    return True, f"waited {_fmt(waits)} s as the headers asked (retry-after-ms first, then retry-after)"


@register("ex03.backoff")
def backoff(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "500, 500, ok")
    problem = _expect_success(run, 3)
    if problem:
        return False, f"500, 500, ok: {problem}"
    w = run["sleeps"]
    if len(w) != 2 or not (0.5 <= w[0] <= 1.0 and 1.0 <= w[1] <= 2.0):
        return False, f"with base_delay=1 the waits must lie in [0.5, 1] then [1, 2] s (doubling, half-to-full jitter); you waited {_fmt(w)}"
    capped = _run(ctx, "500, 500, 500, 500, ok", max_attempts=5, max_delay=2.5)
    problem = _expect_success(capped, 5)
    if problem:
        return False, f"500 x4, ok with max_attempts=5: {problem}"
    ceilings = [1.0, 2.0, 2.5, 2.5]
    c = capped["sleeps"]
    if len(c) != 4 or not all(0.5 * m - 1e-9 <= x <= m + 1e-9 for m, x in zip(ceilings, c)):
        return False, f"with max_delay=2.5 the waits must stay within [0.5, 1], [1, 2], [1.25, 2.5], [1.25, 2.5]; you waited {_fmt(c)}"
    return True, f"waits {_fmt(w)} s, then capped at max_delay: {_fmt(c)} s"


@register("ex03.jitter")
def jitter(ctx: Context) -> tuple[bool, str]:
    clock = Clock()
    sdk = ctx.faults.client(", ".join(["500, ok"] * 8), "ex03", clock=clock)
    cls = ctx.attr("GPTClient")
    for _ in range(8):  # eight independent clients, as eight processes would be
        gpt = cls(sdk, MODEL, sleep=clock.sleep, clock=clock.time, logger=_logger("quiet")[0], **_SETTINGS)
        text = gpt.chat_completion(PROBE_MESSAGES)
        if not isinstance(text, str):
            return False, f"a 500 then ok returned {text!r:.60}"
    first = clock.sleeps
    if len(first) != 8:
        return False, f"eight clients each meeting one 500 waited {len(first)} times (expected 8)"
    spread = max(first) - min(first)
    if len({round(x, 9) for x in first}) < 6 or spread < 0.05:
        return False, f"eight clients waited {_fmt(first)} s after the same 500: without random jitter they all retry together"
    return True, f"eight clients' first waits are spread over {min(first):.3f}-{max(first):.3f} s"


@register("ex03.no-retry-401")
def no_retry_401(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "401, ok")
    if not isinstance(run["error"], openai.AuthenticationError):
        got = f"returned {run['results'][0]!r:.40}" if run["results"] else f"raised {_err(run['error'])}"
        return False, f"a 401 must raise openai.AuthenticationError; you {got} after {len(run['attempts'])} attempt(s)"
    if len(run["attempts"]) != 1 or run["sleeps"]:
        return False, f"a bad key never gets better: {len(run['attempts'])} attempts and waits {_fmt(run['sleeps'])} (expected 1 attempt, no wait)"
    return True, "one attempt, AuthenticationError raised, no wait"


@register("ex03.no-retry-400")
def no_retry_400(ctx: Context) -> tuple[bool, str]:
    expected = {400: openai.BadRequestError, 403: openai.PermissionDeniedError, 404: openai.NotFoundError,
                422: openai.UnprocessableEntityError}
    for status, kind in expected.items():
        run = _run(ctx, f"{status}, ok")
        if not isinstance(run["error"], kind):
            got = f"returned {run['results'][0]!r:.40}" if run["results"] else f"raised {_err(run['error'])}"
            return False, f"a {status} must raise openai.{kind.__name__}; you {got} after {len(run['attempts'])} attempt(s)"
        if len(run["attempts"]) != 1:
            return False, f"a {status} was sent {len(run['attempts'])} times: the same request fails the same way, send it once"
    return True, "400, 403, 404 and 422 each raised their typed error after one attempt"


@register("ex03.timeout")
def timeout(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "timeout, ok")
    problem = _expect_success(run, 2)
    if problem:
        return False, f"timeout, ok: {problem}"
    if len(run["sleeps"]) != 1 or not 0.5 <= run["sleeps"][0] <= 1.0:
        return False, f"after a timeout, back off like any retry (first wait in [0.5, 1] s); you waited {_fmt(run['sleeps'])}"
    return True, f"retried the timeout after {run['sleeps'][0]:.3f} s and got the reply"


@register("ex03.connection-reset")
def connection_reset(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "reset, ok")
    problem = _expect_success(run, 2)
    if problem:
        return False, f"connection reset, ok: {problem}"
    if len(run["sleeps"]) != 1 or not 0.5 <= run["sleeps"][0] <= 1.0:
        return False, f"after a connection error, back off like any retry (first wait in [0.5, 1] s); you waited {_fmt(run['sleeps'])}"
    return True, f"retried the connection error after {run['sleeps'][0]:.3f} s and got the reply"


@register("ex03.gives-up")
def gives_up(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "503, 503, 503, 503, 503, ok", max_attempts=4)
    n = len(run["attempts"])
    if run["error"] is None:
        got = run["results"][0] if run["results"] else None
        return False, f"after {n} attempts against five 503s you returned {got!r:.40} instead of raising"
    if not (isinstance(run["error"], openai.APIStatusError) and run["error"].status_code == 503):
        return False, f"raised {_err(run['error'])}: re-raise the last error (openai.InternalServerError, 503) so callers can catch it by type"
    if n != 4 or len(run["sleeps"]) != 3:
        return False, f"max_attempts=4 but {n} HTTP attempts were made with {len(run['sleeps'])} waits"
    return True, f"4 attempts, 3 waits {_fmt(run['sleeps'])} s, then InternalServerError raised"


@register("ex03.deadline")
def deadline(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "429 retry-after=90, ok", deadline=60.0)
    if not isinstance(run["error"], openai.RateLimitError):
        return False, (f"Retry-After 90 s with a 60 s deadline: expected RateLimitError at once, got "
                       f"{_err(run['error'])} after waits {_fmt(run['sleeps'])}")
    if len(run["attempts"]) != 1 or run["sleeps"]:
        return False, f"Retry-After 90 s cannot fit a 60 s deadline, yet you waited {_fmt(run['sleeps'])} s over {len(run['attempts'])} attempts"
    long = _run(ctx, ", ".join(["500"] * 9) + ", ok", max_attempts=10, base_delay=4.0, deadline=20.0)
    total = sum(long["sleeps"])
    if long["error"] is None or total > 20.0 + 1e-9:
        return False, f"nine 500s with base_delay=4 and a 20 s deadline: you waited {total:.1f} s in all and {'raised' if long['error'] else 'did not raise'}"
    return True, f"failed fast on Retry-After 90 s; stopped backing off after {total:.1f} s of a 20 s deadline"


@register("ex03.usage-cost")
def usage_cost(ctx: Context) -> tuple[bool, str]:
    calls = [support_messages(q) for q in SUPPORT_QUESTIONS]
    run = _run(ctx, "500, ok, ok, ok", calls=calls)
    if run["error"] is not None or len(run["results"]) != 3:
        return False, f"three calls (the first meets a 500): raised {_err(run['error'])} after {len(run['results'])} answers"
    cassette = load_cassette(resolve_cassette("ex03"))
    want = {"requests": 0, "input_tokens": 0, "cached_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    for served in run["transport"].then.served:
        body = json.loads(cassette.interactions[served.index].content)
        usage = body["usage"]
        want["requests"] += 1
        want["input_tokens"] += usage["prompt_tokens"]
        want["cached_tokens"] += usage["prompt_tokens_details"]["cached_tokens"]
        want["output_tokens"] += usage["completion_tokens"]
        want["cost_usd"] += cost(usage, body["model"]).total_usd
    got = run["gpt"].get_usage_stats()
    if not isinstance(got, dict):
        return False, f"get_usage_stats() returned {type(got).__name__}, not a dict"
    wrong = []
    for key, value in want.items():
        g = got.get(key)
        ok = isinstance(g, (int, float)) and (math.isclose(g, value, rel_tol=1e-9, abs_tol=1e-12) if key == "cost_usd" else g == value)
        if not ok:
            wrong.append(f"{key}={g!r} (expected {value:.8g})")
    if wrong:
        return False, "after three calls: " + ", ".join(wrong)
    return True, (f"3 requests, {want['input_tokens']:,} input ({want['cached_tokens']:,} cached) + "
                  f"{want['output_tokens']:,} output tokens = ${want['cost_usd']:.6f}")


@register("ex03.logging")
def logging_check(ctx: Context) -> tuple[bool, str]:
    log, cap = _logger("capture")
    run = _run(ctx, "429 retry-after-ms=500, 500, ok", logger=log)
    problem = _expect_success(run, 3)
    if problem:
        return False, f"429, 500, ok: {problem}"
    records = cap.records
    if len(records) != 3:
        return False, f"3 attempts produced {len(records)} log record(s): log exactly one per attempt, successes included"
    cassette = load_cassette(resolve_cassette("ex03"))
    ok_id = dict(cassette.interactions[run["transport"].then.served[-1].index].headers).get("x-request-id")
    want = [("req_fault_1", 1, 429, run["sleeps"][0]), ("req_fault_2", 2, 500, run["sleeps"][1]), (ok_id, 3, 200, None)]
    for rec, (rid, attempt, status, wait) in zip(records, want):
        fields = {k: getattr(rec, k, "<missing>") for k in ("request_id", "attempt", "status", "wait")}
        bad = []
        if fields["request_id"] != rid:
            bad.append(f"request_id={fields['request_id']!r} (response said {rid!r})")
        if fields["attempt"] != attempt:
            bad.append(f"attempt={fields['attempt']!r} (expected {attempt})")
        if fields["status"] != status:
            bad.append(f"status={fields['status']!r} (expected {status})")
        w = fields["wait"]
        if wait is not None and not (isinstance(w, (int, float)) and math.isclose(w, wait, rel_tol=1e-9)):
            bad.append(f"wait={w!r} (you slept {wait:.3g})")
        if wait is None and w not in (None, 0, 0.0):
            bad.append(f"wait={w!r} on the last attempt (expected 0 or None)")
        if bad:
            return False, f"log record {attempt}: " + ", ".join(bad) + "; pass them with extra={...}"
    return True, "one record per attempt with request_id, attempt, status and wait"


@register("ex03.no-sdk-retries")
def no_sdk_retries(ctx: Context) -> tuple[bool, str]:
    run = _run(ctx, "503, 503, 503, 503, 503, 503, ok", max_retries=2, max_attempts=2)
    n = len(run["attempts"])
    if n != 2 or not isinstance(run["error"], openai.InternalServerError):
        return False, (f"given an SDK client with max_retries=2 and max_attempts=2, {n} HTTP requests were sent "
                       f"(expected 2) and you {'raised ' + _err(run['error']) if run['error'] else 'returned'}: "
                       "the SDK retried underneath your loop; use client.with_options(max_retries=0)")
    return True, "2 HTTP requests for max_attempts=2: the SDK's own retries are off"
