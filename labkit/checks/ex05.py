"""Checks for exercise 05: batch and async processing of 1,000 customer emails.

Every run goes through a real ``AsyncOpenAI`` on :class:`labkit.ratelimit.LoopFaults` (the
recordings in ``cassettes/ex05.json``, 50 ms +/- 10 ms of modelled latency, faults scripted per
email) on a :class:`labkit.ratelimit.VirtualTimeLoop`: waiting costs no real time, and the
timestamps, peaks and throughput are the same on every machine. The graded full run (GRADED
emails, with ``FULL_RUN``'s limits) is made once per check session and shared by the checks
that read it. The emails, the latency model and the scripted faults are the lesson's
(``labkit.course.ex05``); the grading is here.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..course.ex05 import (
    DEFAULT_QUEUE,
    FAULTS,
    FIELDS,
    FULL_RUN,
    LATENCY_BASE,
    MODEL,
    RETRY_AFTER_MS,
    ROUTES,
    Category,
    RunLimits,
    Sentiment,
    Urgency,
    email_text,
    faults_for,
    load_emails,
    virtual_latency,
)
from ..ratelimit import Crash, lab_client, run_virtual, theoretical_rps, window_peak
from ..replay import load_cassette, resolve_cassette
from ..tokens import count_tokens
from . import Context, register

WINDOWS = (0.25, 0.5, 1.0, 2.0)
#: The limits of the small scenario runs (faults, crash): 4 in flight, rate limits that never bind.
SMALL_RUN: RunLimits = {"concurrency": 4, "rpm": 60_000, "tpm": 50_000_000}


# --------------------------------------------------------------------------- data


@lru_cache(maxsize=1)
def emails() -> tuple[dict[str, Any], ...]:
    """The lesson's emails, read once per process."""
    return tuple(load_emails())


@lru_cache(maxsize=1)
def _by_content() -> dict[str, str]:
    """Email id by the user message the exercise sends for it (how the checks recognise a request)."""
    return {email_text(e): e["id"] for e in emails()}


@lru_cache(maxsize=1)
def recorded_answers() -> dict[str, dict[str, str]]:
    """Email id -> the classification its recording answers with."""
    ids = _by_content()
    out = {}
    for inter in load_cassette(resolve_cassette("ex05")).interactions:
        messages = (inter.body or {}).get("messages") or []
        email_id = ids.get(messages[-1].get("content")) if messages else None
        if email_id and inter.status == 200 and "response_format" in (inter.body or {}):
            out[email_id] = json.loads(json.loads(inter.content)["choices"][0]["message"]["content"])
    return out


def id_of(body: dict[str, Any] | None) -> str | None:
    messages = (body or {}).get("messages") or []
    content = messages[-1].get("content") if messages and isinstance(messages[-1], dict) else None
    return None if content is None else _by_content().get(content)


def tokens_of(body: dict[str, Any] | None) -> int:
    """What a request counts against TPM: prompt tokens plus its output limit."""
    body = body or {}
    model = body.get("model", MODEL)
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return count_tokens(body.get("messages") or [], model) + int(limit)


# --------------------------------------------------------------------------- running


@dataclass
class Run:
    """One call of the learner's process_batch and what the transport saw."""

    transport: Any
    lines: list[Any]
    elapsed: float
    returned: Any = None
    raised: BaseException | None = None

    def ok_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.lines:
            if isinstance(item, dict) and item.get("status") == "ok":
                counts[str(item.get("id"))] = counts.get(str(item.get("id")), 0) + 1
        return counts

    def attempts_by_id(self) -> dict[str | None, list[Any]]:
        out: dict[str | None, list[Any]] = {}
        for a in self.transport.attempts:
            out.setdefault(id_of(a.body), []).append(a)
        return out


def _lines(path: Path) -> list[Any]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(None)
    return out


def lab(**kwargs: Any) -> Any:
    """An AsyncOpenAI on the ex05 recordings with the checks' latency model."""
    return lab_client("ex05", latency=virtual_latency(), **kwargs)


def run_batch(
    ctx: Context, batch: list[dict[str, Any]], out: Path, *, client: Any = None, catch: tuple[type[BaseException], ...] = (Exception,),
    **params: Any,
) -> Run:
    """Run the learner's process_batch on the virtual clock; exceptions in ``catch`` are kept, not raised."""
    process = ctx.attr("process_batch")
    client = client or lab()
    clock: dict[str, float] = {}

    async def go() -> Any:
        loop = asyncio.get_running_loop()
        clock["start"] = loop.time()
        try:
            return await process(client, [dict(e) for e in batch], out, progress=False, **params)
        finally:
            clock["end"] = loop.time()

    returned, raised = None, None
    try:
        returned = run_virtual(go())
    except catch as err:
        raised = err
    return Run(client._labkit_transport, _lines(out), clock.get("end", 0.0) - clock.get("start", 0.0), returned, raised)


