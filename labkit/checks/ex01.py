"""Checks for exercise 01: the first API call, through either API, summarized and priced.

Everything graded comes from the contract in :mod:`labkit.course.ex01`. The learner's call runs
on a replay client with the course simulator (``simulate=True``), so any well-formed request for
the task gets an honest answer (exact recordings first), and a request the API would reject gets
the API's error. The request is graded on what it means (model, instruction and prompt, effort),
whichever API carried it. ``summarize`` is graded on a grid of responses drawn from the contract,
for the API the learner's call used (a ChatCompletion or a Response): the course's call, the
default effort (a reasoning item first), an answer cut off by the output limit or by the content
filter, an empty answer whose whole limit went to reasoning, another model and a dated snapshot,
cached and cache-written prompts, a long-context prompt, adversarial text, two choices. The
expected values are read from each response's JSON, never through the SDK's own properties.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from ..authoring import AUTHORED_AT, SNAPSHOTS
from ..catalog import UnknownModelError, get_model
from ..costs import cost
from ..course import ex01 as course
from ..course.models import DEFAULT, LESSON_SMALL, ROLES
from ..replay import SECRET_RE, load_cassette, resolve_cassette
from . import Context, course_problem, register, replay_transport

API_NAMES = {"chat": "Chat Completions", "responses": "Responses API"}
SDK_TYPES: dict[str, type[ChatCompletion] | type[Response]] = {"chat": ChatCompletion, "responses": Response}
ROLE_OF_MODEL = next((role for role, model in ROLES.items() if model == course.MODEL), "fast")

# --------------------------------------------------------------------------- requests and conversations


def api_of(body: Any) -> str | None:
    """Which API a request body was sent to: "chat" (messages), "responses" (input) or None."""
    if not isinstance(body, dict):
        return None
    if "messages" in body:
        return "chat"
    return "responses" if "input" in body or "instructions" in body else None


def effort_of(body: dict[str, Any]) -> str | None:
    """The reasoning effort a request sets (either API's form), or None."""
    reasoning = body.get("reasoning")
    nested = reasoning.get("effort") if isinstance(reasoning, dict) else None
    effort = body.get("reasoning_effort") or nested
    return str(effort) if effort else None


def _text(content: Any) -> str | None:
    """A message's text: a string, or a list of text parts joined; None for anything else."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(
        isinstance(p, dict) and p.get("type") in ("text", "input_text") and isinstance(p.get("text"), str) for p in content
    ):
        return "".join(p["text"] for p in content)
    return None


def turns(body_or_messages: Any) -> list[tuple[str, str | None]]:
    """``(role, text)`` of a request's conversation (``instructions`` first) or of a message list."""
    found: list[tuple[str, str | None]] = []
    items: Any = body_or_messages
    if isinstance(body_or_messages, dict):
        if isinstance(body_or_messages.get("instructions"), str):
            found.append(("instructions", body_or_messages["instructions"]))
        items = body_or_messages.get("messages", body_or_messages.get("input"))
        if isinstance(items, str):
            return [*found, ("user", items)]
    for item in items if isinstance(items, (list, tuple)) else []:
        if isinstance(item, dict):
            found.append((str(item.get("role")), _text(item.get("content"))))
        else:
            found.append((type(item).__name__, None))
    return found


def _q(value: Any, width: int = 60) -> str:
    """A value for a failure message: strings clipped (with an ellipsis) before quoting."""
    if isinstance(value, str) and len(value) > width:
        value = value[: width - 1] + "\u2026"
    return repr(value)


def conversation_problem(got: list[tuple[str, str | None]], prompt: str) -> str | None:
    """What is wrong with a conversation for ``prompt`` under the contract, or None."""
    instruction = ("system", "developer", "instructions")
    if not got or got[0][0] not in instruction:
        first = f"a {got[0][0]!r} message" if got else "nothing"
        return f"it starts with {first}; the contract starts with SYSTEM as a system (or developer) message"
    if got[0][1] != course.SYSTEM:
        return f"the {got[0][0]} text is {_q(got[0][1])}, not SYSTEM ({course.SYSTEM!r})"
    rest = got[1:]
    if any(role in instruction for role, _ in rest):
        return "SYSTEM is given twice (both as instructions and as a message): give it once"
    if len(rest) != 1 or rest[0][0] != "user":
        shape = ", ".join(role for role, _ in rest) or "nothing"
        return f"after the instruction come {shape}; the contract has one user message"
    if rest[0][1] != prompt:
        return f"the user message is {_q(rest[0][1])}, not the prompt {_q(prompt)}"
    return None


# --------------------------------------------------------------------------- the learner's call (made once)


@dataclass
class Call:
    """What one run of the learner's ``first_completion`` did, seen from the transport."""

    result: Any
    error: Exception | None
    sent: list[Any]


def first_call(ctx: Context, cassette: str = "ex01") -> Call:
    """Run ``first_completion`` once per check session on a simulating replay client."""
    key = f"ex01.call.{cassette}"
    if key not in ctx.memo:
        fn = ctx.attr("first_completion")
        client = ctx.client(cassette, simulate=True)
        transport = replay_transport(client)
        try:
            result, error = fn(client), None
        except Exception as err:  # re-raised by the check that reports it
            if course_problem(err) is not None:
                raise  # a broken cassette or catalog is the course's problem, reported as such
            result, error = None, err
        ctx.memo[key] = Call(result, error, list(transport.sent))
    call: Call = ctx.memo[key]
    return call


def api_of_result(result: Any) -> str | None:
    for api, kind in SDK_TYPES.items():
        if isinstance(result, kind):
            return api
    return None


def _reasoning_spent(result: Any) -> str:
    usage = getattr(result, "usage", None)
    details = getattr(usage, "completion_tokens_details", None) or getattr(usage, "output_tokens_details", None)
    n = getattr(details, "reasoning_tokens", None)
    return f" ({n} reasoning tokens on this call)" if isinstance(n, int) else ""


# --------------------------------------------------------------------------- responses drawn from the contract

TRICKY = 'Subject: "Ship on Time" \u2014 30% faster\nP.S. Robert\'); DROP TABLE leads;-- \u2713 \u65e5\u672c\u8a9e \U0001f680'
LONG = " ".join(["Streamline every project, meet every deadline, and give your team hours back each week."] * 60)
ANSWER = "Cut Project Chaos by 30%: See How Teams Ship On Time"
_TO_INCOMPLETE = {finish: reason for reason, finish in course.INCOMPLETE_REASONS.items()}


@dataclass(frozen=True)
class Shape:
    """One response to summarize: its text, model, why it ended and its usage."""

    name: str
    text: str
    model: str
    finish: str = "stop"
    usage: tuple[int, int, int, int, int] = (33, 14, 0, 0, 0)  # input, output, reasoning, cached, cache-written
    second: str | None = None  # a second choice (Chat Completions, n=2)
    only: str | None = None  # "chat" or "responses" when the shape exists in one API only


SHAPES = (
    Shape("the course's first call", ANSWER, course.MODEL),
    Shape("the default effort (reasoning before the answer)", ANSWER, course.MODEL, usage=(33, 206, 192, 0, 0)),
    Shape("an answer cut off by the output limit", "Cut Project Chaos by", course.MODEL, "length", (33, 70, 64, 0, 0)),
    Shape("an output limit spent on reasoning (empty answer)", "", course.MODEL, "length", (33, 256, 256, 0, 0)),
    Shape("an answer stopped by the content filter", "Cut Project", course.MODEL, "content_filter", (33, 3, 0, 0, 0)),
    Shape("a multi-line answer with quotes, SQL and unicode", TRICKY, course.MODEL, usage=(33, 41, 0, 0, 0)),
    Shape("a very long answer", LONG, course.MODEL, usage=(33, 961, 0, 0, 0)),
    Shape("an answer with a leading space and a trailing newline", f" {ANSWER}\n", course.MODEL, usage=(33, 16, 0, 0, 0)),
    Shape("another model answered", ANSWER, DEFAULT, usage=(33, 270, 256, 0, 0)),
    Shape("a dated snapshot answered", ANSWER, SNAPSHOTS.get(LESSON_SMALL, LESSON_SMALL), usage=(33, 206, 192, 0, 0)),
    Shape("a cached prompt and a cache write", ANSWER, course.MODEL, usage=(2_400, 14, 0, 1_152, 1_024)),
    Shape("a long-context prompt (over 272K input tokens)", ANSWER, course.MODEL, usage=(300_000, 900, 0, 0, 0)),
    Shape("two choices (n=2): the first is the answer", ANSWER, course.MODEL, usage=(33, 30, 0, 0, 0),
          second="Deadlines, Tamed", only="chat"),
)


def _hex(seed: str, n: int) -> str:
    out = ""
    while len(out) < n:
        out += hashlib.sha256(f"{seed}{len(out)}".encode()).hexdigest()
    return out[:n]


def chat_wire(s: Shape) -> dict[str, Any]:
    """A ChatCompletion's JSON for a shape (as the API sends it)."""
    inp, out, reasoning, cached, written = s.usage
    texts = [(s.text, s.finish)] + ([(s.second, "stop")] if s.second is not None else [])
    return {
        "id": f"chatcmpl-{_hex(s.name, 29)}", "object": "chat.completion", "created": AUTHORED_AT, "model": s.model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                     "logprobs": None, "finish_reason": finish} for i, (text, finish) in enumerate(texts)],
        "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out,
                  "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": None,
    }


