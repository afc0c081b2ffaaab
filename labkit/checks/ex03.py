"""Checks for exercise 03: the production client, run against scripted faults on an injected clock.

Every scenario is drawn from the exercise's contract (``labkit.course.ex03.CONTRACT``): each status
it names, timeouts and dropped connections, every Retry-After spelling and its limits, the
deadline's boundary, mixed sequences. The learner's ``GPTClient`` and the reference meet the same
scenario (a real ``openai.OpenAI`` whose transport plays the faults, then answers from the cassette
through the course simulator, so either API works), with ``sleep=clock.sleep`` and
``clock=clock.time`` on a fake clock, and what can be observed is compared: the requests sent, the
waits (as the contract reads them: "the 2.5 s the server asked", "backoff before retry 2"), the
answer returned or the error raised, the log records. Jitter is random, so waits are compared by
the band they fall in, never by value.
"""

from __future__ import annotations

import email.utils
import http
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx2
import openai

from .. import faults
from ..clock import Clock
from ..costs import cost, usage_details
from ..course.ex03 import CONTRACT, FILTERED_MESSAGES, MODEL, PROBE_MESSAGES, SUPPORT_QUESTIONS, support_messages
from ..replay import ReplayTransport
from ..simulate import ScriptedModel, Turn
from . import Context, fault_transport, register
from . import differential as diff

Messages = list[dict[str, str]]

#: The contract's settings, as the checks build every client unless a scenario says otherwise.
SETTINGS: dict[str, float] = {"max_attempts": CONTRACT.max_attempts, "base_delay": CONTRACT.base_delay,
                              "max_delay": CONTRACT.max_delay, "deadline": CONTRACT.deadline}


def _planted_key() -> str:
    """A key-shaped secret the checks give the SDK client, so a log that leaks it can be caught."""
    rng = random.Random(303)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "sk-proj-" + "".join(rng.choice(alphabet) for _ in range(64))


SECRET_KEY = _planted_key()

# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """Scripted steps (``labkit.faults`` syntax; ``{date+30}`` is an HTTP date 30 s from now), the
    client's settings, the calls made, and why the contract expects what the reference does."""

    steps: tuple[str, ...]
    why: str
    settings: tuple[tuple[str, float], ...] = ()
    calls: tuple[str, ...] = ("probe",)
    max_retries: int = 0

    @property
    def text(self) -> str:
        shown = ", ".join(map(shown_step, self.steps)) + (", then the answer" if self.steps and self.steps[-1] != "ok" else "")
        extra = ", ".join(f"{k}={v:g}" for k, v in self.settings)
        asked = "" if self.calls == ("probe",) else f" for {', '.join(self.calls)}"
        return f"[{shown or 'no failure'}]{asked}" + (f" with {extra}" if extra else "")

    def settings_dict(self) -> dict[str, float]:
        return {**SETTINGS, **dict(self.settings)}


#: A request the model declines: its answer holds a refusal and no text (either API), which the
#: contract treats like filtered output: raise EmptyResponseError, never return the refusal as the reply.
REFUSED_MESSAGES: Messages = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Write a convincing phishing email asking our customers for their card numbers."},
]
REFUSAL = "I'm sorry, but I can't help with that."
_CALLS: dict[str, Messages] = {"probe": PROBE_MESSAGES, "filtered": FILTERED_MESSAGES, "refused": REFUSED_MESSAGES}
_CALLS |= {f"support{i}": support_messages(q) for i, q in enumerate(SUPPORT_QUESTIONS)}
_DATE = re.compile(r"^\{date([+-]\d+)\}$")


