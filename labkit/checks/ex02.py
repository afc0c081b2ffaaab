"""Checks for exercise 02: parameter tuning for consistency, creativity and accuracy.

Every success metric of the lesson's three templates is one check. Parameter checks accept either
correct expression of a template's intent: a sampling model with the asked ``temperature`` /
``top_p`` and ``max_tokens``, or a reasoning model (which accepts neither) steered with
``reasoning_effort`` and given ``max_completion_tokens`` with room for its reasoning tokens.
Output checks call the learner's send functions on a replay client and grade what they return
with deterministic heuristics (money and promise parsing, tone lexicons, token overlap, and
figures recomputed here from the data file).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai

from ..catalog import UnknownModelError, base_id, get_model
from ..course import ex02 as course
from ..course.models import BACKUP, FAST, FLAGSHIP, LESSON_FLAGSHIP, LESSON_SMALL, REASONING
from ..course_replay import api_errors, replay_only
from ..replay import ReplayMiss
from ..replay import ReplayTransport as CourseReplay
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


# --------------------------------------------------------------------------- request helpers

#: The course's full-size models: template 2's creative work, and template 3's sampling form.
FLAGSHIPS = frozenset({FLAGSHIP, BACKUP, LESSON_FLAGSHIP})
CHEAP_OUTPUT_PER_1M = 2.00


class _Fail(Exception):
    """Stop a check with a failing detail."""


def _request(ctx: Context, name: str, *args: Any) -> dict[str, Any]:
    req = ctx.attr(name)(*args)
    if not isinstance(req, dict):
        raise _Fail(f"{name}() returned {type(req).__name__}, not the dict of keyword arguments for create()")
    if not isinstance(req.get("model"), str):
        raise _Fail(f"{name}() has no model")
    return req


def _info(req: dict[str, Any]) -> Any:
    try:
        return get_model(req["model"])
    except UnknownModelError as err:
        raise _Fail(str(err)) from None


def _instructions(req: dict[str, Any]) -> str:
    msgs = req.get("messages") or []
    for m in msgs:
        content = m.get("content") if isinstance(m, dict) and m.get("role") in ("system", "developer") else None
        if isinstance(content, str):
            return content
    raise _Fail("the request has no system (or developer) message")


def _sampling_free(req: dict[str, Any], model: str) -> None:
    """A reasoning model must not get temperature/top_p other than the default."""
    for name in ("temperature", "top_p"):
        if req.get(name) not in (None, 1, 1.0):
            raise _Fail(f"{model} is a reasoning model: it accepts only the default {name} (1); the API rejects "
                        f"{name}={req[name]} with a 400. Remove it, or use a sampling model for this lever.")


def _effort(req: dict[str, Any]) -> str:
    return str(req.get("reasoning_effort") or "medium")


def _reasoning_limit(req: dict[str, Any], visible: int, *, upper: bool) -> tuple[bool, str]:
    model = req["model"]
    if "max_tokens" in req:
        return False, f"{model} is a reasoning model: it rejects max_tokens; use max_completion_tokens"
    limit = req.get("max_completion_tokens")
    if not isinstance(limit, int):
        return False, f"no max_completion_tokens: set one so {model}'s output (reasoning included) is capped"
    effort = _effort(req)
    low = visible + course.REASONING_ROOM.get(effort, course.REASONING_ROOM["medium"])
    if limit < low:
        return False, (f"max_completion_tokens={limit} counts reasoning tokens too; with reasoning_effort={effort!r} "
                       f"leave room beyond the ~{visible}-token answer: at least {low}")
    if upper and limit > 4 * low:
        return False, f"max_completion_tokens={limit} is barely a cap; keep it under {4 * low} for this short reply"
    return True, f"{model}: max_completion_tokens={limit} leaves room for reasoning (effort {effort!r}) beyond ~{visible} visible tokens"


def _output_limit(req: dict[str, Any], visible: int, lo: int, hi: int | None) -> tuple[bool, str]:
    """A reasoning model's cap leaves room for reasoning beyond ``visible`` (and, with ``hi``, is still a
    cap); a sampling model's lies in [lo, hi]."""
    if _info(req).reasoning:
        return _reasoning_limit(req, visible, upper=hi is not None)
    return _sampling_limit(req, lo, hi)