#: Emails in the graded batch. The SDK's own ``parse()`` costs about 3 ms of CPU per request
#: (it rebuilds the JSON schema every call), so all 1,000 would cost ~3 s per learner and a
#: class of 100 several minutes; the notebook and bench/batch.py run all 1,000 instead.
GRADED = 157


@lru_cache(maxsize=1)
def graded_batch() -> tuple[dict[str, Any], ...]:
    """The first emails plus every hard case (empty, very long, non-English, injection); an odd size."""
    head = list(emails()[: GRADED])
    hard = [e for e in emails()[GRADED:] if e.get("hard_case")]
    return tuple(head[: GRADED - len(hard)] + hard)


def full_run(ctx: Context) -> Run:
    """The graded batch at concurrency 12 under the latency model (made once per check session)."""
    cached = ctx.memo.get("ex05.full_run")
    if not isinstance(cached, Run):
        with tempfile.TemporaryDirectory() as tmp:
            cached = run_batch(ctx, list(graded_batch()), Path(tmp) / "results.jsonl", **FULL_RUN)
        ctx.memo["ex05.full_run"] = cached
    if cached.raised is not None:
        raise cached.raised
    return cached


def _error(run: Run) -> str:
    err = run.raised
    return f"process_batch raised {type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"


def expected_queue(fields: Mapping[str, str]) -> str:
    """The queue the lesson's routing rules (ROUTES, then DEFAULT_QUEUE) give these fields."""
    return next((str(queue) for field, value, queue in ROUTES if fields[field] == value), str(DEFAULT_QUEUE))


def _one_ok_line_each(run: Run, ids: list[str]) -> str | None:
    """What is wrong if some of ``ids`` have no ok line or an email has several, else None."""
    counts = run.ok_counts()
    missing = [i for i in ids if counts.get(i, 0) == 0]
    if missing:
        return f"{len(missing)} of {len(ids)} emails have no ok line (e.g. {', '.join(missing[:3])})"
    twice = [i for i, n in counts.items() if n > 1]
    if twice:
        return f"{len(twice)} emails have more than one ok line (e.g. {twice[0]} x{counts[twice[0]]})"
    return None


# --------------------------------------------------------------------------- checks


@register("ex05.structured")
def structured(ctx: Context) -> tuple[bool, str]:
    client = lab()
    email = emails()[0]
    call = ctx.attr("classify")(client, dict(email))
    if not inspect.isawaitable(call):
        return False, f"classify() returned {type(call).__name__} without awaiting: make it `async def` and await the AsyncOpenAI client"
    if not asyncio.iscoroutine(call):  # what asyncio.Runner.run() would raise for another awaitable
        raise ValueError(f"a coroutine was expected, got {call!r}")
    got = run_virtual(call)
    attempts = client._labkit_transport.attempts
    if len(attempts) != 1:
        return False, f"{len(attempts)} requests for one email (expected exactly 1)"
    body = attempts[0].body or {}
    fmt = body.get("response_format") or {}
    if fmt.get("type") != "json_schema" or not (fmt.get("json_schema") or {}).get("strict"):
        shown = fmt.get("type", "none")
        return False, f"the request's response_format is {shown!r}, not a strict json_schema: use chat.completions.parse(response_format=Classification)"
    if '"enum"' not in json.dumps(fmt["json_schema"].get("schema", {})):
        return False, "the schema has no enums: sentiment, urgency and category should be Enum fields"
    parsed = getattr(getattr(getattr(got, "choices", [None])[0], "message", None), "parsed", None)
    if not isinstance(parsed, BaseModel):
        return False, f"returned {type(got).__name__} whose .choices[0].message.parsed is {type(parsed).__name__}: return the parse() result"
    want = recorded_answers()[email["id"]]
    seen = {k: str(getattr(parsed, k, None)) for k in FIELDS}
    if seen != {k: want[k] for k in seen}:
        return False, f"parsed {seen}, the response said { {k: want[k] for k in seen} }"
    return True, f"one strict json_schema request; parsed {seen['urgency']} / {seen['sentiment']} / {seen['category']}"


