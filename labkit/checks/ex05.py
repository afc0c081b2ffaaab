"""Checks for exercise 05: batch and async processing of customer emails.

Every run goes through a real ``AsyncOpenAI`` on :class:`labkit.ratelimit.LoopFaults` (the
recordings in ``cassettes/ex05.json``, in both APIs; the course simulator answers a valid
request that differs from the recording; 50 ms +/- 20 ms of modelled latency; faults scripted per
email) on a :class:`labkit.ratelimit.VirtualTimeLoop`: waiting costs no real time, and the
timestamps, peaks and throughput are the same on every machine. ``random`` is seeded before each
run, so backoff jitter is reproducible too.

The scenarios are drawn from the exercise's contract (``CONTRACT`` in ``labkit.course.ex05``):
every status class it names (each retryable and each final status, timeouts and dropped
connections, an answer cut off at the output limit), mixed fault sequences, the max_attempts
boundary, retries that must queue at the rate limiter, concurrency 1, adversarial ids (quotes,
SQL metacharacters, unicode with a raw line separator, 4,000 characters), a results file left
by earlier crashes, and a crash in the middle of a run. They are small (a few dozen emails each)
but large enough to expose each mistake: the full 1,000-email run is the notebook's and
bench/batch.py's. Resuming is compared with the reference solution on the same scenario (what
was sent, what was written, what was returned); retries with the contract's model of the reference
(``expected_faults``: what the reference sends and writes for each scripted email, which
tests/test_ex05.py checks against the reference itself), so a check run does not pay for a second
run of the same scenario.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from ..course.ex05 import (
    CONTRACT,
    DEFAULT_QUEUE,
    FIELDS,
    LATENCY_SEED,
    REFUSED_EMAIL,
    ROUTES,
    TRUNCATED_EMAIL,
    Category,
    Classification,
    Sentiment,
    Urgency,
    email_text,
    load_emails,
    responses_pool,
    tokens_for,
    virtual_latency,
)
from ..ratelimit import Crash, lab_client, run_virtual, theoretical_rps, user_text, window_peak
from ..replay import load_cassette, resolve_cassette
from . import CheckTimeout, Context, register
from . import differential as diff

#: Ids no system promised would be tame: JSON escapes, SQL metacharacters, unicode with a raw
#: line separator (json.dumps(..., ensure_ascii=False) leaves U+2028 as it is), and length.
ADVERSARIAL_IDS = (
    'em-"quoted", \\back\\slash',
    "em-'; DROP TABLE results; --",
    "em-ünï-日本語-🙂\u2028after-a-line-separator",
    "em-" + "x" * 4_000,
    " em-padded ",  # an id is kept as it is: stripped, it names no email
)

# --------------------------------------------------------------------------- data


@lru_cache(maxsize=1)
def pool() -> tuple[dict[str, Any], ...]:
    """The emails recorded in both APIs (the checks send only these)."""
    return tuple(responses_pool(load_emails()))


def _hard(kind: str, n: int = 0) -> dict[str, Any]:
    return [e for e in pool() if e["hard_case"] == kind][n]


def clone(email: dict[str, Any], new_id: str) -> dict[str, Any]:
    """The same email (so the same request and recording) under another id."""
    return {**email, "id": new_id}


@lru_cache(maxsize=1)
def answers() -> dict[str, dict[str, str]]:
    """The recorded classification by the user message that asked for it (chat recordings with an answer)."""
    out = {}
    for inter in load_cassette(resolve_cassette("ex05")).interactions:
        body = inter.body or {}
        if inter.status != 200 or "response_format" not in body or inter.path != "/v1/chat/completions":
            continue
        choice = json.loads(inter.content)["choices"][0]
        text = user_text(body)
        if text and choice["finish_reason"] == "stop" and choice["message"]["content"] is not None:  # not the refusal
            out[text] = json.loads(choice["message"]["content"])
    return out


# --------------------------------------------------------------------------- running


@dataclass
class Run:
    """One call of a module's process_batch and what the transport and the file show."""

    batch: list[dict[str, Any]]
    transport: Any
    lines: list[Any]
    elapsed: float
    params: dict[str, Any]
    returned: Any = None
    raised: BaseException | None = None
    at_crash: bytes | None = None
    #: the loop's clock when process_batch was called
    started: float = 0.0
    #: requests whose answer had come back when the crash came (the emails that could have finished)
    answered_at_crash: int = 0
    text: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = {email_text(e): e["id"] for e in self.batch}

    def id_of(self, body: Any) -> str | None:
        text = user_text(body)
        return None if text is None else self.ids.get(text)

    def sent(self) -> dict[str | None, list[Any]]:
        """Attempts by email id (None: a request for no email of the batch)."""
        out: dict[str | None, list[Any]] = {}
        for a in self.transport.attempts:
            out.setdefault(self.id_of(a.body), []).append(a)
        return out

    def lines_of(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for item in self.lines:
            if isinstance(item, dict):
                out.setdefault(str(item.get("id")), []).append(item)
        return out

    def ok_counts(self) -> Counter[str]:
        return Counter(str(i.get("id")) for i in self.lines if isinstance(i, dict) and i.get("status") == "ok")

    def error(self) -> str:
        err = self.raised
        text = str(err).splitlines()[0][:160] if err is not None and str(err) else ""
        return f"process_batch raised {type(err).__name__}: {text}"


def parse_lines(text: str) -> list[Any]:
    """The results file's lines (JSON Lines: separated by "\\n" only); unreadable ones as None."""
    out: list[Any] = []
    for line in text.split(CONTRACT.line_separator):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(None)
    return out


def lab(**kwargs: Any) -> Any:
    """An AsyncOpenAI on the ex05 recordings (and the simulator) with the checks' latency model."""
    return lab_client("ex05", latency=virtual_latency(), simulate=True, **kwargs)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def run_batch(
    module: ModuleType, batch: list[dict[str, Any]], out: Path, *, client: Any = None, crash_after: int | None = None,
    per_item: Mapping[str, list[str]] | None = None, **params: Any,
) -> Run:
    """Run a module's process_batch on the virtual clock; its exceptions (a Crash too) are kept, not raised."""
    process = getattr(module, "process_batch", None)
    if process is None:
        raise AttributeError("the exercise file defines no `process_batch`; keep the names the starter gives")
    at_crash: list[tuple[bytes, int]] = []
    made: list[Any] = []
    main: list[asyncio.Task[Any]] = []

    def on_crash() -> None:  # what a kill leaves: the disk as it is, and how many answers had come back
        transport = made[0]._labkit_transport
        at_crash.append((out.read_bytes() if out.exists() else b"", len(transport.attempts) - transport.in_flight))
        if main:  # a kill stops the whole process, also code that never awaits the request that met it
            main[0].get_loop().call_soon(main[0].cancel)

    client = client or lab(per_item=per_item, crash_after=crash_after, on_crash=on_crash)
    made.append(client)
    clock: dict[str, float] = {}
    random.seed(LATENCY_SEED)  # backoff jitter, the same on every run

    async def go() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, _context: None)  # a crash leaves tasks nobody awaits: no noise
        clock["start"] = loop.time()
        task = asyncio.current_task()
        if task is not None:
            main.append(task)
        try:
            return await _awaited(process(client, [dict(e) for e in batch], out, progress=False, **params))
        finally:
            clock["end"] = loop.time()

    returned, raised = None, None
    try:
        returned = run_virtual(go())
    except BaseException as err:  # the learner's code may raise anything, a Crash in a group too
        if _must_propagate(err):
            raise
        raised = Crash("simulated crash") if at_crash and isinstance(err, asyncio.CancelledError) else err
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    disk, answered = at_crash[0] if at_crash else (None, 0)
    return Run(batch, client._labkit_transport, parse_lines(text), clock.get("end", 0.0) - clock.get("start", 0.0),
               params, returned, raised, disk, clock.get("start", 0.0), answered, text)