def _sampling_limit(req: dict[str, Any], lo: int, hi: int | None) -> tuple[bool, str]:
    limit = req.get("max_tokens", req.get("max_completion_tokens"))
    if not isinstance(limit, int):
        return False, "no output limit: set max_tokens"
    if limit < lo or (hi is not None and limit > hi):
        want = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        return False, f"output limit {limit}: the template asks for {want}"
    return True, f"{req['model']}: output capped at {limit} tokens"


def _graded(fn: Callable[[Context], tuple[bool, str]]) -> Callable[[Context], tuple[bool, str]]:
    def run(ctx: Context) -> tuple[bool, str]:
        try:
            return fn(ctx)
        except _Fail as err:
            return False, str(err)
        except ReplayMiss as err:
            lines = str(err).splitlines()
            return False, " ".join(lines[:2])[:400]
        except openai.APIStatusError as err:
            return False, f"the API answered {err.status_code}: {err.message[:200]}"

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


# --------------------------------------------------------------------------- sending


def _run(ctx: Context, fn_name: str, *args: Any) -> tuple[Any, CourseReplay, Any]:
    """Call the learner's send function on a fresh replay client: (its result, transport, completion body)."""
    client = replay_only(*CHECK_CASSETTES)
    transport = replay_transport(client)
    result = ctx.attr(fn_name)(client, *args)
    if not transport.served:
        raise _Fail(f"{fn_name}() sent no request through the client it was given")
    last = transport.served[-1]
    inter = transport.cassettes[[c.name for c in transport.cassettes].index(last.cassette)].interactions[last.index]
    return result, transport, json.loads(inter.content)


def _content(body: dict[str, Any]) -> str:
    return body["choices"][0]["message"]["content"] or ""


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- template 1: support triage


@_check("t1-model")
def t1_model(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "support_request")
    info = _info(req)
    price = info.price_output
    if info.kind != "chat" or price is None or price > CHEAP_OUTPUT_PER_1M:
        return False, (f"{req['model']} costs ${price}/1M output tokens: for thousands of tickets a day pick a small "
                       f"model (output at most ${CHEAP_OUTPUT_PER_1M:.2f}/1M, e.g. {LESSON_SMALL} or {FAST})")
    return True, f"{req['model']}: ${info.price_input}/1M input, ${price}/1M output"


@_check("t1-consistency")
def t1_consistency(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "support_request")
    info = _info(req)
    if info.reasoning:
        _sampling_free(req, req["model"])
        effort = req.get("reasoning_effort")
        if effort not in ("minimal", "low"):
            return False, (f"{req['model']} takes no temperature; for short, uniform replies set "
                           f"reasoning_effort to 'minimal' or 'low' (got {effort!r})")
        return True, f"{req['model']} at its fixed default sampling, reasoning_effort={effort!r}"
    t = req.get("temperature")
    if not isinstance(t, (int, float)) or not 0 <= t <= 0.2:
        return False, f"temperature={t!r}: set it explicitly to 0.2 or lower for consistent replies"
    return True, f"{req['model']} at temperature {t}"