@register("ex05.routing")
def routing(ctx: Context) -> tuple[bool, str]:
    route, Classification = ctx.attr("route"), ctx.attr("Classification")
    wrong = []
    n = 0
    for sentiment in Sentiment:
        for urgency in Urgency:
            for category in Category:
                fields = {"sentiment": sentiment, "urgency": urgency, "category": category}
                c = Classification(**fields, summary="probe")
                want = expected_queue(fields)
                got = [str(route(c)) for _ in range(2)]
                n += 1
                if got[0] != got[1]:
                    wrong.append(f"{urgency}/{sentiment}/{category} gave {got[0]} then {got[1]} (not pure)")
                elif got[0] != want:
                    wrong.append(f"{urgency}/{sentiment}/{category} -> {got[0]} (expected {want})")
    if wrong:
        return False, f"{len(wrong)} of {n} wrong, e.g. " + "; ".join(wrong[:2])
    return True, f"all {n} combinations routed correctly"


@register("ex05.all-processed")
def all_processed(ctx: Context) -> tuple[bool, str]:
    run = full_run(ctx)
    ids = [e["id"] for e in graded_batch()]
    problem = _one_ok_line_each(run, ids)
    if problem:
        return False, f"{problem}; {len(run.transport.attempts)} requests were sent"
    want = recorded_answers()
    for item in run.lines:
        if isinstance(item, dict) and item.get("status") == "ok":
            exp = want.get(str(item.get("id")), {})
            diff = [k for k in FIELDS if str(item.get(k)) != exp.get(k)]
            if diff:
                return False, f"{item['id']}: the line says {diff[0]}={item.get(diff[0])!r}, the model answered {exp.get(diff[0])!r}"
    return True, f"{len(ids)} emails (every hard case included), one ok line each, matching the answers ({len(run.transport.attempts)} requests)"


@register("ex05.concurrency-limit")
def concurrency_limit(ctx: Context) -> tuple[bool, str]:
    run = full_run(ctx)
    limit, peak = FULL_RUN["concurrency"], run.transport.max_in_flight
    if peak > limit:
        return False, f"{peak} requests were in flight at once with concurrency={limit}"
    if peak < 2:
        return False, f"never more than {peak} request in flight with concurrency={limit}: the emails ran one by one"
    return True, f"peak {peak} in flight with concurrency={limit}"


@register("ex05.throughput")
def throughput(ctx: Context) -> tuple[bool, str]:
    limit = theoretical_rps(FULL_RUN["concurrency"], LATENCY_BASE, FULL_RUN["rpm"])
    run = full_run(ctx)
    rps = len(graded_batch()) / max(run.elapsed, 1e-9)
    share = rps / limit
    text = f"{rps:.0f} emails/s over {run.elapsed:.2f} s = {share:.0%} of the theoretical {limit:.0f}/s (concurrency {FULL_RUN['concurrency']} / {LATENCY_BASE * 1000:.0f} ms)"
    return share >= 0.9, text


@register("ex05.isolation")
def isolation(ctx: Context) -> tuple[bool, str]:
    batch = list(emails()[400:440])
    bad, flaky = batch[3], batch[10]
    faults = {email_text(bad): ["400"], email_text(flaky): ["500"] * 8}
    with tempfile.TemporaryDirectory() as tmp:
        run = run_batch(ctx, batch, Path(tmp) / "r.jsonl", client=lab(per_item=faults), max_attempts=3, **SMALL_RUN)
    if run.raised is not None:
        return False, _error(run) + ": one failing email stopped the whole batch"
    counts = run.ok_counts()
    others = [e["id"] for e in batch if e["id"] not in (bad["id"], flaky["id"])]
    missing = [i for i in others if not counts.get(i)]
    if missing:
        return False, f"{len(missing)} healthy emails have no ok line (e.g. {missing[0]})"
    recorded = {str(item.get("id")) for item in run.lines if isinstance(item, dict) and item.get("status") not in (None, "ok")}
    lost = [e["id"] for e in (bad, flaky) if e["id"] not in recorded]
    if lost:
        return False, f"the failing email {lost[0]} has no error line: write record_error(...) for it"
    return True, f"38 ok lines; {bad['id']} (400) and {flaky['id']} (500 every time) recorded as errors"


