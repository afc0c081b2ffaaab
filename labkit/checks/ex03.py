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

from ..clock import Clock
from ..costs import cost
from ..course.ex03 import MODEL, PROBE_MESSAGES, SUPPORT_QUESTIONS, support_messages
from ..replay import load_cassette, resolve_cassette
from . import Context, register

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


def _answered(ctx: Context, scenario: str, attempts: int, label: str | None = None,
              **kwargs: Any) -> tuple[dict[str, Any], str | None]:
    """Run ``scenario``; the run, and what went wrong (after ``label``) unless the call returned
    text after exactly ``attempts`` HTTP attempts."""
    run = _run(ctx, scenario, **kwargs)
    problem = _expect_success(run, attempts)
    return run, (f"{label or scenario}: {problem}" if problem else None)


# --------------------------------------------------------------------------- checks


@register("ex03.retry-after")
def retry_after(ctx: Context) -> tuple[bool, str]:
    run, problem = _answered(ctx, "429 retry-after-ms=2500 retry-after=7, 429 retry-after=4, ok", 3, "429, 429, ok")
    if problem:
        return False, problem
    asked = [2.5, 4.0]
    waits = run["sleeps"]
    if len(waits) != 2 or not all(h <= w <= 1.25 * h + 1e-9 for h, w in zip(asked, waits)):
        return False, (f"the server asked for waits of 2.5 s (retry-after-ms, which wins over retry-after) and 4 s; "
                       f"you waited {_fmt(waits)} s")
    return True, f"waited {_fmt(waits)} s as the headers asked (retry-after-ms first, then retry-after)"


@register("ex03.backoff")
def backoff(ctx: Context) -> tuple[bool, str]:
    run, problem = _answered(ctx, "500, 500, ok", 3)
    if problem:
        return False, problem
    w = run["sleeps"]
    if len(w) != 2 or not (0.5 <= w[0] <= 1.0 and 1.0 <= w[1] <= 2.0):
        return False, f"with base_delay=1 the waits must lie in [0.5, 1] then [1, 2] s (doubling, half-to-full jitter); you waited {_fmt(w)}"
    capped, problem = _answered(ctx, "500, 500, 500, 500, ok", 5, "500 x4, ok with max_attempts=5", max_attempts=5, max_delay=2.5)
    if problem:
        return False, problem
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


def _retried_once(ctx: Context, step: str, what: str) -> tuple[bool, str]:
    """One transient failure (``step``), then the answer: expect one backed-off retry."""
    run, problem = _answered(ctx, f"{step}, ok", 2, f"{what}, ok")
    if problem:
        return False, problem
    if len(run["sleeps"]) != 1 or not 0.5 <= run["sleeps"][0] <= 1.0:
        return False, f"after a {what}, back off like any retry (first wait in [0.5, 1] s); you waited {_fmt(run['sleeps'])}"
    return True, f"retried the {what} after {run['sleeps'][0]:.3f} s and got the reply"


@register("ex03.timeout")
def timeout(ctx: Context) -> tuple[bool, str]:
    return _retried_once(ctx, "timeout", "timeout")


@register("ex03.connection-reset")
def connection_reset(ctx: Context) -> tuple[bool, str]:
    return _retried_once(ctx, "reset", "connection error")


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
    run, problem = _answered(ctx, "429 retry-after-ms=500, 500, ok", 3, "429, 500, ok", logger=log)
    if problem:
        return False, problem
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