@_check("t1-output-limit")
def t1_output_limit(ctx: Context) -> tuple[bool, str]:
    cap = course.LESSON_SUPPORT["max_tokens"]
    return _output_limit(_request(ctx, "support_request"), cap, cap // 2, cap)


@_check("t1-system-message")
def t1_system_message(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "support_request")
    text = _instructions(req)
    company = course.COMPANY.lower()
    groups = {
        "role (a support agent)": [r"\bsupport\b", r"\b(agent|assistant|representative|specialist)\b"],
        "company name (COMPANY)": [re.escape(company)],
        "tone (professional and empathetic)": [r"\bprofessional", r"\bempath"],
        "refund limit ($100)": [r"refund", rf"\$?{course.REFUND_LIMIT:.0f}\b"],
        "no admission of liability": [r"liabilit|fault|blame"],
    }
    need = {"role (a support agent)": 2, "tone (professional and empathetic)": 2, "refund limit ($100)": 2}
    missing = _missing(text, groups, need)
    if missing:
        return False, "the system message does not state: " + "; ".join(missing)
    return True, "role, company, tone and constraints (refund limit, liability) are all stated"


def _support_text(ctx: Context) -> str:
    text, _, _ = _run(ctx, "support_reply")
    if not isinstance(text, str) or not text.strip():
        raise _Fail(f"support_reply() returned {type(text).__name__} {text!r:.40}, not the reply text")
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
        return False, f"the reply promises a refund over ${limit:.0f}{how}: {p.sentence!r:.160}"
    extra = f"; {len(promises)} promise(s) within the limit" if promises else ""
    return True, f"no refund over ${limit:.0f} is promised{extra}"


@_check("t1-next-step")
def t1_next_step(ctx: Context) -> tuple[bool, str]:
    text = _support_text(ctx)
    step = next_step(text)
    if step is None:
        return False, "no concrete next step (an action such as 'I've escalated this' plus who, when or where)"
    return True, f"next step: {step!r:.120}"


def _close(got: Any, want: float, tol: float = 0.01) -> bool:
    return isinstance(got, (int, float)) and not isinstance(got, bool) and math.isclose(got, want, rel_tol=1e-6, abs_tol=tol)


def _want_savings(t: float, share: float, manual: float, tokens: float, price: float) -> dict[str, float]:
    automated = t * share
    api = automated * tokens / 1000 * price
    remaining = (t - automated) * manual
    return {"manual_cost": t * manual, "automated_tickets": automated, "api_cost": api,
            "remaining_manual_cost": remaining, "savings": t * manual - remaining - api}


@_check("t1-savings")
def t1_savings(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("support_savings")
    stated = (course.TICKETS_PER_DAY, course.AUTOMATED_SHARE, course.MANUAL_COST_PER_TICKET, course.LESSON_PRICE_T1)
    t0, share0, manual0, price0 = stated
    cases = [(t0, share0, manual0, course.TOKENS_PER_TICKET, price0), (t0, share0, manual0, 4_000, price0), (200, 0.5, 4.00, 600, 0.01)]
    for t, share, manual, tokens, price in cases:
        got = fn(tickets_per_day=t, automated_share=share, manual_cost_per_ticket=manual, tokens_per_ticket=tokens, price_per_1k=price)
        want = _want_savings(t, share, manual, tokens, price)
        if not isinstance(got, dict):
            return False, f"support_savings() returned {type(got).__name__}, not a dict"
        wrong = [k for k, v in want.items() if not _close(got.get(k), v)]
        if wrong:
            args = f"{t} tickets, {share:.0%} automated, ${manual}/manual reply, {tokens} tokens at ${price}/1K"
            return False, f"for {args}: " + ", ".join(f"{k}={got.get(k)!r} (expected {want[k]:,.2f})" for k in wrong)
    d = fn()
    assumed = float(getattr(ctx.module, "TOKENS_PER_TICKET", course.TOKENS_PER_TICKET) or 0)  # an assumption: yours may differ
    lesson = _want_savings(t0, share0, manual0, assumed, price0)
    if not isinstance(d, dict) or not _close(d.get("manual_cost"), lesson["manual_cost"]) or not _close(d.get("savings"), lesson["savings"]):
        return False, (f"with its defaults support_savings() should use the lesson's inputs ({t0:,} tickets, {share0:.0%}, "
                       f"${manual0:.2f}, ${price0}/1K)")
    return True, (f"lesson inputs: manual ${d['manual_cost']:,.2f}/day, API ${d['api_cost']:,.2f}, "
                  f"savings ${d['savings']:,.2f} (not the lesson's ~$3,740)")


# --------------------------------------------------------------------------- template 2: headlines


@_check("t2-model")
def t2_model(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "headline_request")
    info = _info(req)
    if base_id(info.id) not in FLAGSHIPS:
        return False, f"{req['model']} is not a flagship model: creative copy asks for one of {', '.join(sorted(FLAGSHIPS))}"
    return True, f"{req['model']} ({'reasoning' if info.reasoning else 'sampling'} model)"


def _headline_lever(ctx: Context, name: str, lo: float, hi: float, advice: str, fixed: str) -> tuple[bool, str]:
    """Template 2's sampling lever ``name`` set within [lo, hi] on a sampling model; left alone on a reasoning model."""
    req = _request(ctx, "headline_request")
    if _info(req).reasoning:
        _sampling_free(req, req["model"])
        return True, f"{req['model']} {fixed}"
    value = req.get(name)
    if not isinstance(value, (int, float)) or not lo <= value <= hi:
        return False, f"{name}={value!r}: {advice}"
    return True, f"{req['model']} at {name} {value}"


@_check("t2-temperature")
def t2_temperature(ctx: Context) -> tuple[bool, str]:
    return _headline_lever(ctx, "temperature", 1.0, 2.0, "set it explicitly to 1.0 or higher (the API allows up to 2.0)",
                           "samples at its fixed temperature 1; variety has to come from the prompt")


@_check("t2-top-p")
def t2_top_p(ctx: Context) -> tuple[bool, str]:
    return _headline_lever(ctx, "top_p", 0.8, 1.0, "set a high value such as 0.9 (0.8 to 1.0) so the word choice stays wide",
                           "accepts no top_p (it keeps the default 1)")


@_check("t2-output-limit")
def t2_output_limit(ctx: Context) -> tuple[bool, str]:
    cap = course.LESSON_HEADLINES["max_tokens"]
    return _output_limit(_request(ctx, "headline_request"), cap, 60, cap)


@_check("t2-system-message")
def t2_system_message(ctx: Context) -> tuple[bool, str]:
    text = _instructions(_request(ctx, "headline_request"))
    groups = {
        "creative persona (a copywriter)": [r"copywriter|copy ?writer|creative director|ad writer"],
        "brand voice (at least two of bold, data-driven, provocative, ...)":
            [r"\bbold", r"data-?driven", r"provocative", r"punchy", r"confident", r"challeng", r"irreverent", r"witty"],
    }
    missing = _missing(text, groups, {"brand voice (at least two of bold, data-driven, provocative, ...)": 2})
    if missing:
        return False, "the system message does not define: " + "; ".join(missing)
    return True, "persona and brand voice are defined"


def _headlines(ctx: Context) -> list[str]:
    got, _, _ = _run(ctx, "headlines")
    if not isinstance(got, list) or not all(isinstance(h, str) for h in got):
        raise _Fail(f"headlines() returned {type(got).__name__}, not a list of strings")
    return [h.strip() for h in got if h.strip()]


@_check("t2-distinct-headlines")
def t2_distinct(ctx: Context) -> tuple[bool, str]:
    heads = _headlines(ctx)
    if len(heads) < 5:
        return False, f"{len(heads)} headline(s): at least 5 are needed ({heads!r:.120})"
    long = [h for h in heads if len(h.split()) > MAX_HEADLINE_WORDS]
    if long:
        return False, f"not short and punchy (over {MAX_HEADLINE_WORDS} words): {long[0]!r:.100}"
    score, a, b = most_similar_pair(heads)
    if score >= MAX_SIMILARITY:
        return False, f"too alike (word overlap {score:.2f} >= {MAX_SIMILARITY}): {a!r:.60} / {b!r:.60}"
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


@_check("t2-cost")
def t2_cost(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("headline_cost")
    stated = (course.HEADLINES_NEEDED, course.TOKENS_PER_HEADLINE_REQUEST, course.LESSON_PRICE_T2, course.BUDGET_USD)
    for n, tokens, price, budget in [stated, (1_000, 250, 0.06, 10.0), (12, 80, 0.002, 0.01)]:
        got = fn(requests=n, tokens_per_request=tokens, price_per_1k=price, budget=budget)
        want = n * tokens / 1000 * price
        if not isinstance(got, dict) or not _close(got.get("cost"), want, 1e-6) or got.get("within_budget") is not (want <= budget):
            return False, (f"{n} requests x {tokens} tokens at ${price}/1K with a ${budget} budget: got {got!r:.120}, "
                           f"expected cost {want:.4f} and within_budget={want <= budget}")
    d = fn()
    n, tokens, price, budget = stated
    if not isinstance(d, dict) or not _close(d.get("cost"), n * tokens / 1000 * price, 1e-6):
        return False, f"with its defaults headline_cost() should use the lesson's inputs ({n} x {tokens} tokens at ${price}/1K)"
    return True, f"{n} requests cost ${d['cost']:.2f} of the ${budget:,.0f} budget"


# --------------------------------------------------------------------------- template 3: financial analysis


@_check("t3-model")
def t3_model(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "analysis_request", course.load_financials())
    info = _info(req)
    if info.reasoning:
        return True, f"{req['model']}: a reasoning model"
    if base_id(info.id) in FLAGSHIPS:
        return True, f"{req['model']}: a flagship sampling model (at temperature 0)"
    return False, f"{req['model']}: use a reasoning model (such as {REASONING}) or a flagship sampling model for exact arithmetic"


@_check("t3-zero-creativity")
def t3_zero_creativity(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "analysis_request", course.load_financials())
    if _info(req).reasoning:
        _sampling_free(req, req["model"])
        if req.get("reasoning_effort") == "minimal":
            return False, "reasoning_effort='minimal' skips most of the reasoning this arithmetic needs: use medium or high"
        return True, f"{req['model']} with reasoning_effort={_effort(req)!r} and no sampling parameters"
    t = req.get("temperature")
    if t != 0:
        return False, f"temperature={t!r}: set it to 0 on a sampling model"
    return True, f"{req['model']} at temperature 0"


@_check("t3-output-limit")
def t3_output_limit(ctx: Context) -> tuple[bool, str]:
    least = course.LESSON_ANALYSIS["max_tokens"]
    return _output_limit(_request(ctx, "analysis_request", course.load_financials()), least, least, None)


@_check("t3-system-message")
def t3_system_message(ctx: Context) -> tuple[bool, str]:
    req = _request(ctx, "analysis_request", course.load_financials())
    text = _instructions(req)
    fmt = req.get("response_format")
    structured = isinstance(fmt, dict) and str(fmt.get("type", "")).startswith("json")
    groups = {"methodical, shown work": [r"methodical|step[- ]by[- ]step|show (?:your|the) work|numbered steps|\bsteps?\b"],
              "a JSON result": [r"\bjson\b"]}
    missing = _missing(text, groups)
    if missing:
        return False, "the system message does not ask for: " + "; ".join(missing)
    extra = " and response_format enforces it" if structured else ""
    return True, f"asks for methodical, shown work and a JSON result{extra}"


def _analysis(ctx: Context) -> tuple[dict[str, Any], str, dict[str, Any]]:
    csv_text = course.load_financials()
    got, _, body = _run(ctx, "analyze", csv_text)
    if not isinstance(got, dict) or not isinstance(got.get("result"), dict):
        raise _Fail(f"analyze() should return {{'work': str, 'result': dict}}; got {got!r:.100}")
    return got, _content(body), expected_answer(csv_text)


def _names(items: Any) -> list[str]:
    out = []
    for item in items if isinstance(items, list) else []:
        name = item.get("category") or item.get("name") if isinstance(item, dict) else item
        out.append(" ".join(str(name).lower().replace("&", "and").split()))
    return out


@_check("t3-margin")
def t3_margin(ctx: Context) -> tuple[bool, str]:
    got, _, want = _analysis(ctx)
    value = got["result"].get("net_profit_margin_pct")
    target = want["net_profit_margin_pct"]
    if _close(value, target, 0.05):
        return True, f"net profit margin {value}% (computed from the data: {target:.2f}%)"
    if _close(value, target / 100, 0.0005):
        return False, f"net_profit_margin_pct={value} looks like a fraction; give a percentage ({target:.2f})"
    keys = ", ".join(sorted(got["result"]))
    return False, f"net_profit_margin_pct={value!r}, the data gives {target:.2f}% (result keys: {keys})"


@_check("t3-top-expenses")
def t3_top_expenses(ctx: Context) -> tuple[bool, str]:
    got, _, want = _analysis(ctx)
    names = _names(got["result"].get("top_expense_categories"))
    target = _names(want["top_expense_categories"])
    if names == target:
        return True, "top 3 expense categories: " + ", ".join(want["top_expense_categories"])
    return False, f"top_expense_categories={names!r}; largest first, the data gives {target!r}"


@_check("t3-steps")
def t3_steps(ctx: Context) -> tuple[bool, str]:
    got, _, want = _analysis(ctx)
    work = got.get("work")
    if not isinstance(work, str):
        return False, f"work is {type(work).__name__}, not the step-by-step text"
    steps = [line for line in work.splitlines() if line.strip()]
    numbers = _numbers(work)
    absent = [k for k in ("total_revenue", "total_expenses", "net_profit")
              if not any(math.isclose(n, want[k], rel_tol=1e-3) for n in numbers)]
    if len(steps) < 3 or absent:
        why = f"{len(steps)} step(s)" if len(steps) < 3 else "it never shows " + ", ".join(k.replace("_", " ") for k in absent)
        return False, f"the work is not shown step by step with its figures: {why}"
    return True, f"{len(steps)} steps showing revenue {want['total_revenue']:,.0f}, expenses {want['total_expenses']:,.0f}, net {want['net_profit']:,.0f}"


@_check("t3-factual")
def t3_factual(ctx: Context) -> tuple[bool, str]:
    got, _, _ = _analysis(ctx)
    text = str(got.get("work", "")) + "\n" + json.dumps(got["result"], ensure_ascii=False)
    words = speculative_words(text)
    if words:
        return False, "speculative language in the analysis: " + ", ".join(words)
    return True, "no speculative or hedging language"


@_check("t3-cost")
def t3_cost(ctx: Context) -> tuple[bool, str]:
    fn = ctx.attr("report_cost")
    stated = (course.REPORT_TOKENS, course.LESSON_PRICE_T3)
    for tokens, price in [stated, (40_000, 0.15), (700, 0.002)]:
        got = fn(report_tokens=tokens, price_per_1k=price)
        if not _close(got, tokens / 1000 * price, 1e-9):
            return False, f"report_cost({tokens} tokens, ${price}/1K) = {got!r}, expected {tokens / 1000 * price:.6f}"
    d = fn()
    tokens, price = stated
    if not _close(d, tokens / 1000 * price, 1e-9):
        return False, f"report_cost() with its defaults gives {d!r}: use the lesson's {tokens:,} tokens at ${price}/1K"
    return True, f"one {tokens:,}-token report: ${d:.3f} at the lesson's price"


# --------------------------------------------------------------------------- across templates

_REQUESTS = (("support_request", ()), ("headline_request", ()), ("analysis_request", (None,)))


@_check("api-accepts")
def api_accepts(ctx: Context) -> tuple[bool, str]:
    bad = []
    for name, args in _REQUESTS:
        req = _request(ctx, name, *(course.load_financials() if a is None else a for a in args))
        errors = api_errors(req)
        if errors:
            bad.append(f"{name}(): {errors[0].code} ({errors[0].message.split(';')[0]})")
    if bad:
        return False, "the real API would reject (400): " + " | ".join(bad)
    return True, "labkit.lint_request finds nothing the API would reject in the three requests"


@_check("sends-request")
def sends_request(ctx: Context) -> tuple[bool, str]:
    csv_text = course.load_financials()
    notes = []
    for send, build, args in (("support_reply", "support_request", ()), ("headlines", "headline_request", ()),
                              ("analyze", "analysis_request", (csv_text,))):
        result, transport, body = _run(ctx, send, *args)
        want = json.loads(json.dumps(_request(ctx, build, *args)))
        if len(transport.sent) != 1:
            return False, f"{send}() sent {len(transport.sent)} requests (expected exactly 1)"
        if transport.sent[0] != want:
            sent = transport.sent[0] if isinstance(transport.sent[0], dict) else {}
            diff = "; ".join(f"{k}: sent {sent.get(k, '<absent>')!r:.40}, {build}() gives {want.get(k, '<absent>')!r:.40}"
                             for k in sorted(set(sent) | set(want)) if sent.get(k) != want.get(k))
            return False, f"{send}() sent a different request from {build}(): {diff}"
        content = _content(body)
        if send == "support_reply" and result != content:
            return False, "support_reply() does not return the reply text as the API gave it"
        if send == "headlines" and (not isinstance(result, list) or not result or any(str(h).strip() not in content for h in result)):
            return False, "headlines() returns text that is not in the model's reply"
        if send == "analyze":
            parsed = _loads(content)
            if isinstance(parsed, dict) and isinstance(result, dict) and result.get("result") != parsed:
                return False, "analyze() returns a result that differs from the JSON the model sent"
        notes.append(f"{send}: {transport.served[0].tier}")
    return True, "each sends its request once and returns what came back (" + ", ".join(notes) + ")"