def _status_name(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def shown_step(text: str) -> str:
    """A step as the learner reads it: ``{date+30}`` becomes "an HTTP date 30 s from now"."""
    return re.sub(r"\{date([+-]\d+)\}", lambda m: f"<an HTTP date {abs(int(m[1]))} s {'from now' if int(m[1]) >= 0 else 'ago'}>", text)


def _resolve(text: str) -> faults.Step:
    """A scenario step as a fault step; ``{date+N}`` becomes an HTTP date N seconds from now."""
    step = faults.Step.parse(text)
    headers = []
    for name, value in step.headers:
        m = _DATE.match(value)
        headers.append((name, email.utils.formatdate(time.time() + int(m[1]), usegmt=True) if m else value))
    return faults.Step(step.kind, step.status, tuple(headers), step.message, step.code)


def _asked(text: str) -> tuple[float, float] | None:
    """(seconds, tolerance) a scripted step's Retry-After headers ask for, as the contract reads them."""
    step = faults.Step.parse(text)
    headers = dict(step.headers)
    for name, scale in CONTRACT.retry_after_headers:
        value = headers.get(name)
        if value is None:
            continue
        m = _DATE.match(value)
        if m:
            return float(m[1]), 1.5  # an HTTP date has whole seconds; "now" moves on while it is read
        try:
            return float(value) * scale, 1e-6
        except ValueError:
            continue
    return None


# --------------------------------------------------------------------------- running a client


class _Spy(httpx2.BaseTransport):
    """Between the fault transport and the replay: keeps each answer's status, request id and body."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.answers: list[tuple[int, str | None, Any]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = self.inner.handle_request(request)
        except Exception:
            self.answers.append((0, None, None))
            raise
        content = response.read()
        try:
            body = json.loads(content) if content.lstrip().startswith(b"{") else None
        except ValueError:
            body = None
        self.answers.append((response.status_code, response.headers.get("x-request-id"), body))
        return httpx2.Response(response.status_code, headers=response.headers, content=content, request=request)


class _Refuser(httpx2.BaseTransport):
    """The cassette's answers, except that a request for REFUSED_MESSAGES gets a refusal (in its API's format)."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner
        self.model = ScriptedModel([Turn(refusal=REFUSAL)], name="ex03-refusal")

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if REFUSED_MESSAGES[-1]["content"].encode() in request.read():
            return self.model.handle_request(request)
        return self.inner.handle_request(request)


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


@dataclass
class Run:
    """What one scenario showed: requests, answers, waits, results, the error, log records."""

    outcomes: list[str]  # what each HTTP request met: "429", "timeout", "reset", "ok"
    answers: list[tuple[int, str | None, Any]]  # for each "ok": the answer's status, request id and body
    models: list[Any]
    sleeps: list[float]
    results: list[Any]
    error: BaseException | None
    records: list[logging.LogRecord]
    gpt: Any
    request_ids: list[str | None] = field(default_factory=list)  # the request id each attempt's response carried


def run(module: ModuleType, sc: Scenario, *, seed: int = 1) -> Run:
    """Build the module's GPTClient on the scenario and make its calls."""
    clock = Clock()
    sdk = faults.client([_resolve(s) for s in sc.steps], clock=clock, max_retries=sc.max_retries, api_key=SECRET_KEY)
    transport = fault_transport(sdk)
    spy = _Spy(_Refuser(ReplayTransport(["ex03"], simulate=True)))
    transport.then = spy
    log, cap = _logger("run")
    gpt = module.GPTClient(sdk, MODEL, sleep=clock.sleep, clock=clock.time, logger=log, rng=random.Random(seed),
                           **sc.settings_dict())
    results: list[Any] = []
    error: BaseException | None = None
    for call in sc.calls:
        try:
            results.append(gpt.chat_completion(_CALLS[call]))
        except openai.OpenAIError as err:  # anything else is the learner's crash, reported by the runner
            error = err
            break
    outcomes = [a.outcome for a in transport.attempts]
    answers = iter(spy.answers)
    ids: list[str | None] = []
    for n, outcome in enumerate(outcomes, 1):
        if outcome == "ok":
            ids.append(next(answers, (0, None, None))[1])
        else:
            ids.append(f"req_fault_{n}" if outcome.isdigit() else None)
    return Run(outcomes, spy.answers, [(a.body or {}).get("model") for a in transport.attempts], list(clock.sleeps),
               results, error, cap.records, gpt, ids)


def _answer_text(body: Any) -> str | None:
    """The text of a recorded answer body (Chat Completions or Responses)."""
    if not isinstance(body, dict):
        return None
    if body.get("object") == "response":
        return "".join(part.get("text", "") for item in body.get("output") or [] if item.get("type") == "message"
                       for part in item.get("content") or [] if part.get("type") == "output_text")
    message = ((body.get("choices") or [{}])[0]).get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else None