def responses_wire(s: Shape) -> dict[str, Any]:
    """A Response's JSON for a shape: a reasoning item first when it reasoned, no message if nothing was said."""
    inp, out, reasoning, cached, written = s.usage
    done = s.finish == "stop"
    output: list[dict[str, Any]] = []
    if reasoning:
        output.append({"id": f"rs_{_hex(s.name + 'rs', 48)}", "type": "reasoning", "summary": []})
    if s.text or done:
        part = {"type": "output_text", "text": s.text, "annotations": [], "logprobs": []}
        output.append({"id": f"msg_{_hex(s.name + 'msg', 48)}", "type": "message", "role": "assistant",
                       "status": "completed" if done else "incomplete", "content": [part]})
    return {
        "id": f"resp_{_hex(s.name, 48)}", "object": "response", "created_at": AUTHORED_AT,
        "status": "completed" if done else "incomplete", "error": None,
        "incomplete_details": None if done else {"reason": _TO_INCOMPLETE[s.finish]},
        "instructions": course.SYSTEM, "metadata": {}, "model": s.model, "output": output, "parallel_tool_calls": True,
        "reasoning": {"effort": "medium" if reasoning else course.EFFORT, "summary": None},
        "temperature": 1.0, "tool_choice": "auto", "tools": [], "top_p": 1.0, "service_tier": "default",
        "usage": {"input_tokens": inp, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
                  "output_tokens": out, "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": inp + out},
    }