def _must_propagate(err: BaseException) -> bool:
    """Interrupts and the check's own time limit are never the run's outcome."""
    stop = (KeyboardInterrupt, SystemExit, CheckTimeout)
    if isinstance(err, BaseExceptionGroup):
        return err.subgroup(lambda e: isinstance(e, stop)) is not None
    return isinstance(err, stop)


def crashed(err: BaseException | None) -> bool:
    """Whether a run ended with the simulated crash (alone or in an exception group)."""
    if isinstance(err, BaseExceptionGroup):
        return err.subgroup(Crash) is not None
    return isinstance(err, Crash)


def memo_run(ctx: Context, key: str, make: Callable[[ModuleType, Path], Run]) -> Run:
    """A run of the learner's module shared by the checks of one session."""
    cached = ctx.memo.get(f"ex05.{key}")
    if not isinstance(cached, Run):
        module = ctx.module
        if module is None:
            ctx.attr("process_batch")  # reports the import error
            raise AssertionError("unreachable")
        with tempfile.TemporaryDirectory() as tmp:
            cached = make(module, Path(tmp))
        ctx.memo[f"ex05.{key}"] = cached
    return cached


def _ids(ids: list[str]) -> str:
    return ", ".join(_short(i) for i in ids[:2]) + (f" and {len(ids) - 2} more" if len(ids) > 2 else "")


def counts_of(returned: Any) -> Any:
    """What process_batch returned, as the contract's counts (other keys ignored), or its repr."""
    if isinstance(returned, Mapping):
        return {k: returned.get(k) for k in CONTRACT.counts}
    return repr(returned)


def _short(text: str, width: int = 40) -> str:
    shown = text if len(text) <= width else text[: width - 1] + "…"
    return repr(shown)


# --------------------------------------------------------------------------- structured outputs