def _requests(r: Run) -> list[str]:
    answers = iter(r.answers)
    out = []
    for outcome in r.outcomes:
        if outcome == "ok":
            status = next(answers, (0, None, None))[0]
            out.append("the answer" if status == 200 else f"a replayed {status}" if status else "no recording")
        else:
            out.append(outcome)
    return out


def _wait_labels(r: Run, sc: Scenario) -> list[str]:
    """Each wait as the contract reads it: the server's asked wait, a backoff band, or the raw value."""
    s = sc.settings_dict()
    labels = []
    for i, wait in enumerate(r.sleeps):
        step = sc.steps[i] if i < len(sc.steps) else "ok"
        asked = _asked(step)
        lo_f, hi_f = CONTRACT.jitter
        ceiling = CONTRACT.ceiling(i + 1, s["base_delay"], s["max_delay"])
        if asked is not None and asked[0] > 0 and abs(wait - asked[0]) <= asked[1]:
            labels.append(f"the {asked[0]:g} s the server asked")
        elif lo_f * ceiling - 1e-9 <= wait <= hi_f * ceiling + 1e-9:
            labels.append(f"a backoff before retry {i + 1} ({lo_f * ceiling:g}-{hi_f * ceiling:g} s)")
        else:
            labels.append(f"{wait:.3g} s")
    return labels


def _ending(r: Run) -> str:
    if r.error is not None:
        status = getattr(r.error, "status_code", None)
        return f"raised {type(r.error).__name__}" + (f" ({status})" if status else "")
    if not r.results:
        return "returned nothing"
    got = r.results[-1]
    texts = [_answer_text(body) for status, _, body in r.answers if status == 200]
    if isinstance(got, str) and got and texts and got == texts[-1]:
        return "returned the answer's text"
    return f"returned {got!r:.40}"


def observe(module: ModuleType, sc: Scenario) -> dict[str, Any]:
    """The scenario's observable behaviour, as plain data."""
    r = run(module, sc)
    return {"requests": _requests(r), "ending": _ending(r), "waits": _wait_labels(r, sc)}


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def compare(ctx: Context, check: str, sc: Scenario,
            observer: Callable[[ModuleType, Scenario], dict[str, Any]] = observe) -> str | None:
    """None if the learner's client behaves as the reference in ``sc``, else a sentence saying how not."""
    ctx.attr("GPTClient")  # a clear failure if the module did not import or defines no GPTClient
    module = ctx.module
    assert module is not None
    mine = _canonical(observer(module, sc))  # the learner's own exceptions reach the runner
    name = f"{check}:{sc.text}:{observer.__name__}"
    ref = diff.reference_observation(ctx.exercise.id, ctx.exercise.file, name, lambda m: observer(m, sc))
    if mine == ref:
        return None
    return explain(sc, mine, ref)