def expected(api: str, wire: dict[str, Any]) -> dict[str, Any]:
    """The summary the contract asks for, read from the response's JSON."""
    if api == "chat":
        choice, usage = wire["choices"][0], wire["usage"]
        text, finish = choice["message"]["content"], choice["finish_reason"]
        inp, out = usage["prompt_tokens"], usage["completion_tokens"]
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    else:
        usage = wire["usage"]
        text = "".join(part.get("text") or "" for item in wire["output"] if item.get("type") == "message"
                       for part in item.get("content") or [] if part.get("type") == "output_text")
        details = wire.get("incomplete_details") or {}
        finish = "stop" if wire["status"] == "completed" else course.INCOMPLETE_REASONS.get(str(details.get("reason")), "?")
        inp, out = usage["input_tokens"], usage["output_tokens"]
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"id": wire["id"], "text": text, "model": wire["model"], "finish_reason": finish, "input_tokens": inp,
            "output_tokens": out, "reasoning_tokens": reasoning, "cost_usd": cost(usage, wire["model"]).total_usd}


@dataclass(frozen=True)
class Run:
    """summarize() on one response: what the contract wants and what came back (or what was raised)."""

    name: str
    want: dict[str, Any]
    got: Any


def summaries(ctx: Context) -> dict[str, list[Run]]:
    """summarize() on every shape in both APIs, plus the learner's own response (run once per session)."""
    if "ex01.summaries" not in ctx.memo:
        summarize = ctx.attr("summarize")
        own = first_call(ctx).result
        runs: dict[str, list[Run]] = {"chat": [], "responses": []}
        for api, build in (("chat", chat_wire), ("responses", responses_wire)):
            cases = [(s.name, build(s)) for s in SHAPES if s.only in (None, api)]
            if api_of_result(own) == api:
                cases.insert(0, ("the response your first_completion() got", own.model_dump(mode="json")))
            for name, wire in cases:
                response = SDK_TYPES[api].model_validate(wire)
                try:
                    got = summarize(response)
                except NotImplementedError:
                    raise  # the starter's state: reported as a TODO still to do
                except Exception as err:  # noqa: BLE001 - an exception is an observation
                    got = err
                runs[api].append(Run(name, expected(api, wire), got))
        ctx.memo["ex01.summaries"] = runs
    result: dict[str, list[Run]] = ctx.memo["ex01.summaries"]
    return result