@register("ex05.rate-limit")
def rate_limit(ctx: Context) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as tmp:
        rpm = 6_000
        req = run_batch(ctx, list(emails()[:120]), Path(tmp) / "rpm.jsonl", concurrency=32, rpm=rpm, tpm=100_000_000)
        tpm = 720_000
        tok = run_batch(ctx, list(emails()[200:270]), Path(tmp) / "tpm.jsonl", concurrency=32, rpm=1_000_000, tpm=tpm)
    for run in (req, tok):
        if run.raised is not None:
            return False, _error(run)
    starts = [a.at for a in req.transport.attempts]
    if len(starts) < 120:
        return False, f"only {len(starts)} requests for 120 emails"
    for w in WINDOWS:
        peak, allowed = window_peak(starts, w), rpm / 60 * (w + 1)
        if peak > allowed + 1e-9:
            return False, f"{peak:.0f} requests started within {w:g} s; {rpm:,} rpm allows at most {allowed:.0f} (rate x window + a 1 s burst)"
    weights = [tokens_of(a.body) for a in tok.transport.attempts]
    times = [a.at for a in tok.transport.attempts]
    for w in WINDOWS:
        peak, allowed = window_peak(times, w, weights), tpm / 60 * (w + 1)
        if peak > allowed + 1e-9:
            return False, f"{peak:,.0f} tokens requested within {w:g} s; {tpm:,} tpm allows at most {allowed:,.0f} (count prompt + max_completion_tokens)"
    rps = len(starts) / max(req.elapsed, 1e-9)
    return True, f"{rpm:,} rpm held ({rps:.0f} req/s over {req.elapsed:.2f} s) and {tpm:,} tpm held in every window"


@register("ex05.retries")
def retries(ctx: Context) -> tuple[bool, str]:
    batch = list(emails()[440:464])
    limited, bad, flaky = (batch[FAULTS[k][0]] for k in ("rate-limited", "bad-request", "flaky"))
    limited_steps, flaky_steps = FAULTS["rate-limited"][1], FAULTS["flaky"][1]
    with tempfile.TemporaryDirectory() as tmp:
        run = run_batch(ctx, batch, Path(tmp) / "r.jsonl", client=lab(per_item=faults_for(batch)), max_attempts=4, **SMALL_RUN)
    if run.raised is not None:
        return False, _error(run)
    tries = run.attempts_by_id()
    counts = run.ok_counts()
    got_bad = len(tries.get(bad["id"], []))
    if got_bad != 1:
        return False, f"a 400 Bad Request was sent {got_bad} times: it is not retryable (the same request fails the same way)"
    a = tries.get(limited["id"], [])
    if len(a) != len(limited_steps) or not counts.get(limited["id"]):
        return False, f"the email answered {', then '.join(limited_steps)} was tried {len(a)} times and {'is' if counts.get(limited['id']) else 'is not'} ok: retry a 429"
    gap = a[1].at - a[0].at
    if gap < RETRY_AFTER_MS / 1000 - 1e-6:
        return False, f"retried a 429 after {gap:.3f} s although it said retry-after-ms={RETRY_AFTER_MS}"
    f = tries.get(flaky["id"], [])
    if len(f) != len(flaky_steps) or not counts.get(flaky["id"]):
        return False, f"the email answered {', '.join(flaky_steps)} was tried {len(f)} times: timeouts and 5xx are retryable"
    extra = [i for i, t in tries.items() if i not in (limited["id"], bad["id"], flaky["id"]) and len(t) != 1]
    if extra:
        return False, f"{extra[0]} was sent {len(tries[extra[0]])} times without any fault"
    return True, f"429 retried after {gap:.2f} s, timeout+503 retried, 400 sent once"


@register("ex05.resume")
def resume(ctx: Context) -> tuple[bool, str]:
    batch = list(emails()[464:504])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.jsonl"
        first = run_batch(ctx, batch, out, client=lab(crash_after=12), catch=(Exception, Crash), **SMALL_RUN)
        done = set(first.ok_counts())
        if not done:
            return False, "nothing was in the results file after a crash at the 13th request: append each line as the email finishes"
        with out.open("a", encoding="utf-8") as f:  # the crash also cut a line short
            f.write('{"id": "em-9999", "status": "o')
        second = run_batch(ctx, batch, out, **SMALL_RUN)
    if second.raised is not None:
        return False, _error(second) + " on the resumed run (a half-written last line must be tolerated)"
    redone = sorted(done & {i for i in second.attempts_by_id() if i})
    if redone:
        return False, f"the resumed run sent {len(redone)} emails that had finished before the crash (e.g. {redone[0]})"
    problem = _one_ok_line_each(second, [e["id"] for e in batch])
    if problem:
        return False, f"after resuming, {problem}"
    return True, f"{len(done)} finished before the crash; the resumed run sent only the other {len(batch) - len(done)}"