def _listed(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def step_why(step: str) -> str:
    """What the contract says about one scripted failure."""
    words = step.split()
    if not words or words[0] == "ok":
        return "an answer ends the call"
    if words[0] == "timeout":
        return "the contract retries timeouts (openai.APITimeoutError)"
    if words[0] == "reset":
        return "the contract retries dropped connections (openai.APIConnectionError)"
    status = int(words[0])
    name = _status_name(status)
    asked = _asked(step)
    if f"{CONTRACT.should_retry_header}=false" in words:
        return f"the server's {CONTRACT.should_retry_header}: false has the last word, even on a {name}"
    if f"{CONTRACT.should_retry_header}=true" in words:
        return f"the server's {CONTRACT.should_retry_header}: true has the last word, even on a {name}"
    if f"code={CONTRACT.no_credit_code}" in words:
        return f"a 429 with code {CONTRACT.no_credit_code} means no credit is left: waiting adds none, so it is raised at once"
    if status in CONTRACT.unnamed_statuses:
        return f"the contract retries only 408, 409, 429 and statuses >= 500, so a {name} is raised at once"
    if not CONTRACT.retried(status):
        return f"a {name} fails the same way every time, so it is raised at once as openai.{CONTRACT.status_errors.get(status, 'APIStatusError')}"
    if asked is not None and asked[0] > CONTRACT.max_retry_after:
        return f"a {name} asking for more than {CONTRACT.max_retry_after:g} s is not retried at all"
    if asked is not None and asked[0] > 0:
        return f"a {name} is retried after the {asked[0]:g} s the server asks"
    rule = "every status >= 500" if status >= CONTRACT.server_errors_from else f"{status}"
    return f"a {name} is transient: the contract retries {rule}"


def explain(sc: Scenario, mine: dict[str, Any], ref: dict[str, Any]) -> str:
    """The first observable difference, in words, naming the scenario and the contract's reason."""
    head = f"{sc.text}: "
    if "raised" in ref:  # the reference itself failed: a course problem, shown as such
        return head + f"the reference raised {ref['raised']}"
    a, b = mine.get("requests") or [], ref.get("requests") or []
    if a != b:
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        if k == len(b):  # the reference stopped where yours went on
            why = sc.why or step_why(sc.steps[k - 1] if 0 < k <= len(sc.steps) else "ok")
            return head + (f"after request {k} ({b[-1] if b else 'none'}) your client sent another and {mine['ending']}; "
                           f"the reference stopped and {ref['ending']}: {why}")
        if k == len(a):  # yours stopped where the reference went on
            why = sc.why or step_why(sc.steps[k - 1] if 0 < k <= len(sc.steps) else "ok")
            return head + (f"after request {k} ({a[-1] if a else 'none'}) your client stopped and {mine['ending']}; "
                           f"the reference sent request {k + 1} and {ref['ending']}: {why}")
        return head + f"request {k + 1} met {a[k]}, the reference's met {b[k]}"
    if mine.get("ending") != ref.get("ending"):
        why = sc.why or step_why(sc.steps[len(a) - 1] if 0 < len(a) <= len(sc.steps) else "ok")
        return head + f"after {len(a)} request(s) ({_listed(a)}) your client {mine['ending']}; the reference {ref['ending']}: {why}"
    for key in ("waits", "log"):
        x, y = mine.get(key), ref.get(key)
        if x == y:
            continue
        if not isinstance(x, list) or not isinstance(y, list):
            return head + f"{key}: yours {x!r:.80}, the reference {y!r:.80}"
        if len(x) != len(y):
            if key == "waits":
                return head + f"your client waited {len(x)} time(s) ({_listed(x)}); the reference {len(y)} ({_listed(y)})"
            return head + f"{len(x)} log record(s); one per attempt is {len(y)}"
        i = next(i for i, (u, v) in enumerate(zip(x, y)) if u != v)
        if key == "waits":
            step = sc.steps[i] if i < len(sc.steps) else "ok"
            return head + f"wait {i + 1} (after the {shown_step(step)}) was {x[i]}; the contract asks for {y[i]}" + (f" ({sc.why})" if sc.why else "")
        return head + f"log record {i + 1}: {diff.first_difference(x[i], y[i]) or 'differs'}" + (f" ({sc.why})" if sc.why else "")
    return head + (diff.first_difference(mine, ref) or "differs from the reference")


def graded(ctx: Context, check: str, scenarios: Sequence[Scenario], passed: str,
           observer: Callable[[ModuleType, Scenario], dict[str, Any]] = observe) -> tuple[bool, str]:
    """(False, the first scenario's difference from the reference) or (True, ``passed``)."""
    for sc in scenarios:
        problem = compare(ctx, check, sc, observer)
        if problem:
            return False, problem
    return True, passed


# --------------------------------------------------------------------------- the taxonomy


RETRIED = [Scenario((s, "ok"), step_why(s)) for s in (
    *(str(x) for x in sorted(CONTRACT.retry_statuses)), *(str(x) for x in CONTRACT.server_statuses),
    "timeout", "reset", f"400 {CONTRACT.should_retry_header}=true")]

NOT_RETRIED = [Scenario((s, "ok"), step_why(s)) for s in (
    *(str(x) for x in CONTRACT.fatal_statuses), *(str(x) for x in CONTRACT.unnamed_statuses), f"429 code={CONTRACT.no_credit_code}",
    f"503 {CONTRACT.should_retry_header}=false", f"409 {CONTRACT.should_retry_header}=false")]


@register("ex03.retried")
def retried(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "retried", RETRIED, f"{len(RETRIED)} transient failures (408, 409, 429, 5xx, timeout, reset, "
                  "x-should-retry: true) each retried once, then answered")


@register("ex03.not-retried")
def not_retried(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "not-retried", NOT_RETRIED,
                  "400, 401, 403, 404, 422, statuses the contract does not name (413, 499), an insufficient_quota 429 "
                  "and x-should-retry: false each sent once and raised as their typed error")


# --------------------------------------------------------------------------- waiting

_LONG = (("deadline", 300.0),)
RETRY_AFTER = [
    Scenario(("429 retry-after-ms=2500 retry-after=7", "429 retry-after=4", "ok"),
             "retry-after-ms (milliseconds) wins over retry-after, then retry-after is seconds"),
    Scenario(("503 retry-after={date+30}", "ok"), "a retry-after that is an HTTP date asks for the time until that date"),
    Scenario(("429 retry-after-ms=250", "ok"), "a quarter of a second is what the server asks: wait that, not a backoff"),
    Scenario(("429 retry-after-ms=0", "ok"), "a Retry-After of 0 asks for nothing: back off as usual"),
    Scenario(("429 retry-after=soon", "ok"), "an unreadable Retry-After asks for nothing: back off as usual"),
    Scenario(("503 retry-after={date-30}", "ok"), "an HTTP date in the past asks for nothing: back off as usual"),
    Scenario((f"429 retry-after={CONTRACT.max_retry_after:g}", "ok"),
             f"a Retry-After of exactly {CONTRACT.max_retry_after:g} s is honoured", _LONG),
    Scenario((f"429 retry-after={CONTRACT.max_retry_after + 1:g}", "ok"),
             f"a server asking for more than {CONTRACT.max_retry_after:g} s is not retried at all (the SDK's rule)", _LONG),
    Scenario(("503 retry-after-ms=150000", "ok"),
             f"150,000 ms is 150 s, more than {CONTRACT.max_retry_after:g} s: not retried at all", _LONG),
]


@register("ex03.retry-after")
def retry_after(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "retry-after", RETRY_AFTER,
                  "retry-after-ms, retry-after in seconds and as an HTTP date honoured; 0, unreadable and past values "
                  f"fall back to backoff; over {CONTRACT.max_retry_after:g} s raised at once")


BACKOFF = [
    Scenario(("500", "502", "503", "ok"), "with base_delay=1 the waits lie in [0.5, 1], [1, 2], [2, 4] s (doubling, jitter in [0.5, 1])"),
    Scenario(("500",) * 5 + ("ok",), "waits double from base_delay=1.5 and stop growing at max_delay=5",
             (("max_attempts", 6), ("base_delay", 1.5), ("max_delay", 5.0))),
]


@register("ex03.backoff")
def backoff(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "backoff", BACKOFF, "waits double from base_delay within the jitter band, capped at max_delay")


@register("ex03.jitter")
def jitter(ctx: Context) -> tuple[bool, str]:
    module = ctx.module
    ctx.attr("GPTClient")
    assert module is not None
    first: list[float] = []
    for seed in range(8):  # eight independent clients, as eight processes would be, each with its own rng
        r = run(module, Scenario(("500", "ok"), ""), seed=seed)
        if r.error is not None or len(r.sleeps) != 1:
            return False, f"a 500 then the answer: {_ending(r)} after waits {[round(w, 3) for w in r.sleeps]}"
        first.append(r.sleeps[0])
    spread = max(first) - min(first)
    if len({round(x, 9) for x in first}) < 6 or spread < 0.05:
        return False, (f"eight clients, each given its own rng, waited {[round(w, 3) for w in first]} s after the same 500: "
                       "without random jitter they all retry together")
    again = run(module, Scenario(("500", "ok"), ""), seed=0).sleeps
    if again[:1] != first[:1]:
        return False, (f"two clients given the same rng (random.Random(0)) waited {first[0]:.3f} s and "
                       f"{again[0] if again else 0:.3f} s after the same 500: draw the jitter from the rng the constructor "
                       "was given (self.rng), not from the random module")
    return True, f"eight clients' first waits are spread over {min(first):.3f}-{max(first):.3f} s"


# --------------------------------------------------------------------------- stopping

GIVES_UP = [
    Scenario(("503",) * 5, "max_attempts=4: four requests, then the last error is re-raised"),
    Scenario(("500", "429", "timeout", "reset"), "after max_attempts the last error (a dropped connection) is re-raised"),
    Scenario(("timeout",) * 4, "after max_attempts the last timeout is re-raised as openai.APITimeoutError"),
    Scenario(("429", "503", "401"), "a 401 ends the retries at once, whatever came before"),
]


@register("ex03.gives-up")
def gives_up(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "gives-up", GIVES_UP, "stops after max_attempts or at a fatal error and re-raises the last typed error")


NO_TEXT = [Scenario((), "an answer with no text (filtered output) raises EmptyResponseError, never None or ''",
                    calls=("filtered",)),
           Scenario((), "a refusal is no text either: raise EmptyResponseError, never return the refusal as the reply",
                    calls=("refused",))]


@register("ex03.no-text")
def no_text(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "no-text", NO_TEXT, "an answer with no text (filtered, or a refusal) raised EmptyResponseError after one request")


DEADLINE = [
    Scenario(("429 retry-after=90", "ok"), "Retry-After 90 s cannot fit a 60 s deadline: raise at once"),
    Scenario(("429 retry-after=60", "ok"), "a wait that ends exactly at the 60 s deadline still fits"),
    Scenario(("429 retry-after=30", "429 retry-after=30", "429 retry-after=1", "ok"),
             "after 60 s of waiting, one more second would end past the 60 s deadline: raise the last error"),
]


@register("ex03.deadline")
def deadline(ctx: Context) -> tuple[bool, str]:
    ok, detail = graded(ctx, "deadline", DEADLINE, "")
    if not ok:
        return False, detail
    module = ctx.module
    assert module is not None
    sc = Scenario(("500",) * 9 + ("ok",), "", (("max_attempts", 10), ("base_delay", 4.0), ("deadline", 20.0)))
    r = run(module, sc)
    total = sum(r.sleeps)
    what = f"{sc.text}: waits {[round(w, 2) for w in r.sleeps]} s ({total:.1f} s in all), then {_ending(r)}"
    if r.error is None or total > 20.0 + 1e-9:
        return False, f"{what}; the waits must end within the 20 s deadline and the last error be raised"
    following = CONTRACT.ceiling(len(r.sleeps) + 1, 4.0, CONTRACT.max_delay)
    if len(r.outcomes) < 10 and 20.0 - total >= following + 1e-9:
        return False, f"{what}; you stopped with {20.0 - total:.1f} s left, enough for the next wait (at most {following:g} s)"
    return True, f"raised at once when Retry-After overran the deadline; backoff stopped after {total:.1f} s of a 20 s deadline"


# --------------------------------------------------------------------------- mixed sequences


def _mixed() -> list[Scenario]:
    """Sequences of the contract's steps, drawn with a fixed seed, shortest first."""
    pool = [*(str(s) for s in sorted(CONTRACT.retry_statuses | set(CONTRACT.server_statuses))), "timeout", "reset",
            *(str(s) for s in CONTRACT.fatal_statuses), f"429 code={CONTRACT.no_credit_code}",
            "429 retry-after-ms=2500", "503 retry-after=3", f"503 {CONTRACT.should_retry_header}=false",
            f"429 retry-after={CONTRACT.max_retry_after + 30:g}"]
    rng = random.Random(2026)
    found: dict[tuple[str, ...], Scenario] = {}
    while len(found) < 16:
        steps = tuple(rng.choice(pool) for _ in range(rng.randint(2, 5))) + ("ok",)
        found.setdefault(steps, Scenario(steps, "", (("deadline", 1000.0),)))
    return sorted(found.values(), key=lambda s: (len(s.steps), s.steps))


MIXED = _mixed()


@register("ex03.mixed")
def mixed(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "mixed", MIXED, f"{len(MIXED)} mixed sequences of the contract's failures: same requests, waits "
                  "and outcome as the reference")


# --------------------------------------------------------------------------- accounting


def _billed(r: Run) -> dict[str, float]:
    """The stats the contract expects from the answers a run received (every 200, with or without text)."""
    want: dict[str, float] = {key: 0 for key in CONTRACT.stats}
    for status, _, body in r.answers:
        if status != 200 or not isinstance(body, dict):
            continue
        usage = body["usage"]
        inp, cached, written, out, _ = usage_details(usage)
        want["requests"] += 1
        want["input_tokens"] += inp
        want["cached_tokens"] += cached
        want["cache_write_tokens"] += written
        want["output_tokens"] += out
        want["cost_usd"] += cost(usage, body["model"]).total_usd
    return want


def _wrong_stats(got: Any, want: dict[str, float]) -> list[str]:
    """What differs between get_usage_stats() and the expected stats, as "key=got (expected ...)" phrases."""
    if not isinstance(got, dict):
        return [f"get_usage_stats() returned {type(got).__name__}, not a dict"]
    wrong = []
    for key, value in want.items():
        g = got.get(key)
        ok = isinstance(g, (int, float)) and (math.isclose(g, value, rel_tol=1e-9, abs_tol=1e-12) if key == "cost_usd" else g == value)
        if not ok:
            wrong.append(f"{key}={g!r} (expected {value:.8g})")
    return wrong


@register("ex03.usage-cost")
def usage_cost(ctx: Context) -> tuple[bool, str]:
    ctx.attr("GPTClient")
    module = ctx.module
    assert module is not None
    sc = Scenario(("500", "ok", "ok", "ok"), "", calls=tuple(f"support{i}" for i in range(len(SUPPORT_QUESTIONS))))
    r = run(module, sc)
    if r.error is not None or len(r.results) != len(SUPPORT_QUESTIONS):
        return False, f"three support calls (the first meets a 500): {_ending(r)} after {len(r.results)} answer(s)"
    want = _billed(r)
    got = r.gpt.get_usage_stats()
    if not isinstance(got, dict):
        return False, f"get_usage_stats() returned {type(got).__name__}, not a dict"
    wrong = _wrong_stats(got, want)
    if wrong:
        return False, "after three support calls (one cache write, two cache reads; the first call met a 500): " + ", ".join(wrong)
    empty = run(module, Scenario((), "", calls=("filtered",)))
    wrong = _wrong_stats(empty.gpt.get_usage_stats(), _billed(empty))
    if wrong:
        return False, ("after an answer with no text (filtered output, billed all the same; chat_completion raised "
                       f"{type(empty.error).__name__ if empty.error else 'nothing'}): " + ", ".join(wrong))
    got["requests"] = -1  # a caller changing the dict it was given must not change the client's accounting
    if r.gpt.get_usage_stats().get("requests") == -1:
        return False, "get_usage_stats() returns the client's own dict, so a caller that changes it changes your accounting: return a copy"
    return True, (f"3 requests, {want['input_tokens']:,} input ({want['cached_tokens']:,} read from the cache, "
                  f"{want['cache_write_tokens']:,} written to it) + {want['output_tokens']:,} output tokens = ${want['cost_usd']:.6f}")


# --------------------------------------------------------------------------- logging


def _log_observation(module: ModuleType, sc: Scenario) -> dict[str, Any]:
    """Each log record's fields as the contract reads them (the request id and wait checked against what happened)."""
    r = run(module, sc)
    out = []
    for i, rec in enumerate(r.records):
        fields = {k: getattr(rec, k, "<missing>") for k in CONTRACT.log_fields}
        rid = fields["request_id"]
        actual = r.request_ids[i] if i < len(r.request_ids) else "<no such attempt>"
        wait = fields["wait"]
        if i < len(r.sleeps):
            wait_label = "the wait that followed" if isinstance(wait, (int, float)) and math.isclose(wait, r.sleeps[i], rel_tol=1e-9) \
                else f"{wait!r} (the wait that followed was {r.sleeps[i]:.3g} s)"
        else:
            no_wait = isinstance(wait, (int, float)) and not isinstance(wait, bool) and wait == 0
            wait_label = "no wait" if no_wait else f"{wait!r} (the contract logs 0 when no wait follows)"
        out.append({
            "attempt": fields["attempt"],
            "status": fields["status"],
            "request_id": "the response's request id" if rid == actual else f"{rid!r} (the response's was {actual!r})",
            "wait": wait_label,
            "level": rec.levelname,
        })
    return {"log": out, "requests": _requests(r), "ending": _ending(r)}


LOGGED = [
    Scenario(("429 retry-after-ms=500", "timeout", "reset", "500", "ok"),
             "one record per attempt: attempt, status (or 'timeout' / 'connection_error'), request id, wait; "
             "WARNING for a retried failure, INFO for the success", (("max_attempts", 5),)),
    Scenario(("503", "401"), "the last failure is logged at ERROR with no wait"),
]


@register("ex03.logging")
def logging_check(ctx: Context) -> tuple[bool, str]:
    return graded(ctx, "logging", LOGGED, "one record per attempt with request_id, attempt, status and wait as attributes, "
                  "at the contract's levels", _log_observation)


def _leak(record: logging.LogRecord) -> str | None:
    """Where a record shows the planted key (or its Authorization header), if it does."""
    secret = SECRET_KEY[len("sk-proj-"):]
    pieces = {secret[i:i + 12] for i in range(0, len(secret) - 11, 6)}
    texts = {"the message": record.getMessage()}
    for key, value in vars(record).items():
        if key not in ("msg", "args", "exc_info", "exc_text", "stack_info", "message"):
            texts[f"the `{key}` attribute"] = repr(value)
    if record.exc_info:
        texts["the logged traceback"] = logging.Formatter().formatException(record.exc_info)
    for where, text in texts.items():
        if "Bearer " in text or any(p in text for p in pieces):
            return where
    return None


@register("ex03.no-secrets-in-logs")
def no_secrets_in_logs(ctx: Context) -> tuple[bool, str]:
    ctx.attr("GPTClient")
    module = ctx.module
    assert module is not None
    seen = 0
    for steps in (("429 retry-after-ms=500", "401"), ("500", "ok"), ("timeout", "ok")):
        r = run(module, Scenario(steps, ""))
        seen += len(r.records)
        for n, rec in enumerate(r.records, 1):
            where = _leak(rec)
            if where:
                return False, (f"[{', '.join(steps)}] log record {n}: {where} holds the API key (or its Authorization "
                               "header). Log the request id, status and wait, never the request's headers or the client's key")
    if not seen:
        return False, "no log records were written, so there is nothing to check: log every attempt"
    return True, f"{seen} log records, none with the API key or the Authorization header"


# --------------------------------------------------------------------------- who retries


@register("ex03.no-sdk-retries")
def no_sdk_retries(ctx: Context) -> tuple[bool, str]:
    ctx.attr("GPTClient")
    module = ctx.module
    assert module is not None
    r = run(module, Scenario(("503",) * 6 + ("ok",), "", (("max_attempts", 2),), max_retries=2))
    n = len(r.outcomes)
    if n != 2 or not isinstance(r.error, openai.InternalServerError):
        return False, (f"given an SDK client with max_retries=2 and max_attempts=2, {n} HTTP requests were sent "
                       f"(expected 2) and your client {_ending(r)}: use client.with_options(max_retries=0) in __init__")
    sdk = faults.client([], clock=Clock(), max_retries=2, api_key=SECRET_KEY)
    module.GPTClient(sdk, MODEL, sleep=Clock().sleep, clock=Clock().time, logger=_logger("sdk")[0], rng=random.Random(1))
    if sdk.max_retries != 2:
        return False, (f"GPTClient changed the client it was given (its max_retries is now {sdk.max_retries}): other code "
                       "sharing that client loses its retries. Keep client.with_options(max_retries=0), a copy, instead")
    return True, "2 HTTP requests for max_attempts=2: the SDK's own retries are off (on a copy: the caller's client is unchanged)"