def _same(field: str, got: Any, want: Any) -> bool:
    if isinstance(got, bool):
        return False
    if field == "cost_usd":
        return isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, str):
        return isinstance(got, str) and got == want
    return bool(got == want)


def _problem(api: str, run: Run, fields: tuple[str, ...]) -> str | None:
    where = f"{API_NAMES[api]}, {run.name}"
    if isinstance(run.got, Exception):
        return f"{where}: summarize() raised {type(run.got).__name__}: {str(run.got)[:90]}"
    if not isinstance(run.got, dict):
        return f"{where}: summarize() returned {type(run.got).__name__}, not a dict"
    for field in fields:
        if field not in run.got:
            return f"{where}: no {field!r} key (the contract's keys: {', '.join(course.SUMMARY)})"
        if not _same(field, run.got[field], run.want[field]):
            return f"{where}: {field} is {_q(run.got[field])}, the response holds {_q(run.want[field])}"
    return None


def grade_summaries(ctx: Context, fields: tuple[str, ...], done: Callable[[str, int], str]) -> tuple[bool, str]:
    """Pass when summarize() is right for every response of the API the learner's call used (either
    API if the call did not work), and never returns wrong values for the other API's responses
    (raising on an object it does not handle is fine)."""
    runs = summaries(ctx)
    primary = api_of_result(first_call(ctx).result)
    found: list[str] = []
    for api in [primary] if primary else ["chat", "responses"]:
        other = "responses" if api == "chat" else "chat"
        problem = next((p for run in runs[api] if (p := _problem(api, run, fields))), None)
        if problem is None:
            wrong = next((p for run in runs[other] if not isinstance(run.got, Exception) and (p := _problem(other, run, fields))),
                         None)
            if wrong is None:
                return True, done(api, len(runs[api]))
            problem = f"you also summarize the other API's responses, wrongly: {wrong}"
        found.append(problem)
    return False, found[0]


# --------------------------------------------------------------------------- the checks


PROBES = (
    "Probe prompt 123",
    'A subject for "Acme" \u2014 30% off; DROP TABLE leads;--',
    "\u65e5\u672c\u8a9e\u3067\u4ef6\u540d\u3092 \U0001f680",
    "line one\nline two\n\tindented",
    "Write a subject line. " * 300,
)


@register("ex01.messages")
def messages(ctx: Context) -> tuple[bool, str]:
    build = ctx.attr("build_messages")
    for prompt in (*PROBES, None):
        got = build() if prompt is None else build(prompt)
        if not isinstance(got, list):
            return False, f"build_messages() returned {type(got).__name__}, not a list of message dicts"
        problem = conversation_problem(turns(got), course.PROMPT if prompt is None else prompt)
        if problem:
            called = "build_messages()" if prompt is None else f"build_messages({_q(prompt, 40)})"
            return False, f"{called}: {problem}"
    return True, f"SYSTEM then the prompt, unchanged, for {len(PROBES) + 1} prompts (quotes, SQL, unicode, long)"


@register("ex01.real-call")
def real_call(ctx: Context) -> tuple[bool, str]:
    call = first_call(ctx)
    if call.error is not None and not call.sent:
        raise call.error
    if len(call.sent) != 1:
        return False, f"{len(call.sent)} requests went through the client you were given; the contract sends exactly one"
    body = call.sent[0]
    api = api_of(body)
    if api is None:
        return False, "the request is neither a chat completion (messages) nor a Responses API request (input)"
    if body.get("model") != course.MODEL:
        return False, f"the request asks model={body.get('model')!r}; the first call asks MODEL ({course.MODEL!r}, the {ROLE_OF_MODEL!r} role)"
    problem = conversation_problem(turns(body), course.PROMPT)
    if problem:
        return False, f"the {API_NAMES[api]} request: {problem}"
    if call.error is not None:
        raise call.error
    kind = SDK_TYPES[api].__name__
    if api_of_result(call.result) != api:
        return False, f"first_completion() returned {type(call.result).__name__}, not the {kind} the SDK gave you: return it unchanged"
    cap = body.get("max_completion_tokens") or body.get("max_output_tokens") or body.get("max_tokens")
    needed = expected(api, call.result.model_dump(mode="json"))["output_tokens"]
    if isinstance(cap, int) and isinstance(needed, int) and needed > cap:
        return False, (f"the request caps the output at {cap} tokens, but the answer needs {needed} (reasoning included): "
                       "the real API would cut it off (finish_reason 'length'). Leave room, or set no cap")
    return True, f"one {API_NAMES[api]} request with {course.MODEL}; returned the SDK's {kind} {call.result.id}"


