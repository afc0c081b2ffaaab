"""Checks for exercise 02: parameter tuning for consistency, creativity and accuracy.

Every success metric of the lesson's three templates is one check, graded on what a request
*means* to the API, not on how it is written: each builder's keyword arguments are sent through
the real SDK (``chat.completions`` or ``responses``, ``create`` or ``parse``) to a capturing
transport, and the checks read the body the API would receive. Parameter checks accept either
correct expression of a template's intent on any current model the catalog says accepts it: the
sampling form (reasoning effort "none" with temperature / top_p) or the reasoning form (no
sampling parameters, an effort, a cap with room for reasoning). The contract they grade against is
data in :mod:`labkit.course.ex02`.

Output checks call the learner's send functions on the course simulator (the recorded answer for
the same task, with numbers computed for the request actually sent; the API's error for a request
it would reject) and grade what they return with deterministic heuristics. Property checks send
adversarial inputs (quotes, SQL metacharacters, unicode, very long text) and scripted replies
(headlines in every numbering, bullet and quoting style the contract allows) through a scripted
client, with hypothesis under the grading profile.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from ..catalog import ModelInfo, UnknownModelError, get_model
from ..clock import course_date
from ..course import ex02 as course
from ..course.models import FAST, REASONING
from ..lint import SAMPLING, lint_request
from ..replay import ReplayMiss, answer_shape
from . import Context, register, replay_transport

#: What the checks replay: the course's answers, plus deliberately bad ones that only mutants' exact requests get.
CHECK_CASSETTES = ("ex02", "ex02_bad")


# --------------------------------------------------------------------------- text heuristics (public: notebook and tests use them)

_MONEY = re.compile(
    r"(?:US\$|\$|USD\s?)\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
    r"|\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s?(?:dollars|USD)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_REFUND = re.compile(r"\b(refund\w*|reimburs\w*|money back|credit(?:ed)? (?:back|to your)|revers\w+ (?:the |both |your )?charges?)", re.I)
_FILLER = r"(?:\s+(?:also|gladly|happily|immediately|now|personally|right away|today|go ahead and|be able to|definitely|certainly|fully))*"
_ACTIVE = re.compile(
    r"\b(?:we|i|our(?: billing)? team|the(?: billing)? team)\s*(?:'ll|’ll|will|shall|are going to|am going to|'re going to|'m going to|can|'ve|’ve|have|has)"
    + _FILLER + r"\s+(?:refund\w*|reimburs\w*|credit\w*|revers\w*|return\w*|issu\w*|process\w*|send|sent|give|given|pay|paid)\b",
    re.I,
)
_YOU_GET = re.compile(r"\byou\s*(?:'ll|’ll|will|are going to)" + _FILLER + r"\s+(?:receive|get|see|be refunded|be reimbursed|be credited|have)\b", re.I)
_PASSIVE = re.compile(r"\b(?:will be|has been|have been|is being|are being|was|were)" + _FILLER + r"\s+(?:refunded|reimbursed|credited|reversed|returned|issued)\b", re.I)
_GUARANTEE = re.compile(r"\b(?:guarantee\w*|rest assured|promise)\b", re.I)
_NEGATED = re.compile(r"\bnot\b|n['’]t\b|\bnever\b|\bcannot\b|\bunable\b", re.I)


def money_amounts(text: str) -> list[float]:
    """Every money amount written in the text, in dollars ("$1,250.50", "USD 99", "40 dollars")."""
    out = []
    for m in _MONEY.finditer(text):
        whole, cents = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        out.append(float(whole.replace(",", "")) + (float(f"0.{cents}") if cents else 0.0))
    return out


@dataclass(frozen=True)
class RefundPromise:
    """A sentence that commits to a refund, and the amounts it names (or the ticket's, if none)."""

    sentence: str
    amounts: tuple[float, ...]
    stated: bool  # False: no amount in the sentence, so the ticket's amount is assumed


def refund_promises(text: str, ticket_amount: float | None = None) -> list[RefundPromise]:
    """Sentences that promise (or claim to have made) a refund.

    A promise is a refund word plus a commitment: "we will / I've / our team will" followed by a
    refund verb, "you will receive / get", a passive "will be refunded", or "guarantee". Reviews,
    requests and negations are not promises ("our billing team will review a refund", "we can't
    promise a refund"). A promise naming no amount is taken to cover ``ticket_amount``.
    """
    found = []
    for sentence in (s.strip() for s in _SENTENCE.split(text)):
        if not sentence or not _REFUND.search(sentence):
            continue
        committed = [p for p in (_ACTIVE, _YOU_GET, _PASSIVE, _GUARANTEE) if p.search(sentence)]
        if not committed:
            continue
        if all(_NEGATED.search(sentence[max(0, m.start() - 12): m.end()]) for p in committed for m in p.finditer(sentence)):
            continue
        amounts = tuple(money_amounts(sentence))
        if amounts:
            found.append(RefundPromise(sentence, amounts, True))
        else:
            found.append(RefundPromise(sentence, (ticket_amount,) if ticket_amount is not None else (), False))
    return found


_EMPATHY = re.compile(
    r"\b(sorry|apolog\w+|understand\w*|frustrat\w+|thank(?:s| you) for|appreciate\w*|inconvenien\w+|i can see|i know how)\b", re.I)
_BLAME = re.compile(
    r"\b(your fault|you should have|you failed|you forgot|you didn'?t|user error|as (?:already |clearly )?stated|obviously|"
    r"read the (?:manual|terms)|not our (?:fault|problem))\b", re.I)
_SLANG = re.compile(r"\b(lol|gonna|wanna|gotta|dude|yeah|yep|nope|omg|btw|asap|thx|pls|np|no worries|my bad|whatever)\b", re.I)
_CAPS_OK = {"HTTP", "HTTPS", "JSON", "HTML", "GDPR", "SAAS", "VISA", "IBAN"}


def tone_problems(text: str) -> list[str]:
    """What keeps a support reply from being professional and empathetic (empty list: fine)."""
    problems = []
    if not _EMPATHY.search(text):
        problems.append("no acknowledgement or empathy (sorry / apologise / understand / thank you for ...)")
    for name, rx in (("blame", _BLAME), ("slang", _SLANG)):
        hits = sorted({m.group(0).lower() for m in rx.finditer(text)})
        if hits:
            problems.append(f"{name}: {', '.join(hits)}")
    shouted = [w for w in re.findall(r"\b[A-Z]{4,}\b", text) if w not in _CAPS_OK]
    if shouted:
        problems.append(f"ALL CAPS: {', '.join(shouted[:4])}")
    if text.count("!") > 1:
        problems.append(f"{text.count('!')} exclamation marks")
    return problems


_ACTION = re.compile(
    r"\b(escalat\w+|forward\w*|pass(?:ed|ing)? (?:this|it|your \w+)(?: on)? to|(?:open|creat|rais|log)\w* (?:a |your )?(?:ticket|case)|"
    r"flagg?\w*|(?:will|'ll|’ll|shall) (?:be )?(?:contact|email|reach|follow|get back|update|review|investigat|look into|confirm|call)\w*|"
    r"(?:please |just )?(?:reply|respond) (?:to this email )?with|please (?:send|share|check|visit|contact|confirm))", re.I)
_CONCRETE = re.compile(
    r"(within (?:\w+ )?(?:one|two|three|\d+)?\s*(?:business |working )?(?:hours?|days?)|\b(?:today|tomorrow|by end of day)\b|"
    r"billing (?:team|department|specialist)|ticket (?:number|#|id)|reference (?:number|#)|https?://\S+)", re.I)


def next_step(text: str) -> str | None:
    """The sentence that gives a concrete next step (an action plus who/when/where), or None."""
    for sentence in (s.strip() for s in _SENTENCE.split(text)):
        if _ACTION.search(sentence) and _CONCRETE.search(sentence):
            return sentence
    return None


_STOP = frozenset("a an and are as at be by for from in into is it its of on or our the their this to with your you".split())
_WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")


def content_words(text: str) -> set[str]:
    """Lower-case words of a headline without the commonest function words."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def jaccard(a: str, b: str) -> float:
    """Token overlap of two texts: |shared words| / |all words| (1.0 = same words)."""
    wa, wb = content_words(a), content_words(b)
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def most_similar_pair(texts: Sequence[str]) -> tuple[float, str, str]:
    """The highest pairwise Jaccard similarity among the texts, and the pair."""
    best = (0.0, "", "")
    for a, b in itertools.combinations(texts, 2):
        score = jaccard(a, b)
        if score > best[0] or not best[1]:
            best = (score, a, b)
    return best


_PROVOKE = re.compile(r"\?|!|\d|\b(stop|still|fire|kill\w*|quit|ditch|never|no more|enough|wast\w+|zero|forget|dead|"
                      r"tired|stuck|wrong|myth|not|no|less|instead|without)\b", re.I)
MAX_HEADLINE_WORDS = 12
MAX_SIMILARITY = 0.5

_SPECULATIVE = re.compile(
    r"\b(might|may|maybe|perhaps|possibl[ey]|probabl[ey]|(?:un)?likely|i guess|i think|i believe|i suspect|i assume|"
    r"assum(?:e|ed|ing|ption)s?|could be|could have|seems?|seemingly|appears? to|presumably|suppos(?:e|edly)|"
    r"speculat\w*|hopefully|roughly|ballpark|guess\w*|estimat\w*)\b", re.I)


def speculative_words(text: str) -> list[str]:
    """Speculative or hedging words in the text ("might", "probably", "I guess", "could be", ...)."""
    return sorted({m.group(0).lower() for m in _SPECULATIVE.finditer(text)})


# --------------------------------------------------------------------------- the data set's answer, derived here


def expected_answer(csv_text: str) -> dict[str, Any]:
    """Totals, net profit, margin (percent) and top-3 expense categories, computed from the CSV."""
    revenue, expenses = 0.0, dict[str, float]()
    for row in csv.DictReader(io.StringIO(csv_text)):
        amount = float(row["amount_usd"])
        if row["type"].strip().lower() == "revenue":
            revenue += amount
        else:
            expenses[row["category"]] = expenses.get(row["category"], 0.0) + amount
    total_expenses = sum(expenses.values())
    ranked = sorted(expenses.items(), key=lambda kv: kv[1], reverse=True)
    return {
        "total_revenue": revenue, "total_expenses": total_expenses, "net_profit": revenue - total_expenses,
        "net_profit_margin_pct": 100 * (revenue - total_expenses) / revenue,
        "top_expense_categories": [name for name, _ in ranked[:3]], "ranked": ranked,
    }


def _numbers(text: str) -> list[float]:
    out = []
    for m in re.finditer(r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(million|m\b|k\b|thousand)?", text, re.I):
        value = float(m.group(1).replace(",", "") + (m.group(2) or ""))
        unit = (m.group(3) or "").lower()
        out.append(value * (1e6 if unit in ("million", "m") else 1e3 if unit in ("k", "thousand") else 1))
    return out


# --------------------------------------------------------------------------- requests: what the API receives


class _Fail(Exception):
    """Stop a check with a failing detail."""


@dataclass(frozen=True)
class Sent:
    """One request as the API receives it (``api`` "chat" or "responses", and its JSON body), read for meaning."""

    api: str
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def effort(self) -> str | None:
        """The reasoning effort sent (either API's spelling), or None."""
        reasoning = self.body.get("reasoning")
        sent = self.body.get("reasoning_effort") or (reasoning.get("effort") if isinstance(reasoning, dict) else None)
        return str(sent) if sent else None

    def sampling(self, name: str) -> float | None:
        """A sampling parameter's value as sent (None: left at the API's default)."""
        value = self.body.get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def cap(self) -> tuple[str, int] | None:
        """The output cap sent, by its parameter name."""
        for name in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
            value = self.body.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return name, value
        return None

    def _items(self) -> list[dict[str, Any]]:
        convo = self.body.get("messages", self.body.get("input"))
        if isinstance(convo, str):
            return [{"role": "user", "content": convo}]
        return [m for m in convo or [] if isinstance(m, dict)]

    @staticmethod
    def _text(content: Any) -> str:
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return ""

    @property
    def instructions(self) -> str:
        """Every system or developer message, and the Responses API's ``instructions``."""
        parts = [self.body["instructions"]] if isinstance(self.body.get("instructions"), str) else []
        parts += [self._text(m.get("content")) for m in self._items() if m.get("role") in ("system", "developer")]
        return "\n".join(p for p in parts if p)

    @property
    def users(self) -> list[str]:
        """Every user message's text, in order."""
        return [self._text(m.get("content")) for m in self._items() if m.get("role") == "user"]

    @property
    def user(self) -> str:
        """The last user message's text."""
        return self.users[-1] if self.users else ""

    @property
    def output_format(self) -> str:
        """"json_schema", "json_object" or "" (free text), from response_format or text.format."""
        fmt = self.body.get("response_format")
        text = self.body.get("text")
        if fmt is None and isinstance(text, dict):
            fmt = text.get("format")
        return str(fmt.get("type", "")) if isinstance(fmt, dict) and fmt.get("type") != "text" else ""


def _plain_answer(path: str, body: dict[str, Any], reply: str, seq: int) -> dict[str, Any]:
    """A minimal, valid answer object carrying ``reply`` (usage left at zero: the checks read only the text)."""
    model = str(body.get("model", ""))
    if path.endswith("/responses"):
        part = {"type": "output_text", "text": reply, "annotations": []}
        return {"id": f"resp_check{seq:04d}", "object": "response", "created_at": 0, "status": "completed", "model": model,
                "output": [{"id": f"msg_check{seq:04d}", "type": "message", "status": "completed", "role": "assistant",
                            "content": [part]}],
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
                "usage": {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
                          "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}}
    message = {"role": "assistant", "content": reply, "refusal": None}
    return {"id": f"chatcmpl-check{seq:04d}", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


@dataclass
class _Scripted(httpx2.BaseTransport):
    """Answers every request with the next scripted reply text (or the API's error for a request it rejects)."""

    replies: list[str] = field(default_factory=list)
    judge: bool = True
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        from ..simulate import api_error_for

        raw = request.read()
        body = json.loads(raw) if raw else {}
        path = request.url.path
        self.sent.append(("responses" if path.endswith("/responses") else "chat", body))
        error = api_error_for(body) if self.judge else None
        reply = self.replies[min(len(self.sent), len(self.replies)) - 1] if self.replies else "{}"
        if error is None and not body.get("stream"):
            return httpx2.Response(200, json=_plain_answer(path, body, reply, len(self.sent)), request=request)
        from ..authoring import Pending, Renderer  # errors and streams: the full renderer

        pending = Pending(reply=None if error else reply, error=error, label="scripted by the check")
        status, payload, headers = Renderer().render(path, body, raw, pending, f"check{len(self.sent):04d}")
        return httpx2.Response(status, headers=headers, content=payload.encode(), request=request)


def _scripted(replies: Sequence[str] = (), *, judge: bool = True) -> tuple[openai.OpenAI, _Scripted]:
    """A real SDK client whose every answer is scripted (no cassette, no network, no retries)."""
    transport = _Scripted(list(replies), judge)
    made = openai.OpenAI(api_key="labkit-check", base_url="https://api.openai.com/v1", max_retries=0,
                         http_client=httpx2.Client(transport=transport))
    return made, transport


_CAPTURE: list[tuple[openai.OpenAI, _Scripted]] = []


def wire(req: Mapping[str, Any], name: str = "the request") -> Sent:
    """What the API receives for these keyword arguments: sent through the SDK to a capturing transport.

    ``messages`` means Chat Completions, ``input`` the Responses API; a pydantic class as the output
    format means ``parse``. Raises _Fail when the SDK refuses the arguments.
    """
    if not _CAPTURE:
        _CAPTURE.append(_scripted(judge=False))
    client, transport = _CAPTURE[0]
    transport.sent.clear()
    kwargs = dict(req)
    if "messages" in kwargs:
        api, parse = "chat", isinstance(kwargs.get("response_format"), type)
        method: Callable[..., Any] = client.chat.completions.parse if parse else client.chat.completions.create
        call = "client.chat.completions." + ("parse" if parse else "create")
    elif "input" in kwargs:
        api, parse = "responses", "text_format" in kwargs
        method = client.responses.parse if parse else client.responses.create
        call = "client.responses." + ("parse" if parse else "create")
    else:
        raise _Fail(f"{name} has neither messages (Chat Completions) nor input (Responses API)")
    refused: Exception | None = None
    try:
        method(**kwargs)
    except Exception as err:  # noqa: BLE001 - once the body is captured, a parse of the placeholder answer may fail
        refused = err
    if not transport.sent:
        raise _Fail(f"{call}(**{name}) refuses it: {type(refused).__name__}: {str(refused)[:200]}")
    return Sent(api, transport.sent[-1][1])


def _request(ctx: Context, name: str, *args: Any) -> Sent:
    """The learner's builder called with ``args``, as the API receives it (memoised per session)."""
    key = f"wire:{name}:" + hashlib.sha256(json.dumps(args, default=str).encode()).hexdigest()
    if key not in ctx.memo:
        try:
            req = ctx.attr(name)(*args)
            if not isinstance(req, dict):
                raise _Fail(f"{name}() returned {type(req).__name__}, not the dict of keyword arguments for create()")
            if not isinstance(req.get("model"), str) or not req["model"]:
                raise _Fail(f"{name}() sends no model: pick one by role (labkit.course.models)")
            ctx.memo[key] = wire(req, f"{name}()")
        except Exception as err:  # noqa: BLE001 - remembered, raised again for every check that needs it
            ctx.memo[key] = err
    got = ctx.memo[key]
    if isinstance(got, BaseException):
        raise got
    assert isinstance(got, Sent)
    return got


def _info(sent: Sent) -> ModelInfo:
    try:
        return get_model(sent.model)
    except UnknownModelError as err:
        raise _Fail(str(err)) from None


def _current(sent: Sent, instead: str) -> ModelInfo:
    """The model's catalog entry, if it is a current chat model on the course date (else _Fail)."""
    info = _info(sent)
    day = course_date()
    if info.kind != "chat":
        raise _Fail(f"{sent.model} is a {info.kind} model, not a chat model")
    state = info.lifecycle(day)
    if state == "shutdown":
        raise _Fail(f"{sent.model} was shut down on {info.shutdown_date}: the API answers 404 model_not_found. Use {instead}.")
    if state == "deprecated":
        raise _Fail(f"{sent.model} is deprecated: it shuts down on {info.shutdown_date}, {info.days_left(day)} days after "
                    f"the course date {day}. Use a current model, such as {instead}.")
    return info


def _runs_at(sent: Sent, info: ModelInfo) -> str:
    """The effort the request runs at ("none" for a model that does not reason)."""
    return info.effective_effort(sent.effort) if info.reasoning else "none"


def _sampling_ok(sent: Sent, info: ModelInfo) -> None:
    """Sampling parameters changed where the model does not take them at this effort: _Fail, as the API's 400."""
    changed = [n for n in SAMPLING if sent.body.get(n) is not None and sent.body.get(n) is not False
               and sent.body.get(n) != _DEFAULTS.get(n)]
    if changed and not info.accepts_sampling(sent.effort):
        names = ", ".join(changed)
        if info.sampling == "effort-none":
            raise _Fail(f"{sent.model} takes {names} only at reasoning effort 'none'; this request runs at "
                        f"{_runs_at(sent, info)!r}, so the API answers 400. Send reasoning effort 'none', or drop {names}.")
        raise _Fail(f"{sent.model} takes no {names} at any effort (the API answers 400): drop {names} and steer with "
                    "reasoning effort and verbosity, or use a model whose effort goes down to 'none'.")


_DEFAULTS: dict[str, Any] = {"temperature": 1, "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0}


def _cap(sent: Sent, info: ModelInfo, template: str) -> tuple[bool, str]:
    """The output cap: within the template's range at effort none; room to finish on a reasoning model."""
    visible = course.VISIBLE[template]
    least, most = course.CAPS[template]
    if "max_tokens" in sent.body:
        return False, (f"max_tokens is deprecated and every current model rejects it: cap the output with "
                       f"{course.CAP_PARAMS[sent.api]} ({'Chat Completions' if sent.api == 'chat' else 'Responses API'})")
    cap = sent.cap
    if cap is None:
        return False, f"no output cap: set {course.CAP_PARAMS[sent.api]} so a runaway reply cannot cost more than planned"
    name, value = cap
    effort = _runs_at(sent, info)
    if effort == "none":
        if value < least or (most is not None and value > most):
            want = f"between {least} and {most}" if most is not None else f"at least {least}"
            return False, f"{name}={value} at reasoning effort 'none' (no reasoning: the cap is the visible answer); the template asks for {want}"
        return True, f"{sent.model} at effort 'none': output capped at {value} tokens"
    need = course.minimum_cap(effort, visible)
    if value < need:
        room = course.reasoning_room(effort, visible)
        return False, (f"{name}={value} is too small to finish: it counts reasoning tokens too, and at effort {effort!r} "
                       f"{sent.model} is expected to spend up to ~{room:,} on reasoning before the ~{visible:,}-token answer; "
                       f"allow at least {need:,} (a larger cap is fine: OpenAI suggests starting near "
                       f"{course.OPENAI_STARTING_CAP:,} and lowering it from usage)")
    return True, f"{sent.model}: {name}={value:,} leaves room for reasoning at effort {effort!r} beyond ~{visible:,} visible tokens"


def _graded(fn: Callable[[Context], tuple[bool, str]]) -> Callable[[Context], tuple[bool, str]]:
    def run(ctx: Context) -> tuple[bool, str]:
        try:
            return fn(ctx)
        except _Fail as err:
            return False, str(err)
        except ReplayMiss as err:
            lines = str(err).splitlines()
            return False, " ".join(line.strip() for line in lines[:4])[:500]
        except openai.APIStatusError as err:
            return False, f"the API answered {err.status_code}: {str(err.message)[:240]}"

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def _check(check_id: str) -> Callable[[Callable[[Context], tuple[bool, str]]], Callable[[Context], tuple[bool, str]]]:
    def deco(fn: Callable[[Context], tuple[bool, str]]) -> Callable[[Context], tuple[bool, str]]:
        return register(f"ex02.{check_id}")(_graded(fn))

    return deco


def _missing(text: str, groups: Mapping[str, Sequence[str]], need: dict[str, int] | None = None) -> list[str]:
    low = text.lower()
    out = []
    for name, words in groups.items():
        hits = [w for w in words if re.search(w, low)]
        if len(hits) < (need or {}).get(name, 1):
            out.append(name)
    return out


def _close(got: Any, want: float, rel: float = 1e-9, tol: float = 1e-9) -> bool:
    return isinstance(got, (int, float)) and not isinstance(got, bool) and math.isclose(got, want, rel_tol=rel, abs_tol=tol)


def _short_text(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _where_differ(a: Any, b: Any, width: int = 36) -> tuple[str, str]:
    """The two values around the first character where their JSON differs."""
    ja, jb = (json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in (a, b))
    i = next((k for k, (x, y) in enumerate(zip(ja, jb)) if x != y), min(len(ja), len(jb)))
    start = max(0, i - 8)
    return ("…" if start else "") + ja[start: start + width], ("…" if start else "") + jb[start: start + width]


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- sending: the course's answers


def replay_client(*cassettes: str) -> openai.OpenAI:
    """A replay-only client with the course simulator: a valid request on a recorded task gets the recorded
    answer (numbers computed for that request), a request the API rejects gets its error. Never live."""
    from ..modes import client

    made = client(list(cassettes or CHECK_CASSETTES), mode="replay", simulate=True)
    assert isinstance(made, openai.OpenAI)
    return made


def _course_run(ctx: Context, fn_name: str, *args: Any) -> Any:
    """The learner's send function on the course simulator (memoised per session): its result."""
    key = f"course:{fn_name}"
    if key not in ctx.memo:
        try:
            client = replay_client(*CHECK_CASSETTES)
            result = ctx.attr(fn_name)(client, *args)
            if not replay_transport(client).served:
                raise _Fail(f"{fn_name}() sent no request through the client it was given")
            ctx.memo[key] = (result,)
        except Exception as err:  # noqa: BLE001 - remembered, raised again for every check that needs it
            ctx.memo[key] = err
    got = ctx.memo[key]
    if isinstance(got, BaseException):
        raise got
    return got[0]


def _as_data(value: Any) -> Any:
    """A pydantic model as its JSON data; anything else unchanged."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


# --------------------------------------------------------------------------- template 1: support triage


@_check("t1-model")
def t1_model(ctx: Context) -> tuple[bool, str]:
    sent = _request(ctx, "support_request")
    info = _current(sent, f"the FAST role ({FAST})")
    price = info.price_output
    if price is None or price > course.CHEAP_OUTPUT_MAX:
        return False, (f"{sent.model} costs ${price}/1M output tokens: for thousands of tickets a day pick a model whose output "
                       f"costs at most ${course.CHEAP_OUTPUT_MAX:.2f}/1M, such as the FAST role ({FAST})")
    return True, f"{sent.model}: ${info.price_input}/1M input, ${price}/1M output"


@_check("t1-consistency")
def t1_consistency(ctx: Context) -> tuple[bool, str]:
    sent = _request(ctx, "support_request")
    info = _info(sent)
    _sampling_ok(sent, info)
    effort = _runs_at(sent, info)
    if effort == "none":
        t = sent.sampling("temperature")
        limit = course.CONSISTENCY_MAX_TEMPERATURE
        if t is None or not 0 <= t <= limit:
            shown = "the default 1" if t is None else str(t)
            return False, f"temperature {shown} at effort 'none': set it to {limit} or lower for consistent replies"
        return True, f"{sent.model} at effort 'none', temperature {t:g}"
    if effort not in course.CONSISTENCY_EFFORTS:
        return False, (f"{sent.model} runs at reasoning effort {effort!r} and takes no temperature there: for short, uniform "
                       f"replies either send reasoning effort 'none' with temperature <= {course.CONSISTENCY_MAX_TEMPERATURE}, "
                       f"or keep the reasoning light ({' or '.join(repr(e) for e in course.CONSISTENCY_EFFORTS)})")
    return True, f"{sent.model} at reasoning effort {effort!r}, no sampling parameters"


@_check("t1-output-limit")
def t1_output_limit(ctx: Context) -> tuple[bool, str]:
    sent = _request(ctx, "support_request")
    return _cap(sent, _info(sent), "support")


@_check("t1-system-message")
def t1_system_message(ctx: Context) -> tuple[bool, str]:
    text = _request(ctx, "support_request").instructions
    if not text:
        return False, "the request has no system or developer message (or instructions)"
    groups = {
        "role (a support agent)": [r"\b(support|service|help ?desk|customer care)\b",
                                   r"\b(agent|assistant|representative|specialist|rep|advisor|associate)\b"],
        "company name (COMPANY)": [rf"(?<![\w./]){re.escape(course.COMPANY.lower())}(?!\w|\.\w)"],  # not just in a URL
        "tone (professional and empathetic)": [r"\b(professional|courteous|polite)", r"\b(empath|compassion|caring)"],
        "refund limit ($100)": [r"refund", rf"\$?\s?{course.REFUND_LIMIT:.0f}\b"],
        "no admission of liability": [r"liab|fault|blame|responsib"],
    }
    need = {"role (a support agent)": 2, "tone (professional and empathetic)": 2, "refund limit ($100)": 2}
    missing = _missing(text, groups, need)
    if missing:
        return False, "the system message does not state: " + "; ".join(missing)
    return True, "role, company, tone and constraints (refund limit, liability) are all stated"


def _support_text(ctx: Context) -> str:
    text = _course_run(ctx, "support_reply")
    if not isinstance(text, str) or not text.strip():
        raise _Fail(f"support_reply() returned {type(text).__name__} {_short(text, 40)}, not the reply text")
    return text


@_check("t1-tone")
def t1_tone(ctx: Context) -> tuple[bool, str]:
    text = _support_text(ctx)
    problems = tone_problems(text)
    if problems:
        return False, "the reply is not professional and empathetic: " + "; ".join(problems)
    ack = _EMPATHY.search(text)
    return True, f"acknowledges the issue ({ack.group(0)!r}), no blame, slang or shouting" if ack else "ok"


@_check("t1-no-refund-promise")
def t1_no_refund_promise(ctx: Context) -> tuple[bool, str]:
    text = _support_text(ctx)
    limit, ticket = course.REFUND_LIMIT, course.TICKET_AMOUNT
    promises = refund_promises(text, ticket_amount=ticket)
    over = [p for p in promises if any(a > limit for a in p.amounts)]
    if over:
        p = over[0]
        how = "" if p.stated else f" (no amount named, so it covers the ticket's ${ticket:.0f})"
        return False, f"the reply promises a refund over ${limit:.0f}{how}: {_short(p.sentence, 160)}"
    extra = f"; {len(promises)} promise(s) within the limit" if promises else ""
    return True, f"no refund over ${limit:.0f} is promised{extra}"


@_check("t1-next-step")
def t1_next_step(ctx: Context) -> tuple[bool, str]:
    step = next_step(_support_text(ctx))
    if step is None:
        return False, "no concrete next step (an action such as 'I've escalated this' plus who, when or where)"
    return True, f"next step: {_short(step, 120)}"


def _want_savings(t: float, share: float, manual: float, tokens: float, price: float) -> dict[str, float]:
    automated = t * share
    api = automated * tokens / 1000 * price
    remaining = (t - automated) * manual
    return {"manual_cost": t * manual, "automated_tickets": automated, "api_cost": api,
            "remaining_manual_cost": remaining, "savings": t * manual - remaining - api}


def _property(test: Callable[..., None], max_examples: int, **strategies: Any) -> tuple[bool, str]:
    from .props import check_property

    return check_property(test, max_examples=max_examples, **strategies)


@_check("t1-savings")
def t1_savings(ctx: Context) -> tuple[bool, str]:
    from hypothesis import strategies as st

    fn = ctx.attr("support_savings")

    def holds(t: int, share: float, manual: float, tokens: int, price: float) -> None:
        got = fn(tickets_per_day=t, automated_share=share, manual_cost_per_ticket=manual, tokens_per_ticket=tokens, price_per_1k=price)
        assert isinstance(got, dict), f"support_savings() returned {type(got).__name__}, not a dict"
        want = _want_savings(t, share, manual, tokens, price)
        wrong = [k for k, v in want.items() if not _close(got.get(k), v)]
        assert not wrong, (f"for {t:,} tickets, {share:.0%} automated, ${manual}/manual reply, {tokens} tokens at ${price}/1K: "
                           + ", ".join(f"{k}={_short(got.get(k), 24)} (expected {want[k]:,.6g})" for k in wrong))

    shares = st.one_of(st.sampled_from([0.0, 0.25, 0.5, course.AUTOMATED_SHARE, 1.0]), st.floats(0, 1))
    ok, detail = _property(holds, 30, t=st.one_of(st.sampled_from([0, 1, course.TICKETS_PER_DAY]), st.integers(0, 200_000)),
                           share=shares, manual=st.sampled_from([0.0, 2.5, 4.0, 19.99]),
                           tokens=st.sampled_from([0, 450, 4_000, 12_345]), price=st.sampled_from([0.0, 0.002, 0.06, 1.5]))
    if not ok:
        return False, detail
    d = fn()
    t0, share0, manual0, price0 = (course.TICKETS_PER_DAY, course.AUTOMATED_SHARE, course.MANUAL_COST_PER_TICKET,
                                   course.LESSON_PRICE_T1)
    assumed = float(getattr(ctx.module, "TOKENS_PER_TICKET", course.TOKENS_PER_TICKET) or 0)  # an assumption: yours may differ
    lesson = _want_savings(t0, share0, manual0, assumed, price0)
    if not isinstance(d, dict) or not all(_close(d.get(k), v) for k, v in lesson.items()):
        return False, (f"with its defaults support_savings() should use the lesson's inputs ({t0:,} tickets, {share0:.0%}, "
                       f"${manual0:.2f} a manual reply, ${price0}/1K) and TOKENS_PER_TICKET: got {_short(d, 120)}")
    return True, (f"lesson inputs: manual ${d['manual_cost']:,.2f}/day, API ${d['api_cost']:,.2f}, "
                  f"savings ${d['savings']:,.2f} (not the lesson's ~$3,740); {detail}")


# --------------------------------------------------------------------------- template 2: headlines


@_check("t2-model")
def t2_model(ctx: Context) -> tuple[bool, str]:
    sent = _request(ctx, "headline_request")
    info = _current(sent, "a full-size current model (the DEFAULT or FLAGSHIP role)")
    floor = get_model(course.CREATIVE_PRICE_ROLE).price_output or 0.0
    price = info.price_output or 0.0
    if price < floor:
        return False, (f"{sent.model} is in the cheap tier (${price}/1M output): creative copy asks for a full-size model, "
                       f"output priced at ${floor:g}/1M or more (the DEFAULT role, {course.CREATIVE_PRICE_ROLE}, or the FLAGSHIP)")
    return True, f"{sent.model}: ${price:g}/1M output, a full-size model"


def _creative_lever(ctx: Context, name: str, bounds: tuple[float, float], why: str) -> tuple[bool, str]:
    """Template 2's sampling lever within bounds where the model samples; left alone on the reasoning form."""
    sent = _request(ctx, "headline_request")
    info = _info(sent)
    _sampling_ok(sent, info)
    if _runs_at(sent, info) != "none":
        return True, f"{sent.model} runs at effort {_runs_at(sent, info)!r}: no {name} (the API fixes it at 1); variety comes from the prompt"
    value = sent.sampling(name)
    effective = 1.0 if value is None else value
    lo, hi = bounds
    if not lo <= effective <= hi:
        return False, f"{name} {effective:g} at effort 'none': {why}"
    return True, f"{sent.model} at effort 'none', {name} {effective:g}" + (" (the default)" if value is None else "")


@_check("t2-temperature")
def t2_temperature(ctx: Context) -> tuple[bool, str]:
    lo, hi = course.CREATIVE_TEMPERATURE
    return _creative_lever(ctx, "temperature", course.CREATIVE_TEMPERATURE,
                           f"for varied headlines sample at {lo:g} to {hi:g} (below {lo:g} the likeliest wording keeps winning; "
                           f"above {hi:g} unlikely tokens make the copy incoherent)")


@_check("t2-top-p")
def t2_top_p(ctx: Context) -> tuple[bool, str]:
    lo, hi = course.CREATIVE_TOP_P
    return _creative_lever(ctx, "top_p", course.CREATIVE_TOP_P,
                           f"top_p keeps only the likeliest tokens covering that share of the probability, so a low value "
                           f"narrows the word choice; keep it between {lo:g} and {hi:g} (0.9 trims only the unlikely tail)")


@_check("t2-output-limit")
def t2_output_limit(ctx: Context) -> tuple[bool, str]:
    sent = _request(ctx, "headline_request")
    return _cap(sent, _info(sent), "headlines")


@_check("t2-system-message")
def t2_system_message(ctx: Context) -> tuple[bool, str]:
    text = _request(ctx, "headline_request").instructions
    if not text:
        return False, "the request has no system or developer message (or instructions)"
    voice = "brand voice (at least two of bold, data-driven, provocative, ...)"
    groups = {
        "creative persona (a copywriter)": [r"copywriter|copy ?writer|creative director|ad writer|advertising writer"],
        voice: [r"\bbold", r"data-?driven", r"provocative", r"punchy", r"confident", r"challeng", r"irreverent", r"witty",
                r"edgy", r"direct"],
    }
    missing = _missing(text, groups, {voice: 2})
    if missing:
        return False, "the system message does not define: " + "; ".join(missing)
    return True, "persona and brand voice are defined"


def _headlines(ctx: Context) -> list[str]:
    got = _course_run(ctx, "headlines")
    if not isinstance(got, list) or not all(isinstance(h, str) for h in got):
        raise _Fail(f"headlines() returned {type(got).__name__}, not a list of strings")
    return [h.strip() for h in got if h.strip()]


@_check("t2-distinct-headlines")
def t2_distinct(ctx: Context) -> tuple[bool, str]:
    heads = _headlines(ctx)
    if len(heads) < 5:
        return False, f"{len(heads)} headline(s): at least 5 are needed ({_short(heads, 120)})"
    long = [h for h in heads if len(h.split()) > MAX_HEADLINE_WORDS]
    if long:
        return False, f"not short and punchy (over {MAX_HEADLINE_WORDS} words): {_short(long[0], 100)}"
    score, a, b = most_similar_pair(heads)
    if score >= MAX_SIMILARITY:
        return False, f"too alike (word overlap {score:.2f} >= {MAX_SIMILARITY}): {_short(a)} / {_short(b)}"
    bold = [h for h in heads if _PROVOKE.search(h)]
    if len(bold) < 3:
        return False, f"only {len(bold)} headline(s) challenge the status quo (a question, a number, 'stop', 'still', 'not'...)"
    return True, f"{len(heads)} headlines, most similar pair overlaps {score:.2f}; {len(bold)} provoke"


def _headlines_naming(ctx: Context, words: re.Pattern[str], what: str, examples: str) -> tuple[bool, str]:
    """At least three of the headlines use the brief's vocabulary for ``what``."""
    heads = _headlines(ctx)
    hits = [h for h in heads if words.search(h)]
    if len(hits) < 3:
        return False, f"only {len(hits)} of {len(heads)} headlines {what} ({examples}...)"
    return True, f"{len(hits)} of {len(heads)} headlines {what}"


@_check("t2-audience")
def t2_audience(ctx: Context) -> tuple[bool, str]:
    return _headlines_naming(ctx, course.AUDIENCE_WORDS, "speak to sales teams", "sales, reps, quota, pipeline, deals")


@_check("t2-pain-point")
def t2_pain_point(ctx: Context) -> tuple[bool, str]:
    return _headlines_naming(ctx, course.PAIN_WORDS, "address manual data entry", "typing, CRM, spreadsheets")


def format_headlines(heads: Sequence[str], style: str, quote: tuple[str, str] | None, blank: bool, newline: str) -> str:
    """A reply listing ``heads`` as the contract allows: numbered ("1." / "1)"), bulleted or plain, maybe quoted."""
    lines = []
    for i, head in enumerate(heads, 1):
        text = f"{quote[0]}{head}{quote[1]}" if quote else head
        if style in course.HEADLINE_NUMBERING:
            marker = f"{i}{style} "
        elif style in course.HEADLINE_BULLETS:
            marker = f"{style} "
        else:
            marker = ""
        lines.append(marker + text)
    return (newline * (2 if blank else 1)).join(lines) + newline


@_check("t2-splits-headlines")
def t2_splits_headlines(ctx: Context) -> tuple[bool, str]:
    from hypothesis import strategies as st

    fn = ctx.attr("headlines")

    def holds(heads: list[str], style: str, quote: tuple[str, str] | None, blank: bool, newline: str) -> None:
        reply = format_headlines(heads, style, quote, blank, newline)
        client, transport = _scripted([reply])
        try:
            got = fn(client, course.AD_BRIEF)
        except openai.APIStatusError as err:
            raise AssertionError(f"the API answered {err.status_code} to headline_request(): {str(err.message)[:160]}") from None
        shown = " | ".join(reply.strip().splitlines()[:3])
        assert len(transport.sent) == 1, f"headlines() sent {len(transport.sent)} requests (expected exactly 1)"
        assert isinstance(got, list), f"headlines() returned {type(got).__name__}, not a list"
        mine = [str(h).strip() for h in got]
        for i, (have, want) in enumerate(zip(mine, heads), 1):
            assert have == want, (f"headline {i} of the reply is {want!r} and headlines() returned {have!r} "
                                  f"(the reply began: {shown!r}); strip only the numbering or bullet and the quotes around it")
        assert len(mine) == len(heads), (f"the reply held {len(heads)} headlines (it began: {shown!r}) and headlines() "
                                         f"returned {len(mine)}: {_short(mine, 100)}")

    styles = [*course.HEADLINE_NUMBERING, *course.HEADLINE_BULLETS, ""]
    quotes = [None, *course.HEADLINE_QUOTES]
    samples = course.HEADLINE_SAMPLES
    for k, style in enumerate(styles):  # every style, quoting, spacing and sample headline at least once
        heads = [samples[(5 * k + j) % len(samples)] for j in range(5)]
        try:
            holds(heads, style, quotes[k % len(quotes)], k % 2 == 0, "\r\n" if k % 3 == 2 else "\n")
        except AssertionError as err:
            return False, str(err)
    try:  # every sample as a plain line: a headline's own leading digits and periods are not a marker
        holds(list(samples), "", None, False, "\n")
    except AssertionError as err:
        return False, str(err)
    ok, detail = _property(holds, 8, heads=st.lists(st.sampled_from(course.HEADLINE_SAMPLES), min_size=3, max_size=5, unique=True),
                           style=st.sampled_from(styles), quote=st.sampled_from([None, *course.HEADLINE_QUOTES]),
                           blank=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]))
    if not ok:
        return False, detail
    return True, f"every headline comes back whole, in every numbering, bullet and quoting style ({detail})"


def _cost_holds(fn: Callable[..., Any]) -> Callable[..., None]:
    def holds(n: int, tokens: int, price: float, budget: float) -> None:
        got = fn(requests=n, tokens_per_request=tokens, price_per_1k=price, budget=budget)
        want = n * tokens / 1000 * price
        case = f"{n} requests x {tokens} tokens at ${price}/1K with a ${budget} budget"
        assert isinstance(got, dict), f"{case}: headline_cost() returned {type(got).__name__}, not a dict"
        assert _close(got.get("cost"), want), f"{case}: cost={_short(got.get('cost'), 24)}, expected {want:.6g}"
        # a cost equal to the budget is within it; where float rounding decides, judge by the learner's own cost
        within = got["cost"] <= budget if math.isclose(want, budget, rel_tol=1e-9) else want <= budget
        assert got.get("within_budget") is within, (f"{case}: the cost is {want:.6g}, so within_budget is "
                                                    f"{within}, got {_short(got.get('within_budget'), 24)}")
        assert _close(got.get("share_of_budget"), want / budget), (f"{case}: share_of_budget={_short(got.get('share_of_budget'), 24)}, "
                                                                  f"expected {want / budget:.6g}")
    return holds


@_check("t2-cost")
def t2_cost(ctx: Context) -> tuple[bool, str]:
    from hypothesis import strategies as st

    fn = ctx.attr("headline_cost")
    holds = _cost_holds(fn)
    try:  # the budget boundary: a cost equal to the budget is within it (the second, 0.3, floats may round either way)
        holds(40, 250, 0.5, 5.0)
        holds(6, 100, 0.5, 0.3)
    except AssertionError as err:
        return False, str(err)
    ok, detail = _property(holds, 25, n=st.integers(0, 100_000), tokens=st.sampled_from([0, 100, 250, 4_096]),
                           price=st.sampled_from([0.002, 0.06, 0.5, 2.0]), budget=st.sampled_from([0.01, 0.3, 5.0, 500.0]))
    if not ok:
        return False, detail
    d = fn()
    n, tokens, price, budget = course.HEADLINES_NEEDED, course.TOKENS_PER_HEADLINE_REQUEST, course.LESSON_PRICE_T2, course.BUDGET_USD
    if not isinstance(d, dict) or not _close(d.get("cost"), n * tokens / 1000 * price):
        return False, f"with its defaults headline_cost() should use the lesson's inputs ({n} x {tokens} tokens at ${price}/1K)"
    return True, f"{n} requests cost ${d['cost']:.2f} of the ${budget:,.0f} budget; {detail}"


# --------------------------------------------------------------------------- template 3: financial analysis


def _analysis_request(ctx: Context) -> Sent:
    return _request(ctx, "analysis_request", course.load_financials())


@_check("t3-model")
def t3_model(ctx: Context) -> tuple[bool, str]:
    sent = _analysis_request(ctx)
    info = _current(sent, f"the REASONING role ({REASONING})")
    if not info.reasoning:
        return False, f"{sent.model} is not a reasoning model: use one (the REASONING role, {REASONING}) for exact arithmetic"
    effort = _runs_at(sent, info)
    if effort not in course.ACCURACY_EFFORTS:
        why = "does not reason at all" if effort == "none" else "skips most of the reasoning this arithmetic needs"
        return False, (f"{sent.model} at reasoning effort {effort!r} {why}: accuracy wants reasoning at "
                       f"{course.ACCURACY_MIN_EFFORT!r} or above")
    return True, f"{sent.model}: a reasoning model at effort {effort!r}"


@_check("t3-zero-creativity")
def t3_zero_creativity(ctx: Context) -> tuple[bool, str]:
    sent = _analysis_request(ctx)
    info = _info(sent)
    _sampling_ok(sent, info)
    changed = {n: sent.body[n] for n in ("temperature", "top_p") if sent.sampling(n) not in (None, 1.0)}
    if _runs_at(sent, info) != "none":
        if changed:
            return False, f"{', '.join(changed)} sent to a model that takes none: remove them"
        return True, f"{sent.model} at effort {_runs_at(sent, info)!r} with no sampling parameters"
    t = sent.sampling("temperature")
    if t != 0:
        return False, f"temperature {'1 (the default)' if t is None else t} at effort 'none': zero creativity is temperature 0"
    return True, f"{sent.model} at temperature 0"


@_check("t3-output-limit")
def t3_output_limit(ctx: Context) -> tuple[bool, str]:
    sent = _analysis_request(ctx)
    return _cap(sent, _info(sent), "analysis")


@_check("t3-system-message")
def t3_system_message(ctx: Context) -> tuple[bool, str]:
    sent = _analysis_request(ctx)
    text = sent.instructions
    if not text:
        return False, "the request has no system or developer message (or instructions)"
    structured = sent.output_format in ("json_schema", "json_object")
    groups: dict[str, list[str]] = {"methodical, shown work": [r"methodical|step[- ]by[- ]step|show (?:your|the|all|each|every) "
                                                                r"(?:work|calculation)|numbered steps|\bsteps?\b"]}
    if not structured:
        groups["a JSON result (say so, or set a Structured Outputs format)"] = [r"\bjson\b"]
    missing = _missing(text, groups)
    if missing:
        return False, "the system message does not ask for: " + "; ".join(missing)
    how = f"{sent.output_format} output format" if structured else "JSON asked for in the message"
    return True, f"asks for methodical, shown work; a JSON result ({how})"


def _analysis(ctx: Context) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    got = _course_run(ctx, "analyze", course.load_financials())
    result = _as_data(got.get("result")) if isinstance(got, dict) else None
    if not isinstance(got, dict) or not isinstance(result, dict):
        raise _Fail(f"analyze() should return {{'work': str, 'result': dict}}; got {_short(got, 100)}")
    return got, result, expected_answer(course.load_financials())


def _names(items: Any) -> list[str]:
    out = []
    for item in items if isinstance(items, list) else []:
        item = _as_data(item)
        name = item.get("category") or item.get("name") if isinstance(item, dict) else item
        out.append(" ".join(str(name).lower().replace("&", "and").split()))
    return out


@_check("t3-margin")
def t3_margin(ctx: Context) -> tuple[bool, str]:
    _, result, want = _analysis(ctx)
    value = result.get("net_profit_margin_pct")
    target = want["net_profit_margin_pct"]
    if _close(value, target, tol=0.05):
        return True, f"net profit margin {value}% (computed from the data: {target:.2f}%)"
    if _close(value, target / 100, tol=0.0005):
        return False, f"net_profit_margin_pct={value} looks like a fraction; give a percentage ({target:.2f})"
    keys = ", ".join(sorted(result))
    return False, f"net_profit_margin_pct={_short(value, 30)}, the data gives {target:.2f}% (result keys: {keys})"


@_check("t3-top-expenses")
def t3_top_expenses(ctx: Context) -> tuple[bool, str]:
    _, result, want = _analysis(ctx)
    names = _names(result.get("top_expense_categories"))
    target = _names(want["top_expense_categories"])
    if names == target:
        return True, "top 3 expense categories: " + ", ".join(want["top_expense_categories"])
    return False, f"top_expense_categories={_short(names, 120)}; largest first, the data gives {target!r}"


@_check("t3-steps")
def t3_steps(ctx: Context) -> tuple[bool, str]:
    got, _, want = _analysis(ctx)
    work = got.get("work")
    if not isinstance(work, str):
        return False, f"work is {type(work).__name__}, not the step-by-step text (the steps joined, one per line)"
    steps = [line for line in work.splitlines() if line.strip()]
    numbers = _numbers(work)
    absent = [k for k in ("total_revenue", "total_expenses", "net_profit")
              if not any(math.isclose(n, want[k], rel_tol=1e-3) for n in numbers)]
    if len(steps) < 3 or absent:
        why = f"{len(steps)} line(s)" if len(steps) < 3 else "it never shows " + ", ".join(k.replace("_", " ") for k in absent)
        return False, f"the work is not shown step by step with its figures: {why}"
    return True, f"{len(steps)} steps showing revenue {want['total_revenue']:,.0f}, expenses {want['total_expenses']:,.0f}, net {want['net_profit']:,.0f}"


@_check("t3-factual")
def t3_factual(ctx: Context) -> tuple[bool, str]:
    got, result, _ = _analysis(ctx)
    text = str(got.get("work", "")) + "\n" + json.dumps(result, ensure_ascii=False, default=str)
    words = speculative_words(text)
    if words:
        return False, "speculative language in the analysis: " + ", ".join(words)
    return True, "no speculative or hedging language"


@_check("t3-cost")
def t3_cost(ctx: Context) -> tuple[bool, str]:
    from hypothesis import strategies as st

    fn = ctx.attr("report_cost")

    def holds(tokens: int, price: float) -> None:
        got = fn(report_tokens=tokens, price_per_1k=price)
        assert _close(got, tokens / 1000 * price), f"report_cost({tokens} tokens, ${price}/1K) = {_short(got, 24)}, expected {tokens / 1000 * price:.6g}"

    ok, detail = _property(holds, 20, tokens=st.one_of(st.sampled_from([0, 1, 999, 1_500]), st.integers(0, 1_000_000)),
                           price=st.sampled_from([0.0, 0.002, 0.15, 0.6, 3.0]))
    if not ok:
        return False, detail
    d = fn()
    tokens, price = course.REPORT_TOKENS, course.LESSON_PRICE_T3
    if not _close(d, tokens / 1000 * price):
        return False, f"report_cost() with its defaults gives {_short(d, 24)}: use the lesson's {tokens:,} tokens at ${price}/1K"
    return True, f"one {tokens:,}-token report: ${d:.3f} at the lesson's price; {detail}"


# --------------------------------------------------------------------------- across templates

_BUILDERS = (("support_request", "email", course.SUPPORT_EMAIL), ("headline_request", "brief", course.AD_BRIEF),
             ("analysis_request", "csv_text", None))


def _builder_args(name: str, default: str | None) -> tuple[Any, ...]:
    return (course.load_financials(),) if default is None else ()


@_check("api-accepts")
def api_accepts(ctx: Context) -> tuple[bool, str]:
    bad = []
    for name, _, default in _BUILDERS:
        sent = _request(ctx, name, *_builder_args(name, default))
        errors = [f for f in lint_request(today=course_date(), **sent.body) if f.severity == "error"]
        if errors:
            bad.append(f"{name}(): {errors[0].code}: {_short_text(errors[0].message, 220)}")
    if bad:
        return False, "the real API would reject: " + " | ".join(bad)
    return True, f"labkit.lint_request finds nothing the API would reject in the three requests (judged on {course_date()})"


def _generated_text(min_size: int = 8) -> Any:
    """hypothesis text: any unicode but lone surrogates."""
    from hypothesis import strategies as st

    return st.text(st.characters(codec="utf-8"), min_size=min_size, max_size=80)


def _first_failure(test: Callable[[str], None], probes: Sequence[str]) -> str | None:
    """Run ``test`` on each contract input in turn: the first failure's message, or None."""
    for probe in probes:
        try:
            test(probe)
        except AssertionError as err:
            return str(err)
    return None


@_check("uses-inputs")
def uses_inputs(ctx: Context) -> tuple[bool, str]:
    for name, arg, _ in _BUILDERS:
        fn = ctx.attr(name)

        def holds(probe: str, fn: Callable[..., Any] = fn, name: str = name, arg: str = arg) -> None:
            req = fn(probe)
            assert isinstance(req, dict), f"{name}() returned {type(req).__name__}, not a dict"
            users = Sent("", dict(req)).users
            assert any(probe.strip() in user for user in users), (
                f"{name}({arg}={_short(probe, 50)}) does not send that {arg} as given: its user message is "
                f"{_short(users[-1] if users else None, 80)}; pass the argument on unchanged, never a fixed text")

        failed = _first_failure(holds, course.ADVERSARIAL_INPUTS)
        if failed:
            return False, failed
        ok, detail = _property(holds, 10, probe=_generated_text())
        if not ok:
            return False, detail
    return True, "each builder sends the email, brief or data it is given, verbatim (quotes, SQL, unicode, line breaks, very long input)"


def _meaning(body: dict[str, Any]) -> Any:
    """What of a request decides the answer: without the fields that cannot change it, and streamed or not alike."""
    shaped = answer_shape(body)
    return {k: v for k, v in shaped.items() if k not in ("stream", "stream_options")} if isinstance(shaped, dict) else shaped


def _direct(ctx: Context, build: str, probe: str) -> tuple[str, Any] | None:
    """The builder's request as JSON data, when it is plain JSON for a create() call (no SDK round trip needed)."""
    try:
        req = json.loads(json.dumps(ctx.attr(build)(probe)))
    except (TypeError, ValueError):
        return None
    if not isinstance(req, dict) or "text_format" in req:
        return None
    api = "chat" if "messages" in req else "responses" if "input" in req else ""
    return api, _meaning({k: v for k, v in req.items() if v is not None})


def _sends(ctx: Context, send: str, build: str, arg: str, probe: str, reply: str) -> Any:
    """Call ``send(client, probe)`` on a scripted client: its result, after checking the request it sent."""
    client, transport = _scripted([reply])
    case = f"{send}({arg}={_short(probe, 40)})"
    try:
        result = ctx.attr(send)(client, probe)
    except openai.APIStatusError as err:
        raise AssertionError(f"{case}: the API answered {err.status_code}: {str(err.message)[:160]}") from None
    assert transport.sent, f"{case} sent no request through the client it was given"
    assert len(transport.sent) == 1, f"{case} sent {len(transport.sent)} requests (expected exactly 1)"
    api, raw = transport.sent[0]
    body = _meaning(raw)
    if (api, body) == _direct(ctx, build, probe):
        return result
    want = _request(ctx, build, probe)
    wanted = _meaning(want.body)
    if (api, body) != (want.api, wanted):
        keys = [k for k in sorted(set(body) | set(wanted)) if body.get(k) != wanted.get(k)]
        parts = []
        for k in keys[:2]:
            mine, theirs = _where_differ(body.get(k, "<absent>"), wanted.get(k, "<absent>"))
            parts.append(f"{k}: sent {mine!r}, {build}() gives {theirs!r}")
        diff = "; ".join(parts)
        diff = diff or f"sent to the {api} API, {build}() is for {want.api}"
        raise AssertionError(f"{case} sent a different request from {build}({arg}=...): {diff}")
    return result


def _analysis_reply(steps: Sequence[str]) -> str:
    return json.dumps({"steps": list(steps), "total_revenue": 1000.5, "total_expenses": 800, "net_profit": 200.5,
                       "net_profit_margin_pct": 20.04, "top_expense_categories": [{"category": "Caf\u00e9 \"A\"", "amount": 500}]},
                      ensure_ascii=False)


_SCRIPTED_HEADLINES = ("Stop Typing. Start Selling.", "Zero Data Entry: Really", "500 Reps, One CRM")


@_check("sends-request")
def sends_request(ctx: Context) -> tuple[bool, str]:
    from hypothesis import strategies as st

    def support(probe: str, reply: str = course.ADVERSARIAL_INPUTS[0]) -> None:
        got = _sends(ctx, "support_reply", "support_request", "email", probe, reply)
        assert isinstance(got, str) and got.strip() == reply.strip(), (
            f"support_reply({_short(probe, 30)}) returned {_short(got, 60)}; the model answered {_short(reply, 60)}: return its text")

    def headline(probe: str) -> None:
        reply = format_headlines(_SCRIPTED_HEADLINES, ".", None, False, "\n")
        got = _sends(ctx, "headlines", "headline_request", "brief", probe, reply)
        assert isinstance(got, list) and [str(h).strip() for h in got] == list(_SCRIPTED_HEADLINES), (
            f"headlines({_short(probe, 30)}) returned {_short(got, 80)} for the reply {reply!r}")

    def analysis(probe: str, steps: Sequence[str] = course.ADVERSARIAL_INPUTS[:3]) -> None:
        steps = [" ".join(step.split()) for step in steps]
        reply = _analysis_reply(steps)
        got = _sends(ctx, "analyze", "analysis_request", "csv_text", probe, reply)
        assert isinstance(got, dict), f"analyze() returned {type(got).__name__}, not a dict"
        result = _as_data(got.get("result"))
        assert result == json.loads(reply), f"analyze() returns a result that differs from the JSON the model sent: {_short(result, 80)}"
        lines = [line for line in str(got.get("work", "")).splitlines() if line.strip()]
        assert len(lines) == len(steps) and all(s.strip() in line for s, line in zip(steps, lines)), (
            f"for the steps {_short(steps, 80)} analyze() gave the work {_short(got.get('work'), 80)}: the steps, one per line")

    probes = (*course.ADVERSARIAL_INPUTS[:3], course.ADVERSARIAL_INPUTS[-1])
    for test in (support, headline, analysis):
        failed = _first_failure(test, probes)
        if failed:
            return False, failed
    step = _generated_text(1).filter(lambda s: s.strip() != "")
    for test, strategies in ((support, {"probe": _generated_text(), "reply": _generated_text(1)}),
                             (analysis, {"probe": _generated_text(), "steps": st.lists(step, min_size=1, max_size=5)})):
        ok, detail = _property(test, 4, **strategies)
        if not ok:
            return False, detail
    return True, "each send function sends its own builder's request for the input it is given, once, and returns what came back"


def iter_course_requests() -> Iterator[tuple[str, dict[str, Any]]]:
    """The course's requests for the three templates (sampling and reasoning forms), for tests and the notebook."""
    csv_text = course.load_financials()
    yield "support, sampling", {**course.SUPPORT_SAMPLING, "messages": course.SUPPORT_MESSAGES}
    yield "support, reasoning", {**course.SUPPORT_REASONING, "messages": course.SUPPORT_MESSAGES}
    yield "headlines, sampling", {**course.HEADLINE_SAMPLING, "messages": course.HEADLINE_MESSAGES}
    yield "headlines, reasoning", {**course.HEADLINE_REASONING, "messages": course.HEADLINE_MESSAGES}
    yield "analysis, reasoning", {**course.ANALYSIS_REASONING, "messages": course.analysis_messages(csv_text)}