def _format_of(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The output format a request asks for, as {type, strict, schema}, in either API."""
    if path.endswith("/responses"):
        fmt = (body.get("text") or {}).get("format") or {}
        return {"type": fmt.get("type"), "strict": fmt.get("strict"), "schema": fmt.get("schema")}
    fmt = body.get("response_format") or {}
    schema = fmt.get("json_schema") or {}
    return {"type": fmt.get("type"), "strict": schema.get("strict"), "schema": schema.get("schema")}


def _parsed_of(result: Any) -> Any:
    if hasattr(result, "output_parsed"):
        return result.output_parsed
    choices = getattr(result, "choices", None) or [None]
    return getattr(getattr(choices[0], "message", None), "parsed", None)


@register("ex05.structured")
def structured(ctx: Context) -> tuple[bool, str]:
    classify = ctx.attr("classify")
    client = lab()
    email = pool()[0]
    call = classify(client, dict(email))
    if not inspect.isawaitable(call):
        return False, f"classify() returned {type(call).__name__} without awaiting: make it `async def` and await the AsyncOpenAI client"
    got = run_virtual(_awaited(call))
    attempts = client._labkit_transport.attempts
    if len(attempts) != 1:
        return False, f"{len(attempts)} requests for one email (expected exactly 1)"
    fmt = _format_of(attempts[0].path, attempts[0].body or {})
    if fmt["type"] != "json_schema" or not fmt["strict"]:
        return False, (f"the request asks for {fmt['type'] or 'free text'!r}{' (not strict)' if fmt['type'] == 'json_schema' else ''}, "
                       "not a strict json_schema: use chat.completions.parse(response_format=Classification) or "
                       "responses.parse(text_format=Classification)")
    if '"enum"' not in json.dumps(fmt["schema"] or {}):
        return False, "the schema has no enums: sentiment, urgency and category should be Enum fields"
    parsed = _parsed_of(got)
    if not isinstance(parsed, BaseModel):
        return False, (f"classify() returned {type(got).__name__} whose parsed answer is {type(parsed).__name__}: "
                       "return the parse() result itself")
    want = answers()[email_text(email)]
    seen = {k: str(getattr(parsed, k, None)) for k in FIELDS}
    if seen != {k: want[k] for k in FIELDS}:
        return False, f"parsed {seen}, the response said { {k: want[k] for k in FIELDS} }"
    api = "Responses API" if attempts[0].path.endswith("/responses") else "Chat Completions"
    return True, f"one strict json_schema request ({api}); parsed {seen['urgency']} / {seen['sentiment']} / {seen['category']}"


# --------------------------------------------------------------------------- routing


def expected_queue(fields: Mapping[str, str]) -> str:
    """The queue the lesson's routing rules (ROUTES, then DEFAULT_QUEUE) give these fields."""
    return next((str(queue) for name, value, queue in ROUTES if fields[name] == value), str(DEFAULT_QUEUE))


@register("ex05.routing")
def routing(ctx: Context) -> tuple[bool, str]:
    route = ctx.attr("route")
    wrong = []
    n = 0
    for sentiment in Sentiment:
        for urgency in Urgency:
            for category in Category:
                fields = {"sentiment": sentiment, "urgency": urgency, "category": category}
                c = Classification(sentiment=sentiment, urgency=urgency, category=category, summary="probe")
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


# --------------------------------------------------------------------------- finished_ids

#: Files finished_ids must read, each with the ids it must return: hand-picked adversarial cases.
def _results_file_cases() -> list[tuple[str, str, set[str]]]:
    ok = [json.dumps({"id": i, "status": "ok", "summary": f"about {i}\u2029done"}, ensure_ascii=False) for i in ADVERSARIAL_IDS]
    err = json.dumps({"id": "em-0002", "status": "error", "error": "NotFoundError: 404"})
    plain = json.dumps({"id": "em-0003", "status": "ok"})
    return [
        ("ids with quotes, SQL, unicode and a raw U+2028, 4,000 characters", "\n".join(ok) + "\n", set(ADVERSARIAL_IDS)),
        ("an error line only", err + "\n", set()),
        ("a line cut short at the end (no newline)", plain + "\n" + plain[:-9], {"em-0003"}),
        ("a line cut short in the middle, then more lines", ok[0][:25] + "\n" + plain + "\n\n", {"em-0003"}),
        ("an empty file", "", set()),
        ("lines that are JSON but not objects (17, null, a list)", f'17\nnull\n["em-0009", "ok"]\n{plain}\n', {"em-0003"}),
    ]


#: Ids the generated results files draw from: the adversarial ones, and other line breakers
#: (NEL, a tab, U+2029) that json.dumps(..., ensure_ascii=False) writes raw or escapes.
GENERATED_IDS = (*ADVERSARIAL_IDS, "em-0001", "em-\x85nel", "em-\ttab", "em-para\u2029graph", "em-🙂")


def generated_file(seed: int) -> tuple[list[tuple[str, str]], bool, str]:
    """A results file a run could leave (seeded): its records, whether ASCII-escaped, and how it was torn."""
    rng = random.Random(seed)
    records = [(rng.choice(GENERATED_IDS), rng.choice(["ok", "ok", "error"])) for _ in range(rng.randint(1, 5))]
    return records, rng.random() < 0.5, rng.choice(["", "end", "middle"])


def render_file(records: list[tuple[str, str]], ascii_only: bool, torn: str) -> str:
    lines = [json.dumps({"id": i, "status": s, "summary": "s"}, ensure_ascii=ascii_only) for i, s in records]
    cut = lines[0][: len(lines[0]) // 2]
    if torn == "middle":
        lines.insert(1, cut)
    return "".join(line + "\n" for line in lines) + (cut if torn == "end" else "")


def _property_finished_ids(finished_ids: Callable[[Path], Any], examples: int = 25) -> tuple[bool, str]:
    """finished_ids returns exactly the ids of complete ok lines, on generated files; a failure is shrunk."""

    def fails(records: list[tuple[str, str]], ascii_only: bool, torn: str, tmp: Path) -> str | None:
        path = tmp / "results.jsonl"
        path.write_text(render_file(records, ascii_only, torn), encoding="utf-8")
        got = set(finished_ids(path) or ())
        want = {i for i, s in records if s == "ok"}
        return None if got == want else f"returned {_ids(sorted(got)) or 'nothing'}, the ok lines have {_ids(sorted(want)) or 'none'}"

    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(examples):
            records, ascii_only, torn = generated_file(seed)
            problem = fails(records, ascii_only, torn, Path(tmp))
            if problem is None:
                continue
            for i in range(len(records) - 1, -1, -1):  # shrink: drop records while it still fails
                fewer = records[:i] + records[i + 1 :]
                if fewer and fails(fewer, ascii_only, torn, Path(tmp)):
                    records = fewer
            problem = fails(records, ascii_only, torn, Path(tmp)) or problem
            shown = ", ".join(f"{_short(i, 24)}: {s}" for i, s in records)
            how = {"": "", "end": ", the last line cut short", "middle": ", a line cut short after the first"}[torn]
            return False, f"{problem} (smallest failing file: [{shown}], ensure_ascii={ascii_only}{how})"
    return True, f"held for {examples} generated files"


@register("ex05.finished-ids")
def finished_ids_check(ctx: Context) -> tuple[bool, str]:
    finished_ids = ctx.attr("finished_ids")
    with tempfile.TemporaryDirectory() as tmp:
        missing = Path(tmp) / "never-written.jsonl"
        got = finished_ids(missing)
        if set(got or ()) != set():
            return False, f"for a results file that does not exist yet it returned {got!r}, not an empty set"
        for name, text, want in _results_file_cases():
            path = Path(tmp) / "results.jsonl"
            path.write_text(text, encoding="utf-8")
            try:
                got = set(finished_ids(path) or ())
            except Exception as err:  # noqa: BLE001 - the learner's code: say which file broke it
                return False, f"{name}: finished_ids raised {type(err).__name__}: {str(err)[:120]} (skip every line that is not a JSON object)"
            if got != want:
                hint = " (str.splitlines() splits at U+2028: split on \"\\n\" only)" if "U+2028" in name else ""
                return False, f"{name}: returned {_ids(sorted(got)) or 'nothing'}, the ok lines are {_ids(sorted(want)) or 'none'}{hint}"
    passed, detail = _property_finished_ids(finished_ids)
    if not passed:
        return False, f"on a generated results file: {detail}"
    return True, f"{len(_results_file_cases()) + 1} adversarial files and a property {detail}"


# --------------------------------------------------------------------------- the full run

#: The full run's limits: 6 in flight, rate limits that never bind (the throughput check's limit is concurrency / latency).
FULL: dict[str, Any] = {"concurrency": 6, "rpm": 60_000, "tpm": 50_000_000}


@lru_cache(maxsize=1)
def full_batch() -> tuple[dict[str, Any], ...]:
    """24 emails: ordinary ones, every kind of hard case, and adversarial ids (4 waves of FULL's concurrency:
    with the latency model's spread, a design that waits for the slowest of each chunk falls well below the bar)."""
    plain = [e for e in pool()[:40] if not e["hard_case"]]
    hard = [_hard("empty", 1), _hard("long", 0), _hard("non-english", 4), _hard("injection", 2)]
    clones = [clone(e, i) for e, i in zip(plain[30:], ADVERSARIAL_IDS)]
    return tuple(plain[:16] + hard + clones)


def full_run(ctx: Context) -> Run:
    """The full batch at concurrency 6 under the latency model (made once per check session)."""
    return memo_run(ctx, "full", lambda module, tmp: run_batch(module, list(full_batch()), tmp / "results.jsonl", **FULL))


@register("ex05.all-processed")
def all_processed(ctx: Context) -> tuple[bool, str]:
    run = full_run(ctx)
    if run.raised is not None:
        return False, run.error()
    batch = list(full_batch())
    ids = [e["id"] for e in batch]
    counts = run.ok_counts()
    missing = [i for i in ids if not counts.get(i)]
    if missing:
        adversarial = [i for i in missing if i in ADVERSARIAL_IDS]
        why = f" (ids like {_short(adversarial[0])} must be written as they are)" if adversarial else ""
        return False, f"{len(missing)} of {len(ids)} emails have no ok line, e.g. {_ids(missing)}{why}; {len(run.transport.attempts)} requests were sent"
    twice = [i for i, n in counts.items() if n > 1]
    if twice:
        return False, f"{len(twice)} emails have more than one ok line (e.g. {_short(twice[0])} x{counts[twice[0]]})"
    unknown = [str(i.get("id")) if isinstance(i, dict) else "an unreadable line" for i in run.lines
               if not isinstance(i, dict) or i.get("id") not in set(ids)]
    if unknown:
        return False, f"the results file has {len(unknown)} line(s) for no email of the batch, e.g. {_short(unknown[0])}"
    for email in batch:
        line = run.lines_of()[email["id"]][0]
        want = answers()[email_text(email)]
        wrong = [k for k in FIELDS if str(line.get(k)) != want[k]]
        if wrong:
            return False, f"{_short(email['id'])}: the line says {wrong[0]}={line.get(wrong[0])!r}, the model answered {want[wrong[0]]!r}"
    expected = {"ok": len(ids), "failed": 0, "skipped": 0}
    if counts_of(run.returned) != expected:
        return False, f"every email got its ok line, but process_batch returned {run.returned!r}, not {expected}"
    return True, f"{len(ids)} emails (hard cases and adversarial ids included): one ok line each, matching the answers"


@register("ex05.concurrency-limit")
def concurrency_limit(ctx: Context) -> tuple[bool, str]:
    run = full_run(ctx)
    if run.raised is not None:
        return False, run.error()
    limit, peak = FULL["concurrency"], run.transport.max_in_flight
    if peak > limit:
        return False, f"{peak} requests were in flight at once with concurrency={limit}"
    if peak < limit:
        return False, f"never more than {peak} request(s) in flight with concurrency={limit} and {len(full_batch())} emails to do: use the limit"
    peaks = []
    for key, make in (("faults", _faults_run), ("rpm", _rpm_run), ("tpm", _tpm_run), ("crash", _crash_run)):
        other = memo_run(ctx, key, make)
        runs = [other.params["first"], other] if "first" in other.params else [other]
        for run_ in runs:
            allowed = run_.params.get("concurrency", 1)
            if run_.transport.max_in_flight > allowed:
                return False, (f"{run_.transport.max_in_flight} requests were in flight at once with concurrency="
                               f"{allowed} in the {key} scenario (retries count too)")
            peaks.append(f"{run_.transport.max_in_flight}/{allowed}")
    return True, f"peak {peak} in flight with concurrency={limit}; other scenarios (peak/limit): {', '.join(peaks)}"


@register("ex05.throughput")
def throughput(ctx: Context) -> tuple[bool, str]:
    """How full the pipeline is kept: the share of the `concurrency` slots busy with a request.

    Throughput is concurrency / mean latency only while every slot is busy, so the check measures
    the busy share directly (from when each request went out and came back), up to the answer that
    leaves exactly `concurrency` still to come: a batch this small then spends a real part of its
    time draining, one request at a time, which no design can avoid. It is independent of the
    latencies the seeded model happened to draw.
    """
    run = full_run(ctx)
    if run.raised is not None:
        return False, run.error()
    slots, spans = FULL["concurrency"], run.transport.spans
    steady = len(full_batch()) - slots
    if len(spans) < steady or steady <= 0:
        return False, f"only {len(spans)} answers came back for {len(full_batch())} emails"
    until = sorted(end for _, end in spans)[steady - 1]
    busy = sum(max(0.0, min(end, until) - max(sent, run.started)) for sent, end in spans)
    share = busy / (slots * max(until - run.started, 1e-9))
    latency = sum(end - sent for sent, end in spans) / len(spans)
    limit = theoretical_rps(slots, latency, FULL["rpm"])
    text = (f"the {slots} slots were {share:.0%} busy until the last {slots} answers: {share * limit:.0f} emails/s of the "
            f"theoretical {limit:.0f}/s (concurrency {slots} / {latency * 1000:.1f} ms mean latency)")
    return share >= CONTRACT.throughput_share, text


# --------------------------------------------------------------------------- faults: isolation and retries

#: max_attempts in the faults scenario: not the default, so a hard-coded count shows.
FAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Script:
    """What one email's attempts meet, and how to say it."""

    steps: tuple[str, ...]
    says: str
    retry_after: float = 0.0  # the wait the first step asks for, in seconds


def fault_scripts() -> list[Script]:
    """One email per status class of the contract, mixed sequences, the max_attempts boundary."""
    again = FAULT_MAX_ATTEMPTS + 1  # a final failure repeats: the same request fails the same way
    scripts = [Script((str(s),) * again, f"a {s} on the first attempt") for s in CONTRACT.final_statuses]
    for s in CONTRACT.retry_statuses:
        if s == 429:
            scripts.append(Script(("429 retry-after-ms=250", "ok"), "a 429 asking to wait 250 ms (retry-after-ms), then success", 0.25))
        else:
            scripts.append(Script((str(s), "ok"), f"a {s} on the first attempt, then success"))
    scripts += [Script((f, "ok"), f"a {f} on the first attempt, then success") for f in CONTRACT.retry_faults]
    scripts += [
        Script(("429 retry-after=1", "503", "ok"), "a 429 asking to wait 1 s (retry-after), a 503, then success on the last allowed attempt", 1.0),
        Script(("reset", *("404",) * again), "a dropped connection, then a 404"),
        Script(("500", "502", "503", "500", "502"), f"a 5xx on every attempt (max_attempts={FAULT_MAX_ATTEMPTS})"),
    ]
    return scripts


@lru_cache(maxsize=1)
def faults_batch() -> tuple[tuple[dict[str, Any], Script | None], ...]:
    """(email, script) pairs: a scripted email per fault, two healthy ones, the answer cut off at the output limit, and a refusal."""
    emails = [e for e in pool()[:60] if not e["hard_case"]]
    scripts = fault_scripts()
    cut = Script(("ok",), "an answer cut off at the output limit (the SDK raises LengthFinishReasonError or a validation error)")
    refused = Script(("ok",), "a refusal (the parsed answer is None: classify() raises, and the same request is declined again)")
    pairs: list[tuple[dict[str, Any], Script | None]] = list(zip(emails[8 : 8 + len(scripts)], scripts))
    pairs += [(emails[8 + len(scripts)], None), (emails[9 + len(scripts)], None), (dict(TRUNCATED_EMAIL), cut),
              (dict(REFUSED_EMAIL), refused)]
    return tuple(pairs)


def faults_scenario(module: ModuleType) -> dict[str, Any]:
    """Observation of the faults run: per email, what was sent, what was written; what process_batch did."""
    with tempfile.TemporaryDirectory() as tmp:
        run = _faults_run(module, Path(tmp))
    return observe_faults(run)


def _outcome(steps: tuple[str, ...], max_attempts: int) -> tuple[int, str]:
    """(requests sent, the line's status) for one email's scripted steps, as the contract says."""
    for attempt in range(1, max_attempts + 1):
        step = steps[attempt - 1] if attempt - 1 < len(steps) else "ok"
        head = step.split()[0]
        if head == "ok":
            return attempt, "ok"
        retryable = head in CONTRACT.retry_faults or (head.isdigit() and (int(head) in CONTRACT.retry_statuses or int(head) >= 500))
        if not retryable or attempt == max_attempts:
            return attempt, "error"
    raise ValueError("max_attempts must be at least 1")


def expected_faults() -> dict[str, Any]:
    """The contract's model of the faults scenario: what the reference sends, writes and returns for it.

    tests/test_ex05.py runs the reference on the scenario and checks it observes exactly this, so the
    check compares the learner with the reference without running the reference again every time.
    """
    emails: dict[str, Any] = {}
    for email, script in faults_batch():
        if script is None:
            sent, status = 1, "ok"
        elif script.steps == ("ok",):  # the cut-off answer or the refusal: no retry helps
            sent, status = 1, "error"
        else:
            sent, status = _outcome(script.steps, FAULT_MAX_ATTEMPTS)
        waited = True if script is not None and script.retry_after and sent > 1 else None
        emails[email["id"]] = {"sent": sent, "lines": [status], "attempts": [sent], "waited": waited}
    statuses = Counter(e["lines"][0] for e in emails.values())
    return {"raised": None, "returned": {"ok": statuses["ok"], "failed": statuses["error"], "skipped": 0}, "emails": emails}


def _faults_run(module: ModuleType, tmp: Path) -> Run:
    pairs = faults_batch()
    per_item = {email_text(e): list(s.steps) for e, s in pairs if s is not None and s.steps != ("ok",)}
    return run_batch(module, [e for e, _ in pairs], tmp / "faults.jsonl", per_item=per_item, concurrency=4, rpm=60_000,
                     tpm=50_000_000, max_attempts=FAULT_MAX_ATTEMPTS)


#: A retry that comes this much later than the server's Retry-After (more than retry_delay's 20 s backoff
#: cap, added on top) read the header in the wrong unit: retry-after-ms taken as seconds waits 1,000 times too long.
LATE_BY = 30.0


def observe_faults(run: Run) -> dict[str, Any]:
    sent, lines = run.sent(), run.lines_of()
    emails: dict[str, Any] = {}
    for email, script in faults_batch():
        tries = sent.get(email["id"], [])
        gap = tries[1].at - tries[0].at if len(tries) > 1 else None
        waited: bool | str | None = None
        if script is not None and script.retry_after and gap is not None:
            waited = False if gap < script.retry_after - 1e-6 else "late" if gap > script.retry_after + LATE_BY else True
        mine = lines.get(email["id"], [])
        emails[email["id"]] = {
            "sent": len(tries), "lines": [str(i.get("status")) for i in mine],
            "attempts": [i.get("attempts") for i in mine], "waited": waited,
        }
    return {"raised": type(run.raised).__name__ if run.raised is not None else None,
            "returned": counts_of(run.returned), "emails": emails}


def faults_observations(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the learner's, the reference's) observations of the faults scenario, as plain JSON data."""
    mine = json.loads(json.dumps(observe_faults(memo_run(ctx, "faults", _faults_run)), default=str))
    return mine, expected_faults()


def _final(script: Script | None) -> bool:
    """Whether a script fails with no retry able to help (a final status first, the cut-off answer, the refusal)."""
    if script is None:
        return False
    head = script.steps[0].split()[0]
    return script.steps == ("ok",) or (head.isdigit() and int(head) in CONTRACT.final_statuses)


@register("ex05.isolation")
def isolation(ctx: Context) -> tuple[bool, str]:
    run = memo_run(ctx, "faults", _faults_run)
    if run.raised is not None:
        return False, run.error() + ": one failing email stopped the whole batch (catch per email, inside its task)"
    lines = run.lines_of()
    for email, script in faults_batch():
        got = [str(i.get("status")) for i in lines.get(email["id"], [])]
        what = script.says if script else "no fault at all"
        if len(got) != 1:
            return False, f"the email that met {what} has {len(got)} lines in the results file: write exactly one per email"
        if script is None and got != ["ok"]:
            return False, f"an email that met {what} ended with an {got[0]!r} line: another email's failure reached it"
        if _final(script) and got == ["ok"]:
            return False, f"the email that met {what} has an ok line: a failure must be written with record_error"
    statuses = Counter(str(i.get("status")) for i in run.lines if isinstance(i, dict))
    written = {"ok": statuses["ok"], "failed": sum(statuses.values()) - statuses["ok"], "skipped": 0}
    if counts_of(run.returned) != written:
        return False, f"process_batch returned {run.returned!r}, but it wrote {written['ok']} ok and {written['failed']} error lines"
    return True, f"{written['ok']} ok lines and {written['failed']} error lines, one per email; process_batch returned normally"


def _retry_message(script: Script | None, got: dict[str, Any], want: dict[str, Any]) -> str:
    what = script.says if script else "no fault at all"
    final = script is not None and script.steps[0].split()[0].isdigit() and int(script.steps[0].split()[0]) in CONTRACT.final_statuses
    if got["sent"] > want["sent"] and final:
        status = script.steps[0] if script else ""
        return (f"{what} and your code sent the email {got['sent']} times; the contract does not retry {status} "
                "(the same request fails the same way)")
    if got["sent"] > want["sent"]:
        return f"{what}: your code sent the email {got['sent']} times, the contract {want['sent']} (max_attempts={FAULT_MAX_ATTEMPTS} counts every attempt)"
    if got["sent"] < want["sent"]:
        return (f"{what}: your code sent the email {got['sent']} time(s) and wrote {'/'.join(got['lines']) or 'nothing'}; "
                f"the contract retries it ({want['sent']} attempts, then {'/'.join(want['lines'])})")
    if got["waited"] is False:
        wait = f"{script.retry_after:g} s" if script else ""
        return f"{what}: your code retried before the {wait} the server asked for (read retry-after-ms, then retry-after)"
    if got["waited"] == "late":
        wait = f"{script.retry_after:g} s" if script else ""
        return (f"{what}: your code waited more than {LATE_BY:g} s longer than the {wait} the server asked for "
                "(retry-after-ms is in milliseconds, retry-after in seconds)")
    if got["attempts"] != want["attempts"]:
        return f"{what}: the line says attempts={got['attempts'][0] if got['attempts'] else None}, but {got['sent']} requests were sent"
    return f"{what}: your code wrote {got['lines']}, the contract {want['lines']}"


@register("ex05.retries")
def retries(ctx: Context) -> tuple[bool, str]:
    mine, ref = faults_observations(ctx)
    if mine["raised"]:
        return False, f"process_batch raised {mine['raised']}: retries cannot be judged until failures stay with their email"
    for email, script in faults_batch():
        got, want = mine["emails"][email["id"]], ref["emails"][email["id"]]
        if got != want:
            return False, _retry_message(script, got, want)
    retried = sum(1 for e in ref["emails"].values() if e["sent"] > 1)
    return True, (f"{len(faults_batch())} emails, every status class of the contract: {retried} retried as the reference does "
                  f"(Retry-After honoured, max_attempts={FAULT_MAX_ATTEMPTS} respected), final failures sent once")


# --------------------------------------------------------------------------- rate limits


def _retry_first(batch: list[dict[str, Any]], every: int) -> dict[str, list[str]]:
    """Every ``every``-th email meets a retryable failure first (the contract's classes in turn), then success."""
    kinds = [f"{s} retry-after-ms=0" if s == 429 else str(s) for s in CONTRACT.retry_statuses] + list(CONTRACT.retry_faults)
    return {email_text(e): [kinds[i % len(kinds)], "ok"] for i, e in enumerate(batch) if i % every == 0}


#: The RPM scenario: 7 emails, each failing once first, at 120 rpm (2 per second).
RPM_LIMITS: dict[str, Any] = {"concurrency": 8, "rpm": 120, "tpm": 50_000_000}
#: The TPM scenario: 8 emails, every third failing once first, at 60,000 tpm (1,000 tokens a second).
TPM_LIMITS: dict[str, Any] = {"concurrency": 8, "rpm": 60_000, "tpm": 60_000}


def _rpm_run(module: ModuleType, tmp: Path) -> Run:
    batch = list(pool()[30:37])
    return run_batch(module, batch, tmp / "rpm.jsonl", per_item=_retry_first(batch, 1), **RPM_LIMITS)


def _tpm_run(module: ModuleType, tmp: Path) -> Run:
    batch = list(pool()[42:50])
    return run_batch(module, batch, tmp / "tpm.jsonl", per_item=_retry_first(batch, 3), **TPM_LIMITS)


def _over_limit(run: Run, rate_per_s: float, weigh: Callable[[Any], float], unit: str) -> str | None:
    """What exceeds rate x (window + burst) in some window, or None."""
    attempts = run.transport.attempts
    times = [a.at for a in attempts]
    weights = [weigh(a) for a in attempts]
    largest = max(weights, default=0.0)
    for w in CONTRACT.windows:
        peak = window_peak(times, w, weights)
        allowed = max(rate_per_s * (w + CONTRACT.burst_seconds), largest + rate_per_s * w)
        if peak > allowed + 1e-9:
            retried = len(attempts) - len({run.id_of(a.body) for a in attempts})
            return (f"{peak:,.0f} {unit} started within {w:g} s ({len(attempts)} attempts, {retried} of them retries); "
                    f"the limit allows at most {allowed:,.0f}: every attempt, retries included, must wait for one shared limiter")
    return None


@register("ex05.rate-limit")
def rate_limit(ctx: Context) -> tuple[bool, str]:
    by_rpm = memo_run(ctx, "rpm", _rpm_run)
    by_tpm = memo_run(ctx, "tpm", _tpm_run)
    for run in (by_rpm, by_tpm):
        if run.raised is not None:
            return False, run.error() + " (the rate limit can only be judged over a whole run)"
    problem = _over_limit(by_rpm, RPM_LIMITS["rpm"] / 60, lambda a: 1.0, "requests")
    if problem:
        return False, f"at {RPM_LIMITS['rpm']} rpm: {problem}"
    tokens = {email_text(e): tokens_for(e) for e in by_tpm.batch}
    problem = _over_limit(by_tpm, TPM_LIMITS["tpm"] / 60, lambda a: float(tokens.get(user_text(a.body) or "", 0)), "tokens")
    if problem:
        return False, f"at {TPM_LIMITS['tpm']:,} tpm: {problem} (count tokens_for(email): prompt + output limit)"
    rps = len(by_rpm.transport.attempts) / max(by_rpm.elapsed, 1e-9)
    return True, (f"{RPM_LIMITS['rpm']} rpm held in every window, retries included ({rps:.1f} attempts/s), "
                  f"and {TPM_LIMITS['tpm']:,} tpm held")


# --------------------------------------------------------------------------- resume


@lru_cache(maxsize=1)
def resume_batch() -> tuple[dict[str, Any], ...]:
    """8 emails and 2 adversarial ids (a raw U+2028, quotes)."""
    emails = [e for e in pool()[:60] if not e["hard_case"]]
    return tuple(emails[44:52] + [clone(emails[52], ADVERSARIAL_IDS[2]), clone(emails[53], ADVERSARIAL_IDS[0])])


def earlier_results() -> str:
    """The results file two earlier crashed runs left: finished, failed and torn lines, and a line for another batch."""
    b = resume_batch()

    def ok(email: dict[str, Any], summary: str = "done") -> str:
        return json.dumps({"id": email["id"], "status": "ok", "sentiment": "neutral", "urgency": "low", "category": "other",
                           "summary": summary, "attempts": 1}, ensure_ascii=False)

    error = json.dumps({"id": b[1]["id"], "status": "error", "error": "NotFoundError: 404", "attempts": 1})
    return "\n".join([
        ok(b[0]), ok(b[8]), error, ok(b[2])[:30], ok(b[3]), ok({"id": "em-other-batch"}), ok(b[4], "two\u2028lines"), "",
        ok(b[5])[:41],
    ])


def resume_scenario(module: ModuleType) -> dict[str, Any]:
    """Resume from earlier_results(): what is sent, returned and written."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        before = earlier_results()
        out.write_text(before, encoding="utf-8")
        run = run_batch(module, list(resume_batch()), out, concurrency=3, rpm=60_000, tpm=50_000_000)
    kept = [line for line in before.split("\n") if line.strip() and _is_json(line)]
    ids = [e["id"] for e in resume_batch()]
    sent = run.sent()
    return {
        "raised": type(run.raised).__name__ if run.raised is not None else None,
        "returned": counts_of(run.returned),
        "sent": {i: len(sent.get(i, [])) for i in ids},
        "ok_lines": {i: run.ok_counts().get(i, 0) for i in ids},
        "kept_earlier_lines": all(line in run.text.split("\n") for line in kept),
        "unreadable_new_lines": sum(1 for line in run.text.split("\n")
                                    if line.strip() and not _is_json(line) and line not in before.split("\n")),
    }


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _crash_run(module: ModuleType, tmp: Path) -> Run:
    """A run killed at its 9th request; the file as the disk held it then is kept (Run.at_crash)."""
    batch = crash_batch()
    out = tmp / "results.jsonl"
    first = run_batch(module, batch, out, crash_after=CRASH_AFTER, concurrency=1, rpm=60_000, tpm=50_000_000)
    second = run_batch(module, batch, out, concurrency=2, rpm=60_000, tpm=50_000_000)
    second.at_crash, second.answered_at_crash = first.at_crash if first.at_crash is not None else b"", first.answered_at_crash
    second.params["first"] = first
    return second


#: The crash comes with the request after this many.
CRASH_AFTER = 5


def crash_batch() -> list[dict[str, Any]]:
    emails = [e for e in pool()[:60] if not e["hard_case"]]
    return [clone(emails[0], ADVERSARIAL_IDS[2])] + emails[1:8]


def _resume_message(got: dict[str, Any], want: dict[str, Any]) -> str:
    if got["raised"]:
        return f"resuming from a file earlier crashes left, process_batch raised {got['raised']} (skip lines that are not JSON objects)"
    if not got["kept_earlier_lines"]:
        return "resuming removed lines earlier runs wrote: open the results file in append mode, never 'w'"
    if got["unreadable_new_lines"]:
        return ("the file ended with a line cut short and your first new line was glued to it: "
                "write a newline first when the file does not end with one")
    for i, n in got["sent"].items():
        if n != want["sent"][i]:
            why = {0: "it has no ok line (an error line, a torn line or none) so it must be sent again",
                   1: "it had an ok line in the results file"}.get(want["sent"][i], "")
            return f"resuming, your code sent {_short(i)} {n} time(s), the contract {want['sent'][i]}: {why}"
    for i, n in got["ok_lines"].items():
        if n != want["ok_lines"][i]:
            return f"after resuming, {_short(i)} has {n} ok lines, the contract {want['ok_lines'][i]}"
    return f"resuming, process_batch returned {got['returned']}; the contract {want['returned']} (skipped: emails that already had an ok line)"


@register("ex05.resume")
def resume(ctx: Context) -> tuple[bool, str]:
    if ctx.module is None:
        ctx.attr("process_batch")  # reports why the file did not import
        raise AssertionError("unreachable")
    mine = diff.observe(ctx.module, resume_scenario)
    want = diff.reference_observation(ctx.exercise.id, ctx.exercise.file, "resume", resume_scenario)
    if mine != want:
        return False, _resume_message(mine, want)
    run = memo_run(ctx, "crash", _crash_run)
    first: Run = run.params["first"]
    if first.raised is not None and not crashed(first.raised):
        return False, first.error() + " before the simulated crash"
    on_disk = parse_lines((run.at_crash or b"").decode("utf-8", "replace"))
    finished = sum(1 for i in on_disk if isinstance(i, dict) and i.get("status") == "ok")
    if finished < run.answered_at_crash // 2:
        return False, (f"when the process was killed at its request {CRASH_AFTER + 1}, {run.answered_at_crash} answers had come "
                       f"back but the file on disk held {finished} ok line(s): append each line as its email finishes and flush it")
    if run.raised is not None:
        return False, run.error() + " on the run after the crash"
    done_before = {str(i.get("id")) for i in first.lines if isinstance(i, dict) and i.get("status") == "ok"}
    redone = [i for i in run.sent() if i in done_before]
    if redone:
        return False, f"after the crash, the resumed run sent {len(redone)} email(s) that had finished, e.g. {_short(str(redone[0]))}"
    counts = run.ok_counts()
    wrong = [e["id"] for e in run.batch if counts.get(e["id"]) != 1]
    if wrong:
        return False, f"after the crash and the resumed run, {_short(wrong[0])} has {counts.get(wrong[0], 0)} ok lines (expected 1)"
    return True, (f"resumed from earlier crashes as the reference does; killed after {CRASH_AFTER} requests, {finished} lines "
                  f"were on disk and the resumed run sent only the other {len(run.batch) - len(done_before)} emails")