@register("ex01.effort")
def effort(ctx: Context) -> tuple[bool, str]:
    call = first_call(ctx)
    if not call.sent:
        if call.error is not None:
            raise call.error
        return False, "no request was sent through the client you were given"
    body = call.sent[0]
    model = str(body.get("model"))
    try:
        info = get_model(model)
    except UnknownModelError:
        info = get_model(course.MODEL)
    chosen = effort_of(body)
    spent = _reasoning_spent(call.result)
    chat, responses = course.REQUEST_FIELDS["effort"]
    if chosen is None:
        return False, (f"the request sets no reasoning effort, so {model} runs at its default, {info.default_effort!r}{spent}: "
                       f"hidden reasoning billed as output for a one-line answer. Send {chat} (Chat Completions) or {responses} "
                       "(Responses API)")
    if info.efforts and chosen not in info.efforts:
        return False, f"{model} does not accept reasoning effort {chosen!r} (the API answers 400); it takes {', '.join(info.efforts)}"
    if chosen not in course.CHEAP_EFFORTS:
        return False, (f"effort {chosen!r} reasons at length before a one-line answer{spent}; a subject line needs "
                       f"{' or '.join(repr(e) for e in course.CHEAP_EFFORTS)}")
    return True, f"reasoning effort {chosen!r}, chosen for a one-line task{spent}"


SUMMARY_FIELDS = tuple(k for k in course.SUMMARY if k != "cost_usd")


@register("ex01.summary")
def summary(ctx: Context) -> tuple[bool, str]:
    return grade_summaries(ctx, SUMMARY_FIELDS, lambda api, n: (
        f"id, text, model, finish_reason and token counts right for {n} {API_NAMES[api]} responses "
        "(default effort, cut off, filtered, other models, cached, long context, unicode)"))


@register("ex01.cost")
def cost_check(ctx: Context) -> tuple[bool, str]:
    return grade_summaries(ctx, ("cost_usd",), lambda api, n: (
        f"cost_usd matches the catalog for {n} {API_NAMES[api]} responses (reasoning, cached and cache-write "
        "tokens, long context, other models)"))


@register("ex01.not-hard-coded")
def not_hard_coded(ctx: Context) -> tuple[bool, str]:
    call = first_call(ctx, "ex01_variant")
    if call.error is not None:
        raise call.error
    api = api_of_result(call.result)
    if api is None:
        return False, f"first_completion() returned {type(call.result).__name__}, not the SDK's response object"
    want = expected(api, call.result.model_dump(mode="json"))
    if len(call.sent) != 1 or want["text"] not in variant_texts():
        return False, "with a different recorded answer on the client it was given, first_completion() did not return it"
    got = ctx.attr("summarize")(call.result)
    if isinstance(got, dict) and got.get("text") == want["text"] and got.get("output_tokens") == want["output_tokens"]:
        return True, "the summary follows the answer it was given"
    return False, "with a different recorded answer the summary did not change"


def variant_texts() -> set[str]:
    """The answer texts recorded in the hidden check's cassette."""
    from ..simulate import recorded_answer

    found = (recorded_answer(i) for i in load_cassette(resolve_cassette("ex01_variant")).interactions)
    return {answer[0] for answer in found if answer is not None}


@register("ex01.no-key-in-code")
def no_key(ctx: Context) -> tuple[bool, str]:
    source = ctx.path.read_text(encoding="utf-8", errors="replace")
    if SECRET_RE.search(source) or "api_key=\"sk-" in source:
        return False, "the file contains something that looks like an API key"
    return True, "no key in the file"
