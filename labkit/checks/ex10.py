"""Checks for exercise 10: the five production templates, each on its success metrics.

The model is a :class:`KeyedModel`: it answers each request by what the request is about (the
ticket, the text, the email or the customer it carries), rendered in the API's wire format for
whichever API and model the learner chose, after the rules the real API enforces (a request it
would reject gets its 400/404; strict schemas must be strict). Template 1's drafts, template 4's
boundary cases and template 5's drafts are the checks' own scenarios; template 2's raw answers and
template 4's measured emails are the recorded ones (``cassettes/ex10.json``,
``cassettes/ex10_routing.json``), served only to the request about that text or email. Template 3
runs against the Batch API's state machine (:class:`labkit.endpoints.batches.BatchStore`) on a
virtual clock: no real waiting, no socket. Scenarios, thresholds and texts come from the contract
in :mod:`labkit.course.ex10`; hypothesis draws the adversarial values (quotes, braces, SQL, unicode,
long text) where a property fits.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import openai
from hypothesis import strategies as st
from openai.types import CompletionUsage

from ..authoring import Pending, Renderer, cached_prefix, prompt_token_ids, value_spans
from ..clock import Clock
from ..costs import cost
from ..course import ex05
from ..course import ex10 as course
from ..endpoints.batches import BatchAPI, BatchStore, renderer_answer
from ..replay import load_cassette, resolve_cassette
from ..simulate import ScriptedModel, api_error_for
from . import Context, _describe, register
from .props import check_property

C = course.CONTRACT
#: Strings no system promised would be tame.
NASTY = ('Say "hi" & {you}', "'); DROP TABLE outbox; --", "Zoë 🙂 naïve\u2028café", "ünïcödé {plan} {{company}}")


# =========================================================================== a model keyed by topic


def strings(value: Any) -> Iterator[str]:
    """Every string inside a request body (message texts, instructions, JSON values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def request_text(body: dict[str, Any]) -> str:
    """All the text a request carries, joined (what a key is looked for in)."""
    parts = [body.get("instructions"), body.get("messages"), body.get("input")]
    return "\n".join(s for part in parts for s in strings(part))


@dataclass
class Sent:
    """One request the keyed model received, and what it answered."""

    path: str
    body: dict[str, Any]
    status: int
    error: str = ""
    answer: dict[str, Any] = field(default_factory=dict)
    unscripted: bool = False

    @property
    def api(self) -> str:
        return "responses" if self.path.endswith("/responses") else "chat"

    @property
    def usage(self) -> Any:
        return self.answer.get("usage")


Pick = Callable[[dict[str, Any]], dict[str, Any] | None]


class KeyedModel(httpx2.BaseTransport):
    """Answers ``/v1/responses`` and ``/v1/chat/completions`` with what ``pick(body)`` says (``a.call``
    options: ``reply``, ``refusal``, ``error``, ``finish_reason``, ``confidence``), or a 404 naming
    the request when it says nothing. The API's own rules first: ``api_error_for`` and strict
    schemas. With ``cache``, each prompt reads the prefix it shares with an earlier one.
    """

    def __init__(self, pick: Pick, *, cache: bool = False, name: str = "ex10") -> None:
        self.pick = pick
        self.cache = cache
        self.name = name
        self.sent: list[Sent] = []
        self._prompts: dict[str, list[list[int]]] = {}

    def client(self) -> openai.OpenAI:
        from ..modes import attach_transport

        made = openai.OpenAI(api_key="keyed-no-key", base_url="https://api.openai.com/v1", max_retries=0,
                             http_client=httpx2.Client(transport=self))
        attach_transport(made, self)
        return made

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        path = request.url.path
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        sent = Sent(path, body if isinstance(body, dict) else {}, 0)
        self.sent.append(sent)
        status, payload = self._respond(sent, raw)
        sent.status = status
        try:
            sent.answer = json.loads(payload)
        except ValueError:
            sent.answer = {}
        if status != 200:
            sent.error = str((sent.answer.get("error") or {}).get("message", ""))
        return httpx2.Response(status, headers={"content-type": "application/json", "x-request-id": f"req_keyed_{len(self.sent)}"},
                               content=payload.encode(), request=request)

    def _respond(self, sent: Sent, raw: bytes) -> tuple[int, str]:
        body = sent.body
        seed = hashlib.sha256(f"{self.name}|{len(self.sent)}".encode() + raw).hexdigest()[:32]
        if not sent.path.endswith(("/responses", "/chat/completions")):
            return _error(404, f"this check's model answers /v1/responses and /v1/chat/completions, not {sent.path}")
        rejected = api_error_for(body)
        if rejected:
            return _error(int(rejected["status"]), str(rejected["message"]))
        problem = ScriptedModel._schema_problem(body)
        if problem:
            return _error(400, problem)
        opts = self.pick(body)
        if opts is None:
            sent.unscripted = True
            return _error(404, "the check has no answer for this request: it does not carry what the scenario asks about")
        opts = dict(opts)
        pending = Pending(reply=opts.pop("reply", None), error=opts.pop("error", None), **opts)
        if self.cache and pending.error is None:
            model = str(body.get("model", ""))
            ids = prompt_token_ids(body, model)
            pending.cache, pending.cached_tokens = "auto", cached_prefix(ids, self._prompts.get(model, []))
            self._prompts.setdefault(model, []).append(ids)
        status, payload, _headers = Renderer().render(sent.path, body, raw, pending, seed)
        if status == 200 and pending.finish_reason == "length" and sent.api == "responses":
            payload = json.dumps({**json.loads(payload), "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}})
        return status, payload

    @property
    def answered(self) -> list[Sent]:
        return [s for s in self.sent if s.status == 200]

    def problem(self) -> str | None:
        """The first request the API (or the scenario) could not answer, said plainly."""
        bad = next((s for s in self.sent if s.status != 200), None)
        if bad is None:
            return None
        return f"request {self.sent.index(bad) + 1} got {bad.status}: {bad.error[:220]}"


def _error(status: int, message: str) -> tuple[int, str]:
    return status, json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})


def by_key(pairs: list[tuple[str, dict[str, Any]]]) -> Pick:
    """Answer the first pair whose key the request's text contains."""

    def pick(body: dict[str, Any]) -> dict[str, Any] | None:
        text = request_text(body)
        return next((opts for key, opts in pairs if key in text), None)

    return pick


def output_format(body: dict[str, Any]) -> dict[str, Any]:
    """The output format a request asks for, in either API: {type, strict, name, schema}."""
    fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
    if isinstance(fmt.get("json_schema"), dict):
        return {"type": fmt.get("type"), **fmt["json_schema"]}
    return dict(fmt)


def _raised(err: BaseException) -> str:
    """The exception in one line, worded as every exercise words it ("not implemented yet: ..." for a TODO)."""
    return _describe(err)


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


# =========================================================================== 1. support auto-reply


def support_draft(answer: str, *, confidence: float = 0.92, needs_human: bool = False, priority: str = "medium",
                  sources: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"answer": answer, "confidence": confidence, "needs_human": needs_human, "priority": priority,
            "suggested_actions": [], "sources": list(sources)}


#: A customer whose record is full of awkward characters.
ODD_CUSTOMER = course.Customer(
    id="cus-odd'; --", name="Zoë O'Brien-Łukasz", first_name="Zoë", email="zoe@o-brien.example", company='O\'Brien & "Sons" {plan}',
    industry="events", plan="Team", seats=7, renewal_date="2027-05-05", top_feature="Gantt charts",
    past_issues=[course.Issue(date="2026-06-01", summary='Export "stuck" at 99% {twice}; fixed by the 2026-06 release')])


@dataclass(frozen=True)
class SupportCase:
    """A routing scenario: a ticket, the draft the model returns, where it must go."""

    name: str
    text: str
    draft: dict[str, Any] | None  # None: the model refuses
    route: str
    customer: course.Customer = field(default_factory=lambda: course.CUSTOMER["cus-ben"])


HOLD = "the second charge is a temporary authorisation hold; the bank releases it within 3 business days"


def support_cases() -> list[SupportCase]:
    """Every rule of the contract, its boundary, and adversarial tickets (from CONTRACT)."""
    ok = support_draft(f"Hi, {HOLD}.", sources=("double-charge",))
    cases = [
        SupportCase("a grounded, confident draft", "I see two charges for one invoice, why?", ok, C.route_sent),
        SupportCase(f"confidence exactly {C.min_confidence}", "Two charges on my card for the same invoice?",
                    {**ok, "confidence": C.min_confidence}, C.route_sent),
        SupportCase(f"confidence {C.min_confidence - 0.01:.2f}, just below the minimum", "Was my card charged twice?",
                    {**ok, "confidence": round(C.min_confidence - 0.01, 2)}, C.route_review),
        SupportCase("needs_human set by the model", "Double charge again this month!", {**ok, "needs_human": True}, C.route_review),
        SupportCase("a refund asked for in the ticket", "Charged twice. I want a REFUND of the second charge.", ok, C.route_review),
        SupportCase("a refund asked for in German", "Zweimal abgebucht! Ich verlange eine Rückerstattung.", ok, C.route_review),
        SupportCase("legal words in the ticket", "Our lawyer asks why we were charged twice.", ok, C.route_review),
        SupportCase("legal words in the answer only", "Two charges on one invoice?",
                    support_draft(f"Hi, {HOLD}; our legal team has confirmed this.", sources=("double-charge",)), C.route_review),
        SupportCase("a draft citing the privacy article", "Can you tell me about the double charge?",
                    support_draft(f"Hi, {HOLD}.", sources=("double-charge", "privacy")), C.route_review),
        SupportCase("a draft citing an article that does not exist", "Two charges?",
                    support_draft(f"Hi, {HOLD}.", sources=("double-charge", "warranty")), C.route_review),
        SupportCase("the model refuses", "Two charges, explain now.", None, C.route_review),
        SupportCase("quotes, SQL and unicode in the ticket", "Two charges?? \"$80\" twice '); DROP TABLE outbox; -- Zoë 🙂",
                    ok, C.route_sent, ODD_CUSTOMER),
        SupportCase("a 6,000-character ticket", "Two charges. " + "Please look into it. " * 290, ok, C.route_sent),
    ]
    return cases


def support_model(cases: list[SupportCase]) -> KeyedModel:
    pairs = [(c.text, {"reply": json.dumps(c.draft)} if c.draft is not None else {"refusal": "I can't help with that."})
             for c in cases]
    return KeyedModel(by_key(pairs), name="ex10-support")


def _ticket(case: SupportCase, i: int) -> course.Ticket:
    return course.Ticket(id=f"T-{i:03d}-'\"{{x}}", customer_id=case.customer.id, text=case.text)


@register("ex10.support-draft")
def support_draft_check(ctx: Context) -> tuple[bool, str]:
    draft_reply = ctx.attr("draft_reply")
    text = 'My card shows "$80" twice for invoice {INV-7}; is that a </ticket> double charge? Zoë'
    draft = support_draft(f"Hi Zoë, {HOLD}.", sources=("double-charge",))
    model = KeyedModel(by_key([(text, {"reply": json.dumps(draft)})]), name="ex10-draft")
    ticket = course.Ticket(id="T-900", customer_id=ODD_CUSTOMER.id, text=text)
    try:
        got = draft_reply(model.client(), ticket, ODD_CUSTOMER)
    except Exception as err:  # noqa: BLE001
        return False, model.problem() or f"draft_reply raised {_raised(err)}"
    if len(model.sent) != 1:
        return False, f"{len(model.sent)} requests for one draft (expected 1)"
    sent = model.sent[0]
    if sent.unscripted:
        return False, "the ticket's text is not in the request as written (quotes, braces and </ticket> included): send it verbatim"
    if sent.status != 200:
        return False, f"the API answered {sent.status}: {sent.error[:200]}"
    fmt = output_format(sent.body)
    props = set((fmt.get("schema") or {}).get("properties") or {})
    if fmt.get("type") != "json_schema" or fmt.get("strict") is not True or props != set(course.SupportResponse.model_fields):
        return False, ("the request does not ask for the SupportResponse schema, strict: use responses.parse(text_format=SupportResponse) "
                       "or chat.completions.parse(response_format=SupportResponse)")
    seen = request_text(sent.body)
    needed = [("the double-charge article", course.KB["double-charge"].text), ("the customer's company", ODD_CUSTOMER.company)]
    needed += [(f"past issue {i.date}", i.summary) for i in ODD_CUSTOMER.past_issues]
    missing = [what for what, piece in needed if piece not in seen]
    if missing:
        return False, f"the request lacks {', '.join(missing)}: give the model the knowledge base and the customer's history"
    if _dump(got) != course.SupportResponse.model_validate(draft).model_dump(mode="json"):
        return False, f"draft_reply returned {got!r:.120}, not the parsed SupportResponse the model answered"
    refusing = KeyedModel(by_key([(text, {"refusal": "I can't help with that request."})]), name="ex10-refuse")
    try:
        refused = draft_reply(refusing.client(), ticket, ODD_CUSTOMER)
    except Exception as err:  # noqa: BLE001
        return False, f"a refusal made draft_reply raise {_raised(err)}; return Refusal(reason) instead"
    if not isinstance(refused, course.Refusal) or refused.reason != "I can't help with that request.":
        return False, f"a refusal gave {refused!r:.100}: return Refusal(the model's refusal text)"
    return True, "one strict SupportResponse request with the knowledge base, the customer's history and the ticket verbatim; a refusal as Refusal"


def run_support(module: ModuleType, cases: list[SupportCase]) -> list[tuple[SupportCase, Any, course.SupportDesk, str]]:
    """Each case through handle_ticket on a fresh desk: (case, the route returned or the error, the desk, the model's problem)."""
    out = []
    handle = module.handle_ticket
    for i, case in enumerate(cases):
        model = support_model([case])
        desk = course.SupportDesk(clock=Clock(now=1_000.0))
        try:
            route: Any = handle(model.client(), desk, _ticket(case, i), case.customer)
        except Exception as err:  # noqa: BLE001
            route = err
        out.append((case, route, desk, model.problem() or ""))
    return out


@register("ex10.support-routing")
def support_routing(ctx: Context) -> tuple[bool, str]:
    ctx.attr("handle_ticket")
    assert ctx.module is not None
    review = ctx.attr("review_reasons")
    ok = course.SupportResponse.model_validate(support_draft(f"Hi, {HOLD}.", sources=("double-charge",)))
    ben = course.CUSTOMER["cus-ben"]
    for term in C.sensitive_terms:
        ticket = course.Ticket(id="T-term", customer_id=ben.id, text=f"About the double charge: {term.upper()}, please.")
        if not review(ticket, ben, ok):
            return False, f"a ticket saying {term.upper()!r} (a sensitive term of the contract) would be sent without review"
    cases = support_cases()
    for case, route, desk, problem in run_support(ctx.module, cases):
        if isinstance(route, BaseException):
            return False, f"{case.name}: handle_ticket raised {_raised(route)}" + (f" ({problem})" if problem else "")
        sent, held = desk.outbox(), desk.queue()
        if len(sent) + len(held) != 1:
            return False, f"{case.name}: {len(sent)} sent and {len(held)} held for one ticket (expected exactly one of them)"
        where = C.route_sent if sent else C.route_review
        if where != case.route:
            return False, f"{case.name}: the draft was {'sent to the customer' if sent else 'held for review'}; the contract {'sends it' if case.route == C.route_sent else 'holds it for a person'}"
        if route != where:
            return False, f"{case.name}: handle_ticket returned {route!r}, but the desk shows {where!r}"
        if held and not held[0][1]:
            return False, f"{case.name}: held with no reasons; say why a person must look at it"
    return True, f"{len(cases)} tickets routed as the contract says (confidence at and below {C.min_confidence}, needs_human, refund and legal words in three languages, policy and unknown articles, a refusal, adversarial tickets)"


# --------------------------------------------------------------------------- what a sent reply may claim


#: Claims an answer may make about the double charge (the article, the customer's record, the ticket).
SUPPORTED = ("within 3 business days", "an $80 charge")
#: Claims no article the draft cites states.
UNSUPPORTED = ("within 24 hours", "within 5 business days", "a $20 credit note", "a 10% discount", "free of charge",
               "a replacement", "$15 off", "in 2 weeks")


@register("ex10.kb-grounded")
def kb_grounded(ctx: Context) -> tuple[bool, str]:
    review = ctx.attr("review_reasons")
    customer = course.CUSTOMER["cus-ben"]
    ticket = course.Ticket(id="T-950", customer_id=customer.id, text="Why is there an $80 charge twice?")

    def test(picked: list[str], nasty: str) -> None:
        answer = f"Hi {nasty}, about your card: " + "; ".join(picked) + "."
        draft = course.SupportResponse.model_validate(support_draft(answer, sources=("double-charge",)))
        stated = course.claims(course.KB["double-charge"].text) | course.claims(course.history_text(customer)) | course.claims(ticket.text)
        grounded = course.claims(answer) <= stated
        reasons = review(ticket, customer, draft)
        if grounded and reasons:
            raise AssertionError(f"a draft whose claims the cited article states was held: {reasons!r:.120}")
        if not grounded and not reasons:
            unsupported = sorted(course.claims(answer) - stated)
            raise AssertionError(f"a draft claiming {', '.join(unsupported)} (no cited article says so) would be sent")

    ok, detail = check_property(
        test, max_examples=12,
        picked=st.lists(st.sampled_from(SUPPORTED + UNSUPPORTED), min_size=1, max_size=3, unique=True),
        nasty=st.sampled_from(("Ben", *NASTY)))
    if not ok:
        return False, detail
    cases = [SupportCase(f"a draft claiming {claim!r}", f"Second charge question #{i}",
                         support_draft(f"Hi, {HOLD}; we will also settle it {claim}.", sources=("double-charge",)), C.route_review)
             for i, claim in enumerate(UNSUPPORTED[:3])]
    assert ctx.module is not None
    for case, route, desk, problem in run_support(ctx.module, cases):
        stated = course.claims(course.KB["double-charge"].text) | course.claims(case.text)
        for _ticket_id, answer in desk.outbox():
            extra = sorted(course.claims(answer) - stated - course.claims(course.history_text(case.customer)))
            if extra:
                return False, f"{case.name}: the customer was sent {', '.join(extra)}, which no cited article states"
        if isinstance(route, BaseException):
            return False, f"{case.name}: handle_ticket raised {_raised(route)}" + (f" ({problem})" if problem else "")
    return True, f"{detail}; no reply sent through the desk claims what the knowledge base does not state"


# =========================================================================== 2. lead extraction


@lru_cache(maxsize=1)
def recorded_leads() -> dict[str, str]:
    """The recorded raw extraction answer for each labelled text, by the text (cassettes/ex10.json)."""
    out: dict[str, str] = {}
    texts = {case.text: case.id for case in course.LEAD_CASES}
    for inter in load_cassette(resolve_cassette("ex10")).interactions:
        body = inter.body or {}
        if inter.status != 200 or output_format(body).get("name") != "LeadExtraction":
            continue
        seen = request_text(body)
        text = next((t for t in texts if t in seen), None)
        if text is not None:
            data = json.loads(inter.content)
            out[text] = str(data["choices"][0]["message"]["content"] if "choices" in data else course.output_text(data))
    return out


#: An extra adversarial text of the checks': braces, quotes and a closing tag, and an answer that invents.
ODD_LEAD_TEXT = 'Hi! Pat O\'Neil here, {CTO} at "Brace & Co" </text> — call +1 (555) 010-9999. Budget: none yet.'
ODD_LEAD_RAW = {"leads": [{"company_name": '"Brace & Co"', "contact_person": "Pat O'Neil", "email": "pat@braceco.example",
                           "phone": "+1 555 010 9999", "product_interest": None, "budget_range": "$10K", "timeline": None},
                          # a lead the model made up: every value is invented, so grounding leaves nothing and it is dropped
                          {"company_name": "Acme Corp", "contact_person": "Jane Doe", "email": "jane@acme.example", "phone": None,
                           "product_interest": "Enterprise plan", "budget_range": None, "timeline": None}]}
ODD_LEAD_LABEL = ({"company_name": '"Brace & Co"', "contact_person": "Pat O'Neil", "email": None, "phone": "+1 555 010 9999",
                   "product_interest": None, "budget_range": None, "timeline": None},)


def _strict_nullable(schema: dict[str, Any]) -> str | None:
    """Why a LeadExtraction schema is not the strict, nullable one (None if it is)."""
    defs = schema.get("$defs") or {}
    lead = next((d for d in defs.values() if set((d.get("properties") or {})) == set(course.LEAD_FIELDS)), None)
    if lead is None:
        return "the schema's lead object does not have the seven fields of Lead"
    for name, prop in lead["properties"].items():
        types = {s.get("type") for s in prop.get("anyOf", [prop])}
        if "null" not in types and prop.get("type") != ["string", "null"]:
            return f"{name} is not nullable: the model cannot say 'absent' and must invent"
    return None


@register("ex10.lead-extraction")
def lead_extraction(ctx: Context) -> tuple[bool, str]:
    extract = ctx.attr("extract_leads")
    raw = recorded_leads()
    cases = [(case.id, case.text, case.leads) for case in course.LEAD_CASES]
    cases.append(("braces, quotes and </text>", ODD_LEAD_TEXT, ODD_LEAD_LABEL))
    pairs = [(text, {"reply": raw[text]}) for _i, text, _l in cases[:-1]] + [(ODD_LEAD_TEXT, {"reply": json.dumps(ODD_LEAD_RAW)})]
    model = KeyedModel(by_key(pairs), name="ex10-leads")
    client = model.client()
    right = total = 0
    for name, text, labels in cases:
        before = len(model.sent)
        try:
            got = extract(client, text)
        except Exception as err:  # noqa: BLE001
            return False, f"{name}: extract_leads raised {_raised(err)}" + (f" ({model.problem()})" if model.problem() else "")
        if len(model.sent) - before != 1:
            return False, f"{name}: {len(model.sent) - before} requests for one text (expected 1)"
        sent = model.sent[-1]
        if sent.unscripted:
            return False, f"{name}: the text is not in the request as written; send it verbatim"
        fmt = output_format(sent.body)
        if fmt.get("type") != "json_schema" or fmt.get("strict") is not True:
            return False, f"{name}: the request is not strict Structured Outputs: parse with response_format/text_format=LeadExtraction"
        why = _strict_nullable(fmt.get("schema") or {})
        if why:
            return False, f"{name}: {why}"
        leads = [_dump(lead) for lead in got or []]
        if len(leads) != len(labels):
            return False, f"{name}: {len(leads)} lead(s) returned, the text has {len(labels)}"
        for lead in leads:
            for field_name, value in lead.items():
                if value is not None and not course.appears_in(str(value), text, field_name):
                    return False, f"{name}: {field_name}={value!r} is not in the text: a value the text does not state must be null"
        for lead, label in zip(leads, labels):
            for field_name in course.LEAD_FIELDS:
                total += 1
                want, have = label.get(field_name), lead.get(field_name)
                right += (want is None and have is None) or (want is not None and have is not None
                                                             and course.normalize(str(want)) == course.normalize(str(have)))
    refused = KeyedModel(by_key([(ODD_LEAD_TEXT, {"refusal": "I can't help with that."})]), name="ex10-lead-refusal")
    try:
        nothing = extract(refused.client(), ODD_LEAD_TEXT)
    except Exception as err:  # noqa: BLE001
        return False, f"a refusal made extract_leads raise {_raised(err)}; a refusal is no leads: return []"
    if list(nothing or []) != []:
        return False, f"a refusal gave {nothing!r:.80}; it should be no leads ([])"
    accuracy = right / total if total else 0.0
    if accuracy < 0.9:
        return False, f"field accuracy {accuracy:.0%} on the labelled set (at least 90% expected)"
    return True, f"{len(cases)} texts (two companies, a signature without a name, German, no lead, braces): no invented value, field accuracy {accuracy:.0%}; a refusal is no leads"


@register("ex10.lead-grounding")
def lead_grounding(ctx: Context) -> tuple[bool, str]:
    ground = ctx.attr("ground_lead")
    words = ["Acme", "Zoë Brandt", "zoe@acme.example", "Q3 2027", "$5K", "Kanban boards", "O'Neil & Co", "{team}", "日本語"]

    def test(present: list[str], absent: list[str], phone: str, spaced: bool, case: bool) -> None:
        text = " · ".join(present) + f" — tel. {phone}"
        values = [*(p.upper() if case else p for p in present), *absent]
        fields = list(course.LEAD_FIELDS)
        fields.remove("phone")
        lead_values: dict[str, str | None] = dict.fromkeys(course.LEAD_FIELDS)
        for name, given in zip(fields, values):
            lead_values[name] = given
        digits = "".join(c for c in phone if c.isdigit())
        lead_values["phone"] = " ".join(digits[i:i + 3] for i in range(0, len(digits), 3)) if spaced else phone
        lead = course.Lead(**lead_values)
        before = lead.model_dump()
        got = _dump(ground(lead, text))
        if lead.model_dump() != before:
            raise AssertionError("ground_lead changed the lead it was given; return a new one")
        for name, value in lead_values.items():
            keep = value is not None and course.appears_in(value, text, name)
            if keep and got.get(name) != value:
                raise AssertionError(f"{name}={value!r} is in the text but became {got.get(name)!r}")
            if not keep and got.get(name) is not None:
                raise AssertionError(f"{name}={value!r} is not in the text but was kept")

    ok, detail = check_property(
        test, max_examples=20,
        present=st.lists(st.sampled_from(words), max_size=3, unique=True),
        absent=st.lists(st.sampled_from(["Globex", "ceo@globex.example", "next spring", "€9,000", "Sam"]), max_size=3, unique=True),
        phone=st.sampled_from(["+49 30 901820 77", "555-0142", "(020) 7946-0958"]), spaced=st.booleans(), case=st.booleans())
    return ok, detail if not ok else f"ground_lead keeps what the text states (any case, phone spacing) and nulls the rest: {detail}"


# =========================================================================== 3. content at scale


#: Products with awkward names and facts (quotes, a newline, unicode, braces, 3,000 characters).
ODD_PRODUCTS = (
    course.Product("QX-001", 'The "Storm" shell', "waterproof; seams taped\nsecond line of facts"),
    course.Product("QX-002", "Zoë's ünïcödé tarp 🙂", "1.1 kg, {braces} and \\backslashes\\"),
    course.Product("QX-003", "Long facts pole", "carbon " * 400),
)


def scripted_text(custom_id: str) -> str:
    return f"Description of {custom_id}: light, tough and ready for the trail."


@dataclass
class BatchRun:
    """A learner's run_content_batch against a store: what it returned and what the store saw."""

    store: BatchStore
    api: BatchAPI
    clock: Clock
    run: Any = None
    raised: BaseException | None = None

    def uploads(self) -> list[Any]:
        return [f for f in self.store.files.values() if f.purpose != "batch_output"]


def batch_store(replies: Callable[[str, dict[str, Any]], Any] | None = None, **kw: Any) -> tuple[BatchStore, BatchAPI, Clock]:
    clock = Clock(now=1_800_000_000.0)
    store = BatchStore(clock, renderer_answer(replies or (lambda cid, body: scripted_text(cid)), seed="ex10-check"), **kw)
    return store, BatchAPI(store), clock


def run_batch(module: ModuleType, products: list[course.Product], replies: Callable[[str, dict[str, Any]], Any] | None = None,
              *, poll_seconds: float | None = None, **kw: Any) -> BatchRun:
    store, api, clock = batch_store(replies, **kw)
    out = BatchRun(store, api, clock)
    extra = {} if poll_seconds is None else {"poll_seconds": poll_seconds}
    with tempfile.TemporaryDirectory() as folder:
        try:
            out.run = module.run_content_batch(api.client(), list(products), Path(folder), sleep=clock.sleep, **extra)
        except Exception as err:  # noqa: BLE001
            out.raised = err
    return out


@register("ex10.batch-file")
def batch_file(ctx: Context) -> tuple[bool, str]:
    write = ctx.attr("write_batch_file")
    products = [*course.PRODUCTS[:3], *ODD_PRODUCTS]
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = Path(write(products, Path(folder) / "in.jsonl"))
            data = path.read_bytes()
        except Exception as err:  # noqa: BLE001
            return False, f"write_batch_file raised {_raised(err)}"
    from ..endpoints.batches import validate_lines

    lines, errors = validate_lines(data, C.batch_endpoint)
    if errors:
        e = errors[0]
        return False, f"the Batch API would reject line {e['line']}: {e['code']} ({e['message'][:120]})"
    if len(data.decode("utf-8").rstrip("\n").split("\n")) != len(products):
        return False, f"{len(data.splitlines())} lines for {len(products)} products: one JSON object per line, separated by \\n"
    ids = [line["custom_id"] for line in lines]
    if ids != [p.sku for p in products]:
        return False, f"custom_ids {ids[:3]}...: use each product's sku, so answers can be matched back to products"
    for product, line in zip(products, lines):
        body = line["body"]
        rejected = api_error_for(body)
        if rejected:
            return False, f"{product.sku}: the API would reject the body: {str(rejected['message'])[:140]}"
        limit = body.get("max_output_tokens")
        if not isinstance(limit, int) or limit > course.CONTENT_MAX_OUTPUT:
            return False, f"{product.sku}: max_output_tokens is {limit!r}; each item's budget is at most {course.CONTENT_MAX_OUTPUT} tokens"
        if product.facts not in request_text(body) or product.name not in request_text(body):
            return False, f"{product.sku}: the product's name and facts are not in its request as written"
    return True, f"{len(products)} valid lines (quotes, a newline, unicode, 3,000 characters): custom_id = sku, {C.batch_endpoint}, a budget of at most {course.CONTENT_MAX_OUTPUT} tokens"


@register("ex10.batch-lifecycle")
def batch_lifecycle(ctx: Context) -> tuple[bool, str]:
    ctx.attr("run_content_batch")
    assert ctx.module is not None
    products = list(course.PRODUCTS[:6])
    got = run_batch(ctx.module, products)
    if got.raised is not None:
        return False, f"run_content_batch raised {_raised(got.raised)}"
    creates = [r for r in got.api.requests if r == ("POST", "/v1/batches")]
    if len(got.uploads()) != 1 or got.uploads()[0].purpose != "batch":
        return False, f"{len(got.uploads())} file(s) uploaded: upload the JSONL once, with purpose 'batch'"
    if len(creates) != 1:
        return False, f"{len(creates)} batches created for one round with no failures (expected 1)"
    batch = next(iter(got.store.batches.values()))
    if batch.endpoint != C.batch_endpoint or batch.completion_window != C.completion_window:
        return False, f"the batch runs {batch.endpoint!r} in a {batch.completion_window!r} window; the contract says {C.batch_endpoint!r}, '24h'"
    polls = [r for r in got.api.requests if r[0] == "GET" and r[1].startswith("/v1/batches/")]
    if not got.clock.sleeps:
        return False, "the batch was read before it finished, or without waiting: poll, and call the sleep you are given between polls"
    if any(s <= 0 for s in got.clock.sleeps) or len(polls) != len(got.clock.sleeps) + 1:
        return False, f"{len(polls)} polls and {len(got.clock.sleeps)} waits: wait (sleep) once between two polls, and stop at a terminal status"
    texts = getattr(got.run, "texts", None)
    want = {p.sku: scripted_text(p.sku) for p in products}
    if texts != want:
        wrong = next((sku for sku in want if (texts or {}).get(sku) != want[sku]), "?")
        return False, f"{wrong}: got {(texts or {}).get(wrong)!r:.70}; the output file's lines come in any order: match them by custom_id"
    if len(getattr(got.run, "usages", []) or []) != len(products):
        return False, f"run.usages holds {len(getattr(got.run, 'usages', []) or [])} usages for {len(products)} answers"
    if getattr(got.run, "failures", None):
        return False, f"failures reported where every request succeeded: {got.run.failures!r:.100}"
    return True, f"uploaded once, one batch, {len(polls)} polls with a wait between each, {len(products)} answers matched by custom_id (the output file is shuffled)"


def flaky_replies(plan: dict[str, list[Any]]) -> Callable[[str, dict[str, Any]], Any]:
    """Replies by custom_id and attempt: an int is that HTTP error status, anything else the product's text."""
    seen: dict[str, int] = {}

    def replies(custom_id: str, body: dict[str, Any]) -> Any:
        k = seen[custom_id] = seen.get(custom_id, 0) + 1
        steps = plan.get(custom_id, [])
        step = steps[min(k, len(steps)) - 1] if steps else "ok"
        if isinstance(step, int):
            return {"error": {"status": step, "message": f"scripted {step}", "type": "server_error" if step >= 500 else "invalid_request_error"}}
        return scripted_text(custom_id)

    return replies


def _cut(answer: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an answer whose reply was cut as incomplete (what the Responses API returns at max_output_tokens)."""

    def wrapped(custom_id: str, url: str, body: dict[str, Any]) -> Any:
        status, payload, request_id = answer(custom_id, url, body)
        if status == 200 and payload.get("output") and custom_id.endswith("cut"):
            payload["status"] = "incomplete"
            payload["incomplete_details"] = {"reason": "max_output_tokens"}
        return status, payload, request_id

    return wrapped


@register("ex10.batch-retry")
def batch_retry(ctx: Context) -> tuple[bool, str]:
    ctx.attr("run_content_batch")
    assert ctx.module is not None
    p = [course.Product(f"RT-{i}", f"Item {i}", f"fact {i}") for i in range(10)]
    cut = course.Product("RT-cut", "Item cut", "long facts")
    final_5xx = next(code for code in range(500, 600) if code not in C.retry_statuses)  # a server error the contract does not retry
    plan: dict[str, list[Any]] = {"RT-0": [502, "ok"], "RT-1": [429, 503, "ok"], "RT-2": [400], "RT-3": [404], "RT-4": [500] * 4,
                                  "RT-6": [408, "ok"], "RT-7": [409, "ok"], "RT-8": [422], "RT-9": [final_5xx, "ok"]}
    store, api, clock = batch_store(flaky_replies(plan))
    store.answer = _cut(store.answer)
    with tempfile.TemporaryDirectory() as folder:
        try:
            run = ctx.module.run_content_batch(api.client(), [*p, cut], Path(folder), sleep=clock.sleep)
        except Exception as err:  # noqa: BLE001
            return False, f"mixed failures: run_content_batch raised {_raised(err)}"
    texts, failures = dict(getattr(run, "texts", {}) or {}), dict(getattr(run, "failures", {}) or {})
    batches = len(store.batches)
    if batches != C.max_batches:
        return False, f"{batches} batches for failures that need {C.max_batches}: RT-1 fails twice (429, 503) then succeeds, RT-4 always fails with 500 (stop at {C.max_batches} batches)"
    expect_ok, expect_failed = {"RT-0", "RT-1", "RT-5", "RT-6", "RT-7"}, {"RT-2", "RT-3", "RT-4", "RT-8", "RT-9", "RT-cut"}
    if set(texts) != expect_ok:
        return False, f"texts for {sorted(texts)}; expected {sorted(expect_ok)} (after a 502; a 429 then a 503; at once; a 408; a 409; RT-9's {final_5xx} is final, not sent again)"
    if set(failures) != expect_failed:
        return False, f"final failures {sorted(failures)}; expected {sorted(expect_failed)} (400, 404, 422 and {final_5xx} are final: only {sorted(C.retry_statuses)} go again; RT-4 failed {C.max_batches} times, RT-cut ran out of its budget)"
    usages = list(getattr(run, "usages", []) or [])
    if len(usages) != len(expect_ok) + 1:
        return False, (f"run.usages has {len(usages)} entries for {len(expect_ok) + 1} answers ({len(expect_ok)} complete, RT-cut cut off "
                       "at its budget): every answer's usage is billed, a cut-off one included")
    second = [line["custom_id"] for line in list(store.batches.values())[1].lines]
    if sorted(second) != ["RT-0", "RT-1", "RT-4", "RT-6", "RT-7"]:
        return False, f"the second batch sent {sorted(second)}; only retryable failures go again ({sorted(C.retry_statuses)}), never 400/404/422/{final_5xx} or a cut-off answer"
    nothing = run_batch(ctx.module, p[:2], flaky_replies({"RT-0": [503, "ok"], "RT-1": [500, "ok"]}))
    if nothing.raised is not None or set(getattr(nothing.run, "texts", {}) or {}) != {"RT-0", "RT-1"}:
        return False, ("a first batch where every request failed (no output file, only an error file): both go again and "
                       f"succeed in the second batch ({len(nothing.store.batches)} batches, "
                       f"{'raised ' + _raised(nothing.raised) if nothing.raised else 'texts for ' + str(sorted(getattr(nothing.run, 'texts', {}) or {}))})")
    slow = run_batch(ctx.module, p[:4], poll_seconds=3_600, seconds_per_request=[40_000, 15])
    if slow.raised is not None:
        return False, f"an expired batch: run_content_batch raised {_raised(slow.raised)}"
    first = list(slow.store.batches.values())[0]
    unrun = {str(line["custom_id"]) for i, line in enumerate(first.lines) if i >= first.processed(first.expires_at)}
    if not unrun or len(slow.store.batches) != 2:
        return False, f"the first batch expired with {sorted(unrun)} never run; they go again in one new batch ({len(slow.store.batches)} batches were created)"
    if set(getattr(slow.run, "texts", {}) or {}) != {x.sku for x in p[:4]}:
        return False, "after the first batch expired, not every product got its text: requests that never ran (batch_expired) are sent again"
    bad = run_batch(ctx.module, [p[0], p[0]])
    texts = getattr(bad.run, "texts", {}) or {}
    failures = getattr(bad.run, "failures", {}) or {}
    if bad.raised is not None or len(bad.store.batches) != 1 or (p[0].sku in texts) == (p[0].sku in failures):
        return False, ("the same product twice: either send it once, or let the batch fail validation (a duplicate custom_id) "
                       "and keep that as a final failure; never send a refused file again "
                       f"({len(bad.store.batches)} batches{', raised ' + _raised(bad.raised) if bad.raised else ''})")
    return True, f"retried 429/500/503 and expired requests in new batches (at most {C.max_batches}), kept 400, 404, cut-off answers and a failed batch as final failures"


@register("ex10.batch-cost")
def batch_cost(ctx: Context) -> tuple[bool, str]:
    price = ctx.attr("batch_cost")
    assert ctx.module is not None
    run = course.ContentRun(usages=[
        {"input_tokens": 180, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens": 420,
         "output_tokens_details": {"reasoning_tokens": 256}, "total_tokens": 600},
        {"input_tokens": 2_400, "input_tokens_details": {"cached_tokens": 1_280, "cache_write_tokens": 0}, "output_tokens": 300,
         "output_tokens_details": {"reasoning_tokens": 128}, "total_tokens": 2_700},
        {"input_tokens": 1_300, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 1_280}, "output_tokens": 700,
         "output_tokens_details": {"reasoning_tokens": 640}, "total_tokens": 2_000},
    ])
    try:
        got = price(run)
    except Exception as err:  # noqa: BLE001
        return False, f"batch_cost raised {_raised(err)}"
    want_batch = sum(cost(u, course.CONTENT_MODEL, tier="batch").total_usd for u in run.usages)
    want_standard = sum(cost(u, course.CONTENT_MODEL).total_usd for u in run.usages)
    if not isinstance(got, tuple) or len(got) != 2:
        return False, f"batch_cost returned {got!r:.80}; return (batch_usd, standard_usd)"
    if not (math.isclose(got[0], want_batch, rel_tol=1e-9) and math.isclose(got[1], want_standard, rel_tol=1e-9)):
        return False, (f"batch_cost gave ${got[0]:.6f} batch / ${got[1]:.6f} standard for three answers (cached and cache-write "
                       f"tokens, reasoning); their usage costs ${want_batch:.6f} / ${want_standard:.6f}: price each usage with "
                       "labkit.costs.cost(usage, model, tier='batch') and without the tier")
    return True, f"${got[0]:.6f} at Batch API prices against ${got[1]:.6f} one by one: a {1 - got[0] / got[1]:.0%} saving, from usage"


# =========================================================================== 4. routing


def _classification(label: dict[str, str], summary: str = "Scripted summary.") -> str:
    return json.dumps({**label, "summary": summary}, separators=(",", ":"))


def label_confidence(content: str, tokens: list[dict[str, Any]]) -> dict[str, float]:
    """Each label's probability in a recorded answer: exp of the logprobs of the tokens that spell it."""
    spans = value_spans(content, list(ex05.FIELDS))
    sums = dict.fromkeys(spans, 0.0)
    pos = 0
    for token in tokens:
        end = pos + len(token["bytes"])
        for name, (start, stop) in spans.items():
            if pos < stop and end > start:
                sums[name] += token["logprob"]
        pos = end
    return {name: math.exp(total) for name, total in sums.items()}


@lru_cache(maxsize=1)
def recorded_routing() -> dict[tuple[str, str], dict[str, Any]]:
    """(model, email text) -> the recorded answer: its reply, and for the small model its labels' probabilities."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for inter in load_cassette(resolve_cassette("ex10_routing")).interactions:
        body = inter.body or {}
        if inter.status != 200 or not body.get("messages"):
            continue
        data = json.loads(inter.content)
        choice = data["choices"][0]
        opts: dict[str, Any] = {"reply": choice["message"]["content"]}
        if choice.get("logprobs"):
            opts["confidence"] = {k: round(v, 6) for k, v in label_confidence(opts["reply"], choice["logprobs"]["content"]).items()}
        out[(str(body["model"]), str(body["messages"][-1]["content"]))] = opts
    return out


def routing_pick(script: dict[tuple[str, str], dict[str, Any]]) -> Pick:
    """Answer a classification request by its model and the email it carries."""
    texts = {text for _model, text in script}

    def pick(body: dict[str, Any]) -> dict[str, Any] | None:
        seen = request_text(body)
        text = next((t for t in texts if t in seen), None)
        return None if text is None else script.get((str(body.get("model")), text))

    return pick


def _same_request(body: dict[str, Any], email: dict[str, Any], model: str) -> str | None:
    """Why a request is not lesson 05's classifier on ``model`` (None if it is)."""
    if body.get("model") != model:
        return f"it went to {body.get('model')!r}, not {model!r}"
    if ex05.email_text(email) not in request_text(body) or ex05.SYSTEM not in request_text(body):
        return "it is not lesson 05's request (its system rubric and the fenced email): reuse request_for(email)"
    props = set((output_format(body).get("schema") or {}).get("properties") or {})
    if props != set(ex05.Classification.model_fields):
        return "it does not ask for lesson 05's Classification schema"
    return None


@dataclass
class RouteCase:
    name: str
    small: dict[str, Any]
    escalate: bool
    label: dict[str, str] = field(default_factory=lambda: {"sentiment": "negative", "urgency": "high", "category": "billing"})


def route_cases() -> list[RouteCase]:
    """The contract's boundary and every way the small model can fail."""
    label = {"sentiment": "negative", "urgency": "high", "category": "billing"}
    reply = _classification(label)
    edge = C.escalate_below

    def sure(**probs: float) -> dict[str, Any]:
        return {"reply": reply, "confidence": {**dict.fromkeys(ex05.FIELDS, 0.99), **probs}}

    return [
        RouteCase("every label sure", sure(), False),
        RouteCase(f"the least sure label at exactly {edge}", sure(urgency=edge), False),
        RouteCase(f"one label just below {edge}", sure(category=round(edge - 0.002, 3)), True),
        RouteCase("sentiment unsure (0.55)", sure(sentiment=0.55), True),
        RouteCase("the small model refuses", {"refusal": "I can't classify this."}, True),
        RouteCase("the small model's answer is cut off", {"reply": reply[:30], "finish_reason": "length"}, True),
        RouteCase("the small model answers 500", {"error": {"status": 500, "message": "The server had an error.", "type": "server_error"}}, True),
    ]


def _case_email(i: int) -> dict[str, Any]:
    return {"id": f"em-route-{i}", "subject": f"Case {i}: 'quotes' & {{braces}}", "body": f"Routing scenario {i}. Zoë 🙂",
            "label": {"sentiment": "negative", "urgency": "high", "category": "billing"}}


@register("ex10.escalation")
def escalation(ctx: Context) -> tuple[bool, str]:
    route = ctx.attr("route_email")
    large = {"reply": _classification({"sentiment": "negative", "urgency": "high", "category": "billing"}, "From the large model.")}
    for i, case in enumerate(route_cases()):
        email = _case_email(i)
        text = ex05.email_text(email)
        model = KeyedModel(routing_pick({(C.small_model, text): case.small, (C.large_model, text): large}), name=f"ex10-route-{i}")
        try:
            got = route(model.client(), email)
        except Exception as err:  # noqa: BLE001
            return False, f"{case.name}: route_email raised {_raised(err)}; a failing small model escalates"
        if not model.sent:
            return False, f"{case.name}: no request was sent"
        why = _same_request(model.sent[0].body, email, C.small_model)
        if why:
            return False, f"{case.name}: the first request is not lesson 05's classifier on the small model: {why}"
        if not model.sent[0].body.get("logprobs") and "message.output_text.logprobs" not in (model.sent[0].body.get("include") or []):
            return False, f"{case.name}: the small model's request asks for no logprobs, so there is no confidence to route by"
        larges = [s for s in model.sent[1:] if s.body.get("model") == C.large_model]
        if len(model.sent) - 1 != len(larges):
            return False, f"{case.name}: requests after the first went to {[s.body.get('model') for s in model.sent[1:]]}; escalate to {C.large_model} only"
        if case.escalate and len(larges) != 1:
            return False, f"{case.name}: {len(larges)} request(s) to the large model; the contract escalates exactly once"
        if not case.escalate and larges:
            return False, f"{case.name}: escalated to the large model though the small model was sure enough (>= {C.escalate_below})"
        if larges and _same_request(larges[0].body, email, C.large_model):
            return False, f"{case.name}: the escalation is not the same request: {_same_request(larges[0].body, email, C.large_model)}"
        if bool(getattr(got, "escalated", None)) != case.escalate or getattr(got, "model", None) != (C.large_model if case.escalate else C.small_model):
            return False, f"{case.name}: route_email returned escalated={getattr(got, 'escalated', None)!r}, model={getattr(got, 'model', None)!r}"
        if "confidence" not in case.small and getattr(got, "confidence", None) != 0.0:
            return False, f"{case.name}: Routed.confidence is {getattr(got, 'confidence', None)!r}; the small model gave no usable answer, so its confidence is 0.0"
        summary = _dump(getattr(got, "classification", None)) or {}
        if summary.get("summary") != ("From the large model." if case.escalate else "Scripted summary."):
            return False, f"{case.name}: the classification returned is not the answer of the model that was kept"
        parsed_answers = [x for x in model.answered if x.answer.get("status", "completed") == "completed"
                          and not any(c.get("finish_reason") == "length" for c in x.answer.get("choices", []))]
        usages = len(getattr(got, "usages", []) or [])
        if not len(parsed_answers) <= usages <= len(model.answered):
            return False, f"{case.name}: usages has {usages} entries for {len(model.answered)} answers: keep every answer's (model, usage)"
    return True, f"{len(route_cases())} scenarios: escalated below {C.escalate_below} (not at it), on a refusal, a cut-off answer and a 500; lesson 05's request both times"


@register("ex10.confidence")
def confidence(ctx: Context) -> tuple[bool, str]:
    route = ctx.attr("route_email")
    label = {"sentiment": "neutral", "urgency": "low", "category": "sales"}
    email = _case_email(99)
    text = ex05.email_text(email)

    def test(sentiment: float, urgency: float, category: float) -> None:
        probs = {"sentiment": sentiment, "urgency": urgency, "category": category}
        small = {"reply": _classification(label), "confidence": probs}
        model = KeyedModel(routing_pick({(C.small_model, text): small, (C.large_model, text): {"reply": _classification(label)}}))
        got = route(model.client(), email)
        want = min(probs.values())
        have = float(getattr(got, "confidence", -1.0))
        if not math.isclose(have, want, rel_tol=2e-3, abs_tol=1e-4):
            raise AssertionError(f"labels' probabilities {probs} gave a confidence of {have:.4f}; the least certain label has {want:.4f}")

    probability = st.floats(min_value=0.3, max_value=1.0).map(lambda x: round(x, 3))
    ok, detail = check_property(test, max_examples=6, sentiment=probability, urgency=probability, category=probability)
    return ok, detail if not ok else f"the confidence is the least certain label's probability, from the token logprobs: {detail}"


#: How many of the routing slice's first emails the metric check routes (with every hard case after them).
METRIC_FIRST = 12


def metric_emails() -> list[dict[str, Any]]:
    """The labelled emails the metric check routes: the slice's first METRIC_FIRST and every hard case."""
    emails = course.routing_emails()
    return emails[:METRIC_FIRST] + [e for e in emails[METRIC_FIRST:] if e.get("hard_case")]


@register("ex10.routing-metrics")
def routing_metrics(ctx: Context) -> tuple[bool, str]:
    evaluate = ctx.attr("evaluate_routing")
    emails = metric_emails()
    script = recorded_routing()
    model = KeyedModel(routing_pick(script), name="ex10-metrics")
    try:
        report = evaluate(model.client(), emails)
    except Exception as err:  # noqa: BLE001
        return False, f"evaluate_routing raised {_raised(err)}" + (f" ({model.problem()})" if model.problem() else "")
    if model.problem():
        return False, f"a request could not be answered: {model.problem()}"
    by_text = {ex05.email_text(e): e for e in emails}
    small_sure: dict[str, float] = {}
    for (m, text), opts in script.items():
        if m == C.small_model and text in by_text:
            small_sure[by_text[text]["id"]] = min(opts["confidence"].values())
    need = {e["id"] for e in emails if small_sure[e["id"]] < C.escalate_below}
    larges = [s for s in model.sent if s.body.get("model") == C.large_model]
    smalls = [s for s in model.sent if s.body.get("model") == C.small_model]
    if len(smalls) != len(emails) or len(larges) != len(emails) + len(need):
        return False, (f"{len(smalls)} small-model and {len(larges)} large-model requests for {len(emails)} emails; expected "
                       f"{len(emails)} and {len(emails) + len(need)} ({len(need)} escalations plus the always-large baseline)")
    spent = sum(cost(s.usage, str(s.body["model"])).total_usd for s in model.answered)
    got = {k: getattr(report, k, None) for k in ("emails", "escalated", "routed_accuracy", "large_accuracy", "routed_usd", "large_usd")}
    if got["escalated"] != len(need) or got["emails"] != len(emails):
        return False, f"the report says {got['escalated']} escalated of {got['emails']}; the recorded confidences escalate {len(need)} of {len(emails)}"
    if not math.isclose((got["routed_usd"] or 0) + (got["large_usd"] or 0), spent, rel_tol=1e-6):
        return False, (f"the report's costs (${got['routed_usd']}, ${got['large_usd']}) do not add up to the ${spent:.6f} the answers' "
                       "usage costs: price every answer with labkit.costs.cost(usage, model)")
    kept = {e["id"]: script[(C.large_model if e["id"] in need else C.small_model, ex05.email_text(e))]["reply"] for e in emails}
    want_routed = sum(all(json.loads(kept[e["id"]])[f] == e["label"][f] for f in ex05.FIELDS) for e in emails) / len(emails)
    want_large = sum(all(json.loads(script[(C.large_model, ex05.email_text(e))]["reply"])[f] == e["label"][f] for f in ex05.FIELDS)
                     for e in emails) / len(emails)
    if not (math.isclose(got["routed_accuracy"] or -1, want_routed) and math.isclose(got["large_accuracy"] or -1, want_large)):
        return False, (f"the report's accuracy ({got['routed_accuracy']!r} routed, {got['large_accuracy']!r} always-large) is not the "
                       f"share of emails whose three labels are right ({want_routed:.4f}, {want_large:.4f})")
    share = got["routed_usd"] / got["large_usd"] if got["large_usd"] else 1.0
    if share > 0.5:
        return False, f"routing costs {share:.0%} of always using the large model (at most 50% expected)"
    alone = sum(all(json.loads(script[(C.small_model, ex05.email_text(e))]["reply"])[f] == e["label"][f] for f in ex05.FIELDS)
                for e in emails) / len(emails)
    return True, (f"{len(emails)} labelled emails: {len(need)} escalated; accuracy {got['routed_accuracy']:.1%} routed "
                  f"({alone:.1%} small model alone) vs {got['large_accuracy']:.1%} always-large, at {share:.0%} of the cost")


# =========================================================================== 5. personalization


def odd_customer(i: int, first_name: str, company: str) -> course.Customer:
    return course.Customer(id=f"cus-x{i}", name=f"{first_name} Tester", first_name=first_name, email=f"x{i}@test.example",
                           company=company, industry="testing", plan=("Team", "Business")[i % 2], seats=11 + i,
                           renewal_date=f"2027-0{1 + i % 9}-1{i % 10}", top_feature="Kanban boards")


GOOD_DRAFT = "Hi {first_name},\n\nTimeline view puts {company}'s projects on one line for your {seats} seats.\n\nThe Taskflow team"


def _filled(draft: str, customer: course.Customer) -> str:
    record = course.campaign_record(customer)
    return re.sub(r"\{([^{}]*)\}", lambda m: str(record[m.group(1)]), draft)


@dataclass(frozen=True)
class MergeCase:
    name: str
    draft: dict[str, Any]
    customer: course.Customer
    source: str  # "model" or "fallback"


def merge_cases() -> list[MergeCase]:
    ana, ben = course.CUSTOMER["cus-ana"], course.CUSTOMER["cus-ben"]
    odd = odd_customer(3, 'Zoë "{plan}"', "O'Brien & {company} Events 🙂")
    return [
        MergeCase("a clean draft", {"reply": GOOD_DRAFT}, ana, "model"),
        MergeCase("values with braces, quotes and unicode", {"reply": GOOD_DRAFT}, odd, "model"),
        MergeCase("an unknown placeholder {discount_code}", {"reply": GOOD_DRAFT + " Use {discount_code}."}, ana, "fallback"),
        MergeCase("a seat count written by the model (25, the record says 20)", {"reply": "Hi {first_name}, all 25 seats get it."}, ana, "fallback"),
        MergeCase("another customer's company", {"reply": "Hi {first_name}, like Lumen Analytics, {company} plans ahead."}, ben, "fallback"),
        MergeCase("the wrong plan (Team plan, the record says Business)", {"reply": "Hi {first_name}, your Team plan now has it."}, ana, "fallback"),
        MergeCase("a draft cut off at the output limit", {"reply": "Hi {first_name}, Timeline", "finish_reason": "length"}, ana, "fallback"),
        MergeCase("an empty draft", {"reply": ""}, ben, "fallback"),
        MergeCase("a fallback for odd values", {"reply": "Hi {first_name}, since 2019..."}, odd, "fallback"),
    ]


def _customer_keys(customer: course.Customer) -> tuple[str, ...]:
    """The customer's company as a request may carry it: as written, or inside a JSON string."""
    return (customer.company, json.dumps(customer.company, ensure_ascii=False)[1:-1], json.dumps(customer.company)[1:-1])


def personal_model(pairs: list[tuple[course.Customer, dict[str, Any]]], *, cache: bool = False) -> KeyedModel:
    """Answer a personalization request by the customer it carries (their company, as the record shows it)."""

    def pick(body: dict[str, Any]) -> dict[str, Any] | None:
        seen = request_text(body)
        return next((opts for customer, opts in pairs if any(k in seen for k in _customer_keys(customer))), None)

    return KeyedModel(pick, cache=cache, name="ex10-personal")


@register("ex10.merge-facts")
def merge_facts(ctx: Context) -> tuple[bool, str]:
    personalize = ctx.attr("personalize")
    for case in merge_cases():
        model = personal_model([(case.customer, case.draft)])
        try:
            got = personalize(model.client(), case.customer)
        except Exception as err:  # noqa: BLE001
            return False, f"{case.name}: personalize raised {_raised(err)}" + (f" ({model.problem()})" if model.problem() else "")
        if model.problem():
            return False, f"{case.name}: {model.problem()} (put the customer's record in the request)"
        text, source = str(getattr(got, "text", "")), getattr(got, "source", None)
        want = _filled(case.draft["reply"] if case.source == "model" else course.FALLBACK_TEMPLATE, case.customer)
        if source != case.source:
            return False, f"{case.name}: the {source!r} text was used; the contract sends the {case.source!r} one"
        if text != want:
            return False, f"{case.name}: sent {text[:90]!r}…; expected the {case.source} filled from the record in one pass ({want[:60]!r}…)"
        problems = list(getattr(got, "problems", []) or [])
        if (case.source == "fallback") != bool(problems):
            return False, f"{case.name}: problems={problems!r:.80}; a fallback says why, a model draft that passed has none"
        foreign = course.facts(text) - course.allowed_facts(case.customer)
        if foreign:
            return False, f"{case.name}: the message states {sorted(foreign)}, which the record and the brief do not"
    fill = ctx.attr("fill_merge_fields")

    def test(first_name: str, company: str, draft: list[str]) -> None:
        customer = odd_customer(1, first_name or "X", company or "Y")
        template = "".join(draft)
        unknown = [p for p in draft if p.startswith("{") and p.strip("{}") not in C.merge_fields]
        try:
            got = fill(template, customer)
        except ValueError:
            if unknown:
                return
            raise AssertionError(f"fill_merge_fields raised ValueError on {template!r}, whose placeholders are all merge fields") from None
        if unknown:
            raise AssertionError(f"{unknown[0]} is not a merge field but {template!r} was filled without a ValueError")
        if got != _filled(template, customer):
            raise AssertionError(f"{template!r} became {got!r}; each placeholder takes the record's value, once, as it is")

    parts = st.sampled_from(["Hi ", "{first_name}", "{company}", "{seats}", ", ", "{discount}", "{ }", "}{", "{plan}", "\n"])
    ok, detail = check_property(test, max_examples=15, first_name=st.sampled_from(NASTY), company=st.sampled_from(NASTY),
                                draft=st.lists(parts, max_size=6))
    if not ok:
        return False, detail
    return True, f"{len(merge_cases())} drafts: merge fields filled once from the record; invented numbers, other customers, the wrong plan, unknown fields, cut-off and empty drafts fall back; {detail}"


@register("ex10.cache-layout")
def cache_layout(ctx: Context) -> tuple[bool, str]:
    personalize = ctx.attr("personalize")
    customers = [course.CUSTOMER["cus-ana"], course.CUSTOMER["cus-emil"], course.CUSTOMER["cus-jonas"]]
    model = personal_model([(c, {"reply": GOOD_DRAFT}) for c in customers], cache=True)
    client = model.client()
    for customer in customers:
        try:
            personalize(client, customer)
        except Exception as err:  # noqa: BLE001
            return False, f"personalize raised {_raised(err)}" + (f" ({model.problem()})" if model.problem() else "")
    if model.problem() or len(model.answered) != len(customers):
        return False, model.problem() or f"{len(model.answered)} answered requests for {len(customers)} customers (expected one each)"
    cached = []
    for s in model.answered:
        usage = s.usage or {}
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        cached.append(int(details.get("cached_tokens") or 0))
    if min(cached[1:]) < C.cache_min_tokens:
        return False, (f"cached_tokens per request {cached}: the requests share fewer than {C.cache_min_tokens:,} leading tokens. Put "
                       "what every customer shares (instructions, style guide) first and the customer's record last")
    return True, f"cached_tokens per request {cached}: every request after the first reads its shared prefix from the cache"


@register("ex10.cost-per-1000")
def cost_per_1000(ctx: Context) -> tuple[bool, str]:
    price = ctx.attr("cost_per_1000")

    def usage(prompt: int, cached: int, written: int, completion: int) -> CompletionUsage:
        return CompletionUsage.model_validate({
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "completion_tokens_details": {"reasoning_tokens": 0}})

    def test(rows: list[tuple[int, int, int, int]]) -> None:
        # a fallback message was paid for as well (the model answered; its draft was not used)
        messages = [course.PersonalMessage(f"cus-{i}", "text", "fallback" if i % 2 else "model", [], usage(*row))
                    for i, row in enumerate(rows)]
        want = sum(cost(m.usage, course.PERSONAL_MODEL).total_usd for m in messages) / len(messages) * C.per_messages
        have = price(messages)
        if not math.isclose(have, want, rel_tol=1e-9):
            raise AssertionError(f"${have:.6f} per 1,000 for usages {rows}; their usage costs ${want:.6f} per 1,000 (every message, "
                                 "fallbacks included: their drafts were paid for; cached and cache-write tokens priced apart: "
                                 "labkit.costs.cost)")

    def row(prompt: int, share: float, write: bool, completion: int) -> tuple[int, int, int, int]:
        blocks = int(prompt * share) // 128 * 128 if prompt >= 1_024 else 0
        return (prompt, 0 if write else blocks, blocks if write else 0, completion)

    rows = st.builds(row, st.integers(200, 3_000), st.floats(0, 1), st.booleans(), st.integers(1, 400))
    ok, detail = check_property(test, max_examples=12, rows=st.lists(rows, min_size=1, max_size=4))
    return ok, detail if not ok else f"cost per 1,000 messages from usage, cached and cache-write tokens apart: {detail}"
