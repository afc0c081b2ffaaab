"""Checks for exercise 09: the tool registry, the loop and its edge cases, structured outputs, trimming.

The model is :class:`labkit.simulate.ScriptedModel`: it plays each scenario's turns (parallel
calls, a malformed call, an unknown tool, a model that never stops) in the API's wire format and
enforces what the real API enforces (every call answered by its call id, no output for an
unknown call, strict schemas strict, a 400 for function tools where the model needs the
Responses API), so a loop on either API is graded on what it sends. The edge-case scenarios use
small tools of the checks' own, registered through the learner's ``ToolRegistry``, so one broken
shop tool does not fail them; the shop's tools are graded apart, against a real SQLite database
and the weather service (in-process over WSGI: the grader allows no sockets), differentially
against the reference. Scenarios, limits and texts come from :mod:`labkit.course.ex09`.
"""

from __future__ import annotations

import copy
import json
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, Field, field_validator

from ..clock import course_date
from ..course import ex09 as course
from ..lint import lint_request
from ..simulate import Exchange, ScriptedModel, Turn, strict_schema_problem
from ..tokens import REPLY_PRIMING
from . import Context, register

#: The customer's question in every loop scenario: quotes, braces, an ampersand, accents, an emoji.
QUESTION = 'Is "TP-200" in stock & can {you} send me a voucher? Ça presse 🙏'
ERROR = course.CONTRACT.error_key


# --------------------------------------------------------------------------- the checks' own tools


class SkuArgs(BaseModel):
    """Arguments of stock_level."""

    sku: str = Field(description="A product code, like TP-200.")

    @field_validator("sku")
    @classmethod
    def _shape(cls, value: str) -> str:
        if len(value) != 6 or value[2] != "-" or not value[:2].isalpha() or not value[3:].isdigit():
            raise ValueError("a product code looks like TP-200")
        return value


class VoucherArgs(BaseModel):
    """Arguments of issue_voucher."""

    email: str
    amount: float = Field(gt=0)
    note: str | None = None


class EtaArgs(BaseModel):
    """Arguments of carrier_eta."""

    postcode: str


#: What stock_level knows; an unknown code raises LookupError.
STOCK = {"TP-200": 14, "HL-050": 0, "WB-750": 231}
#: carrier_eta's time limit in the timeout scenario, and how long it would really take.
SHORT_TIMEOUT, SLOW_FOR = 0.05, 1.5


@dataclass
class Shelf:
    """The checks' tools for one scenario, and what they were asked to do."""

    ran: list[tuple[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    #: the slow tool returned (it only returns after SLOW_FOR seconds, or when released)
    slow_done: bool = False
    #: it had returned before run_tools did: the loop waited for it
    waited: bool = False

    def register(self, registry: Any, *, slow: bool = False) -> Any:
        """Register stock_level and issue_voucher (and carrier_eta) on the learner's registry."""
        ran, release = self.ran, self.release

        def stock_level(args: SkuArgs) -> dict[str, Any]:
            """How many units of a product the warehouse holds."""
            ran.append(("stock_level", args.sku))
            if args.sku not in STOCK:
                raise LookupError(f"no product {args.sku} in the catalogue")
            return {"sku": args.sku, "units": STOCK[args.sku]}

        def issue_voucher(args: VoucherArgs) -> dict[str, Any]:
            """Email a store-credit voucher to a customer (sends an email and moves money)."""
            ran.append(("issue_voucher", args.model_dump()))
            return {"voucher": f"V-{len(ran)}", "email": args.email, "amount": args.amount}

        def carrier_eta(args: EtaArgs) -> dict[str, Any]:
            """Ask the carrier's slow API when a parcel to this postcode arrives."""
            ran.append(("carrier_eta", args.postcode))
            release.wait(SLOW_FOR)
            self.slow_done = True
            return {"postcode": args.postcode, "days": 2}

        registry.tool(SkuArgs)(stock_level)
        registry.tool(VoucherArgs, side_effect=True)(issue_voucher)
        if slow:
            registry.tool(EtaArgs, timeout=SHORT_TIMEOUT)(carrier_eta)
        return registry


def stock_answer(sku: str) -> dict[str, Any]:
    return {"sku": sku, "units": STOCK[sku]}


# --------------------------------------------------------------------------- running a scenario


@dataclass
class Run:
    """One call of the learner's run_tools against a scripted model."""

    model: ScriptedModel
    shelf: Shelf
    result: Any = None
    raised: BaseException | None = None
    seconds: float = 0.0

    @property
    def answered(self) -> list[Exchange]:
        return self.model.answered

    def problem(self) -> str | None:
        """Why the run cannot be graded: the loop raised, or sent what the API rejects."""
        rejected = next((e for e in self.model.exchanges if e.status != 200), None)
        if rejected is not None:
            return f"request {rejected.index + 1} was rejected by the API ({rejected.status}): {rejected.error[:220]}"
        if self.raised is not None:
            text = str(self.raised).splitlines()[0][:200] if str(self.raised) else ""
            return f"run_tools raised {type(self.raised).__name__}: {text}"
        if not self.answered:
            return "run_tools sent no request"
        return None

    def outputs_for(self, k: int) -> dict[str, list[str]]:
        """The tool outputs the request after answer ``k`` carried for answer k's calls."""
        if k + 1 >= len(self.answered):
            return {}
        after = self.answered[k + 1].outputs
        return {cid: after.get(cid, []) for cid, _, _ in self.answered[k].calls}


def scenario(ctx: Context, turns: list[Turn], *, max_rounds: int | None = None, confirm: Any = "absent",
             repeat_last: bool = False, slow: bool = False) -> Run:
    """Run the learner's run_tools on QUESTION with the checks' tools, against a scripted model."""
    registry = ctx.attr("ToolRegistry")()
    shelf = Shelf()
    shelf.register(registry, slow=slow)
    model = ScriptedModel(turns, repeat_last=repeat_last, name=f"ex09-{len(turns)}")
    kwargs: dict[str, Any] = {}
    if max_rounds is not None:
        kwargs["max_rounds"] = max_rounds
    if confirm != "absent":
        kwargs["confirm"] = confirm
    run = Run(model, shelf)
    start = time.perf_counter()
    try:
        run.result = ctx.attr("run_tools")(model.client(), registry, QUESTION, **kwargs)
    except Exception as err:  # noqa: BLE001 - learner code may raise anything; the check reports it
        run.raised = err
    finally:
        run.seconds = time.perf_counter() - start
        shelf.waited = shelf.slow_done
        shelf.release.set()
    return run


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def is_error(output: str) -> bool:
    data = _json(output)
    return isinstance(data, dict) and isinstance(data.get(ERROR), str) and bool(data[ERROR])


def error_text(output: str) -> str:
    data = _json(output)
    return str(data.get(ERROR, "")) if isinstance(data, dict) else ""


def user_texts(exchange: Exchange) -> list[str]:
    """The text of every user message a request carried (a string, or its text parts joined)."""
    out = []
    for item in exchange.context:
        if item.get("role") == "user":
            content = item.get("content")
            parts = content if isinstance(content, list) else [{"text": content}]
            out.append("".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)))
    return out


def _one_output(run: Run, k: int, call_id: str, name: str) -> tuple[str | None, str]:
    """The single output sent back for a call, or why there is not exactly one."""
    got = run.outputs_for(k).get(call_id, [])
    if len(got) != 1:
        return None, f"the call to {name} ({call_id}) got {len(got)} outputs in the next request (expected exactly 1, by its call id)"
    return got[0], ""


def first_round(run: Run) -> tuple[list[str], str]:
    """The single output sent back for each call of the first answer, in order; or what went wrong."""
    problem = run.problem()
    if problem:
        return [], problem
    outputs = []
    for call_id, name, _ in run.answered[0].calls:
        output, why = _one_output(run, 0, call_id, name)
        if output is None:
            return [], why
        outputs.append(output)
    return outputs, ""


def _finished(run: Run, text: str) -> str | None:
    """What is wrong with how the run ended, if it should end with ``text`` as the answer."""
    result = run.result
    if getattr(result, "stopped", None) != "answer":
        return f"the run ended with stopped={getattr(result, 'stopped', None)!r}, expected 'answer' (the model gave a final answer)"
    if getattr(result, "answer", None) != text:
        return f"the result's answer is {getattr(result, 'answer', None)!r:.80}, the model's final text was {text!r}"
    if getattr(result, "rounds", None) != len(run.answered):
        return f"the result says rounds={getattr(result, 'rounds', None)!r}; {len(run.answered)} requests were sent"
    return None


# --------------------------------------------------------------------------- the registry


class Address(BaseModel):
    street: str
    postcode: str | None = None


class Shipment(BaseModel):
    """Arguments with nesting, an optional field, a default, a list and an enum-like literal."""

    order_id: str
    to: Address
    parcels: list[Address] = []
    speed: str = "standard"
    note: str | None = None


class WithFreeDict(BaseModel):
    """A free-form dict: no strict schema can express it."""

    order_id: str
    metadata: dict[str, str]


class Labels(BaseModel):
    colour: str
    extra: dict[str, int]


class WithNestedDict(BaseModel):
    """A free-form dict one level down (in $defs)."""

    order_id: str
    labels: Labels


class WithOptionalDict(BaseModel):
    """A free-form dict that may be null (inside anyOf)."""

    order_id: str
    overrides: dict[str, str] | None = None


class WithDictList(BaseModel):
    """Free-form dicts as the items of a list."""

    order_id: str
    lines: list[dict[str, int]]


#: Arguments a strict schema cannot express, and the field an error should name.
FREE_FORM: tuple[tuple[type[BaseModel], str], ...] = ((WithFreeDict, "metadata"), (WithNestedDict, "extra"),
                                                       (WithOptionalDict, "overrides"), (WithDictList, "lines"))


def _named(name: str, doc: str) -> Callable[[Any], Any]:
    def fn(args: Any) -> Any:
        return {}

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


@register("ex09.strict-schemas")
def strict_schemas(ctx: Context) -> tuple[bool, str]:
    registry = ctx.attr("ToolRegistry")()
    registry.tool(Shipment)(_named("plan_shipment", "Plan a shipment to an address."))
    Shelf().register(registry)
    for args, field_name in FREE_FORM:
        try:
            registry.tool(args)(_named("tag_order", "Tag an order."))
        except (TypeError, ValueError) as err:
            if field_name not in str(err):
                return False, f"registering {args.__name__} raised {type(err).__name__}({str(err)[:80]!r}): name the field ({field_name!r})"
        else:
            return False, (f"a tool whose arguments hold a free-form dict ({args.__name__}.{field_name}: {args.__doc__}) was registered: "
                           "no strict schema expresses one (the API answers 400); raise TypeError when it is registered")
    docs = {"plan_shipment": "Plan a shipment to an address.", "stock_level": "How many units of a product the warehouse holds.",
            "issue_voucher": "Email a store-credit voucher to a customer (sends an email and moves money)."}
    for api in course.CONTRACT.apis:
        tools = registry.schemas(api)
        if not isinstance(tools, list) or len(tools) != len(docs):
            return False, f"schemas({api!r}) returned {len(tools) if isinstance(tools, list) else type(tools).__name__} tools, expected {len(docs)} (a free-form dict tool must not be kept)"
        for tool in tools:
            fn = tool.get("function") if api == "chat" else tool
            if tool.get("type") != "function" or not isinstance(fn, dict):
                want = ('Chat Completions wants {"type": "function", "function": {...}}' if api == "chat"
                        else 'the Responses API wants {"type": "function", "name": ...} (flat)')
                return False, f"schemas({api!r}) gave {json.dumps(tool)[:100]}: {want}"
            name = fn.get("name")
            if name not in docs:
                return False, f"schemas({api!r}) has a tool named {name!r}; tools are named after their functions: {', '.join(docs)}"
            if (fn.get("description") or "").strip() != docs[name]:
                return False, f"{name}'s description is {fn.get('description')!r:.60}; it should be the function's docstring"
            if fn.get("strict") is not True:
                return False, f"{name} is sent without strict: true ({api}): the API then does not hold the model to the schema"
            problem = strict_schema_problem(fn.get("parameters"), f"function '{name}'")
            if problem:
                return False, f"{api}: the API would answer 400: {problem}"
        plan = next(t for t in tools if (t.get("function") if api == "chat" else t).get("name") == "plan_shipment")
        params = (plan.get("function") if api == "chat" else plan)["parameters"]
        note = params.get("properties", {}).get("note", {})
        if "null" not in json.dumps(note):
            return False, f"plan_shipment's optional field 'note' is not nullable in the schema ({json.dumps(note)[:80]}): strict mode requires every field, so optional ones must accept null"
    return True, "3 tools, strict on both APIs (nested objects closed, every field required, optional ones nullable); a free-form dict refused at registration"


# --------------------------------------------------------------------------- the loop


def sequential_run(ctx: Context) -> Run:
    """Two rounds of single calls, then the answer, with max_rounds exactly 3 (shared by two checks)."""
    cached = ctx.memo.get("ex09.sequential")
    if not isinstance(cached, Run):
        turns = [Turn(calls=(("stock_level", {"sku": "TP-200"}),)),
                 Turn(calls=(("stock_level", {"sku": "WB-750"}),)),
                 Turn(text="TP-200: 14 in stock. WB-750: 231.")]
        cached = scenario(ctx, turns, max_rounds=3)
        ctx.memo["ex09.sequential"] = cached
    return cached


@register("ex09.call-ids")
def call_ids(ctx: Context) -> tuple[bool, str]:
    run = sequential_run(ctx)
    problem = run.problem()
    if problem:
        return False, problem
    if len(run.answered) != 3:
        return False, f"{len(run.answered)} requests for a conversation of two tool rounds and an answer (expected 3, with max_rounds=3)"
    for k, sku in ((0, "TP-200"), (1, "WB-750")):
        (call_id, name, _), = run.answered[k].calls
        output, why = _one_output(run, k, call_id, name)
        if output is None:
            return False, why
        if _json(output) != stock_answer(sku):
            return False, f"round {k + 1}: the output sent for {call_id} is {output[:80]!r}, the tool returned {json.dumps(stock_answer(sku))} (json.dumps of the result)"
    wrong = _finished(run, "TP-200: 14 in stock. WB-750: 231.")
    if wrong:
        return False, wrong
    outputs = getattr(run.result, "outputs", None)
    if not isinstance(outputs, list) or [getattr(o, "call_id", None) for o in outputs] != [c[0] for e in run.answered[:2] for c in e.calls]:
        return False, "result.outputs should list a ToolOutput for each call, in order, with its call id"
    return True, "each result went back with its own call id, round after round; the final answer came back with stopped='answer' at max_rounds=3"


@register("ex09.current-api")
def current_api(ctx: Context) -> tuple[bool, str]:
    run = sequential_run(ctx)
    sent = run.model.exchanges
    if not sent:
        return False, run.problem() or "run_tools sent no request"
    first = sent[0]
    body = first.body
    if "functions" in body or "function_call" in body:
        return False, "the request sends functions / function_call: deprecated since 2023 (seed 002's form); send tools=[...] (and tool_choice)"
    if not first.tool_names:
        return False, "the request declares no function tools: pass registry.schemas(...) as tools"
    errors = [f for f in lint_request(today=course_date(), **body) if f.severity == "error"]
    if errors:
        return False, f"the API rejects this request ({errors[0].code}): {errors[0].message[:200]}"
    rejected = next((e for e in sent if e.status != 200), None)
    if rejected is not None:
        return False, f"request {rejected.index + 1} was rejected ({rejected.status}): {rejected.error[:200]}"
    if not any(QUESTION in text for text in user_texts(first)):
        return False, f"the customer's question is not in the request's user message as given ({QUESTION!r})"
    where = ("the Responses API" if first.api == "responses"
             else f"Chat Completions at effort {body.get('reasoning_effort')!r}")
    return True, f"tools (strict function tools) on {where} with {body.get('model')}: a request the API accepts"


@register("ex09.parallel-calls")
def parallel_calls(ctx: Context) -> tuple[bool, str]:
    calls = (("stock_level", {"sku": "HL-050"}), ("stock_level", {"sku": "TP-200"}), ("stock_level", {"sku": "HL-050"}),
             ("stock_level", {"sku": "WB-750"}))
    run = scenario(ctx, [Turn(calls=calls), Turn(text="HL-050 is out of stock; TP-200 has 14, WB-750 231.")])
    if not run.problem() and len(run.answered) < 2:
        return False, "the loop stopped after the first answer, which asked for four tool calls at once"
    outputs, why = first_round(run)
    if not outputs:
        return False, why + " (four calls came in one answer, two of them with the same arguments)"
    for (call_id, _, arguments), output in zip(run.answered[0].calls, outputs):
        sku = json.loads(arguments)["sku"]
        if _json(output) != stock_answer(sku):
            return False, f"the output sent for {call_id} ({sku}) is {output[:80]!r}: each call's own result goes with its own id"
    ran = [r for r in run.shelf.ran if r[0] == "stock_level"]
    if len(ran) != 4:
        return False, f"four calls in one answer ran the tool {len(ran)} times (each call runs once, duplicates too)"
    wrong = _finished(run, "HL-050 is out of stock; TP-200 has 14, WB-750 231.")
    return (False, wrong) if wrong else (True, "4 parallel calls (two identical) each answered once, by call id, with its own result")


#: The broken calls of the invalid-arguments scenario: arguments as sent, and the field a good error names.
BROKEN = (
    ('{"sku": "tp200"}', "sku"),            # fails the validator
    ('{"sku": "TP-200"', ""),               # cut off: not JSON
    ('{"product": "TP-200"}', "sku"),       # the field is missing
    ('{"sku": ["TP-200"]}', "sku"),         # the wrong type
)


@register("ex09.invalid-arguments")
def invalid_arguments(ctx: Context) -> tuple[bool, str]:
    turns = [Turn(calls=tuple(("stock_level", raw) for raw, _ in BROKEN)),
             Turn(calls=(("stock_level", {"sku": "TP-200"}),)),
             Turn(text="TP-200: 14 in stock.")]
    run = scenario(ctx, turns)
    outputs, why = first_round(run)
    if not outputs:
        return False, why
    for (_, _, raw), (_, field_name), output in zip(run.answered[0].calls, BROKEN, outputs):
        if not is_error(output):
            return False, f"arguments {raw!r} came back as {output[:80]!r}: send an error result ({{\"{ERROR}\": ...}}) the model can correct"
        if field_name and field_name not in error_text(output):
            return False, f"the error for arguments {raw!r} does not name the field: {error_text(output)[:100]!r} (say which field and what is wrong, from the ValidationError)"
    if run.shelf.ran[:1] != [("stock_level", "TP-200")] or len(run.shelf.ran) != 1:
        return False, f"the tool ran {len(run.shelf.ran)} times ({run.shelf.ran[:3]}); it should run only for the corrected call, never with arguments that failed validation"
    wrong = _finished(run, "TP-200: 14 in stock.")
    return (False, wrong) if wrong else (True, "invalid, cut-off, missing and mistyped arguments each got an error naming the problem; the tool ran only for the model's corrected call")


@register("ex09.unknown-tool")
def unknown_tool(ctx: Context) -> tuple[bool, str]:
    run = scenario(ctx, [Turn(calls=(("delete_customer", {"email": "ana@example.com"}), ("stock_level", {"sku": "TP-200"}))),
                         Turn(text="I can only check stock: TP-200 has 14.")])
    outputs, why = first_round(run)
    if not outputs:
        return False, why
    output, good = outputs
    if not is_error(output) or "delete_customer" not in error_text(output):
        return False, f"a call to the unknown tool delete_customer came back as {output[:80]!r}: an error result naming the tool (and the tools there are)"
    if "stock_level" not in error_text(output):
        return False, f"the error for the unknown tool says {error_text(output)[:90]!r}: also list the tools that exist, so the model can pick one"
    if _json(good) != stock_answer("TP-200"):
        return False, f"the valid call beside the unknown one got {good[:80]!r}, not its result"
    wrong = _finished(run, "I can only check stock: TP-200 has 14.")
    return (False, wrong) if wrong else (True, f"the unknown tool got {error_text(output)[:60]!r}; the valid call beside it ran; the loop went on")


@register("ex09.tool-raises")
def tool_raises(ctx: Context) -> tuple[bool, str]:
    run = scenario(ctx, [Turn(calls=(("stock_level", {"sku": "ZZ-999"}),)), Turn(text="ZZ-999 is not in the catalogue.")])
    outputs, why = first_round(run)
    if not outputs:
        return False, why
    output = outputs[0]
    if not is_error(output) or "no product ZZ-999" not in error_text(output):
        return False, f"the tool raised LookupError('no product ZZ-999 in the catalogue'); the model got {output[:90]!r}: send the exception's message as an error result"
    wrong = _finished(run, "ZZ-999 is not in the catalogue.")
    return (False, wrong) if wrong else (True, f"the exception became {error_text(output)[:70]!r} and the loop went on")


@register("ex09.tool-timeout")
def tool_timeout(ctx: Context) -> tuple[bool, str]:
    run = scenario(ctx, [Turn(calls=(("carrier_eta", {"postcode": "75011"}), ("stock_level", {"sku": "TP-200"}))),
                         Turn(text="The carrier did not answer in time; TP-200 has 14 in stock.")], slow=True)
    outputs, why = first_round(run)
    if not outputs:
        return False, why
    output, fast = outputs
    words = course.CONTRACT.timeout_words
    if not is_error(output) or not any(w in error_text(output).lower() for w in words):
        return False, f"carrier_eta (timeout={SHORT_TIMEOUT} s) would take {SLOW_FOR} s; the model got {output[:80]!r}: an error result saying it timed out"
    if run.shelf.waited:
        return False, f"the loop waited {SLOW_FOR} s for carrier_eta although its limit is {SHORT_TIMEOUT} s: stop waiting at the limit (wait_for(future, timeout)) and leave the thread behind (pool.shutdown(wait=False))"
    if _json(fast) != stock_answer("TP-200"):
        return False, f"the call next to the slow one got {fast[:80]!r}, not its result"
    wrong = _finished(run, "The carrier did not answer in time; TP-200 has 14 in stock.")
    return (False, wrong) if wrong else (True, f"the slow tool was abandoned at its {SHORT_TIMEOUT} s limit ({error_text(output)[:50]!r}), not waited for")


@register("ex09.confirmation")
def confirmation(ctx: Context) -> tuple[bool, str]:
    asked: list[tuple[str, Any]] = []

    def confirm(name: str, args: Any) -> bool:
        asked.append((name, args))
        return bool(getattr(args, "amount", 0) <= 20)

    calls = (("issue_voucher", {"email": "ana@example.com", "amount": 15, "note": None}),
             ("issue_voucher", {"email": "ben@example.com", "amount": 500, "note": "sorry!"}),
             ("issue_voucher", {"email": "chloe@example.com", "amount": -5, "note": None}),
             ("stock_level", {"sku": "TP-200"}))
    approved = scenario(ctx, [Turn(calls=calls), Turn(text="Ana's voucher is on its way; Ben's needs a manager.")], confirm=confirm)
    problem = approved.problem()
    if problem:
        return False, problem
    names = [n for n, _ in asked]
    if names.count("issue_voucher") != 2 or "stock_level" in names:
        return False, (f"confirm was asked {len(asked)} times ({', '.join(names) or 'never'}): ask once for each valid call of a "
                       "side-effecting tool, never for a read-only one, and not for arguments that fail validation")
    if not all(isinstance(a, VoucherArgs) for _, a in asked):
        return False, f"confirm got {type(asked[0][1]).__name__} arguments: pass the validated VoucherArgs instance, so the person sees what will run"
    sent = [r[1]["email"] for r in approved.shelf.ran if r[0] == "issue_voucher"]
    if sent != ["ana@example.com"]:
        return False, f"vouchers sent to {sent}: only the confirmed one (ana, 15) may run; the declined one (ben, 500) and the invalid one (-5) must not"
    ids = approved.answered[0].calls
    declined, _ = _one_output(approved, 0, ids[1][0], ids[1][1])
    if declined is None or not is_error(declined):
        return False, f"the declined voucher came back as {declined!r:.80}: tell the model it was not run (an error result)"
    unasked = scenario(ctx, [Turn(calls=(("issue_voucher", {"email": "dara@example.com", "amount": 5, "note": None}),)),
                             Turn(text="I need your confirmation first.")])
    problem = unasked.problem()
    if problem:
        return False, "with no confirm given: " + problem
    if unasked.shelf.ran:
        return False, "with no confirm given, issue_voucher ran: a side-effecting tool must never run unconfirmed"
    (cid, name, _), = unasked.answered[0].calls
    output, why = _one_output(unasked, 0, cid, name)
    if output is None or not is_error(output):
        return False, why or f"the unconfirmed call came back as {output!r:.80}: send an error result saying it was not run"
    return True, "confirm asked once per valid side-effecting call with the validated arguments; declined and unconfirmed calls never ran"


@register("ex09.max-rounds")
def max_rounds(ctx: Context) -> tuple[bool, str]:
    seen = []
    for cap in (0, 1, 3):
        run = scenario(ctx, [Turn(calls=(("stock_level", {"sku": "TP-200"}),))], max_rounds=cap, repeat_last=True)
        problem = run.problem()
        if problem and (cap > 0 or run.model.exchanges or run.raised is not None):
            return False, f"max_rounds={cap}: {problem}"
        n, ran = len(run.model.exchanges), len(run.shelf.ran)
        if n > cap:
            return False, f"with max_rounds={cap} and a model that never stops calling tools, {n} requests were sent (at most {cap})"
        if n < cap:
            return False, f"with max_rounds={cap}, the loop stopped after {n} requests although the model was still working"
        if ran != max(cap - 1, 0):
            return False, f"with max_rounds={cap}, the tool ran {ran} times: run the calls of the first {cap - 1} answers only; the last answer's calls cannot be sent back"
        if cap == 0:
            if getattr(run.result, "stopped", None) != "max_rounds":
                return False, f"with max_rounds=0 the result says stopped={getattr(run.result, 'stopped', None)!r}: no request may be sent, so 'max_rounds'"
            continue
        stopped = getattr(run.result, "stopped", None)
        if stopped != "max_rounds":
            return False, f"with max_rounds={cap}, the result says stopped={stopped!r}: say 'max_rounds' (the model did not finish)"
        if getattr(run.result, "rounds", None) != n:
            return False, f"with max_rounds={cap}, the result says rounds={getattr(run.result, 'rounds', None)!r}; {n} requests were sent"
        forced = run.model.exchanges[-1].body.get("tool_choice") == "none"
        if getattr(run.result, "answer", None) is not None and not forced:
            return False, f"the capped run returned answer={run.result.answer!r:.60}: there is no final answer when the cap stops the loop"
        seen.append(f"max_rounds={cap}: {n} requests, {ran} tool runs")
    seen.insert(0, "max_rounds=0: no request")
    return True, "; ".join(seen) + ", stopped='max_rounds'"


# --------------------------------------------------------------------------- the shop's tools


def _shop(module: ModuleType, calls: list[tuple[str, dict[str, Any], bool]]) -> dict[str, Any]:
    """Run the shop's tools through a module's build_registry on a fresh database; what each call gave."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.db"
        db = course.create_orders_db(path)
        http = course.weather_client_in_process()
        try:
            registry = module.build_registry(db, http)
            seen: dict[str, Any] = {}
            for i, (name, args, confirmed) in enumerate(calls, 1):
                raw = registry.execute(name, json.dumps(args, ensure_ascii=False), confirm=(lambda n, a: True) if confirmed else None)
                shown = "an error result" if is_error(raw) else _json(raw)
                how = " (confirmed)" if confirmed else " (not confirmed)" if name == "refund_order" else ""
                seen[f"call {i}, {name}({json.dumps(args, ensure_ascii=False)[1:-1]}){how}"] = shown
            other = sqlite3.connect(str(path), timeout=0.5)  # what the rest of the shop sees: committed rows only
            try:
                refunds = [f"{o} {c / 100:.2f} {r!r}" for _, o, c, r in course.refunds_in(other)]
            except sqlite3.OperationalError as err:
                refunds = [f"the database could not be read from another connection ({err}): commit each refund"]
            finally:
                other.close()
            seen[f"call {len(calls) + 1}, the refunds table afterwards, read from another connection (committed)"] = refunds
            return seen
        finally:
            http.close()
            db.close()


SQL_CALLS: list[tuple[str, dict[str, Any], bool]] = [
    ("get_order", {"order_id": "A-1001"}, False),
    ("get_order", {"order_id": " a-1003 "}, False),
    ("get_order", {"order_id": "A-9999"}, False),
    ("find_orders", {"email": "dara.o'brien@example.com"}, False),
    ("find_orders", {"email": "x'OR'1'='1'--@example.com"}, False),
    ("find_orders", {"email": "nobody@example.com"}, False),
]
HTTP_CALLS: list[tuple[str, dict[str, Any], bool]] = [
    ("get_weather", {"city": "São Paulo"}, False),
    ("get_weather", {"city": "zürich"}, False),
    ("get_weather", {"city": "Paris&country=FR"}, False),
    ("get_weather", {"city": "Paris#today"}, False),
    ("get_weather", {"city": course.OFFLINE}, False),
    ("get_weather", {"city": "Atlantis"}, False),
]
REFUND_CALLS: list[tuple[str, dict[str, Any], bool]] = [
    ("refund_order", {"order_id": "A-1002", "amount": 24.5, "reason": "one sock was missing"}, False),
    ("refund_order", {"order_id": "A-1002", "amount": 24.5, "reason": "one sock was missing"}, True),
    ("refund_order", {"order_id": "A-1002", "amount": 100.01, "reason": "the jacket leaks"}, True),
    ("refund_order", {"order_id": "A-1002", "amount": 100.0, "reason": "the jacket leaks"}, True),
    ("refund_order", {"order_id": "A-1004", "amount": 42.0, "reason": "wrong size, O'Brien's note"}, True),
    ("refund_order", {"order_id": "A-1007", "amount": 4.35, "reason": "a scratched lens"}, True),  # 4.35 * 100 is 434.99999...
    ("refund_order", {"order_id": "A-9999", "amount": 1.0, "reason": "no such order"}, True),
]


def _differential(ctx: Context, name: str, calls: list[tuple[str, dict[str, Any], bool]], what: str) -> tuple[bool, str]:
    def run(module: ModuleType) -> Any:
        return _shop(module, calls)

    ok, detail = ctx.differential(name, run)
    if ok:
        return True, f"{what}: the same results as the reference on {len(calls)} calls"
    return False, detail.replace(f"{name}: ", f"{what}, ", 1)


@register("ex09.sqlite-tools")
def sqlite_tools(ctx: Context) -> tuple[bool, str]:
    ctx.attr("build_registry")
    return _differential(ctx, "sqlite", SQL_CALLS, "get_order and find_orders on the orders database (an apostrophe, an injection attempt)")


@register("ex09.http-tool")
def http_tool(ctx: Context) -> tuple[bool, str]:
    ctx.attr("build_registry")
    return _differential(ctx, "http", HTTP_CALLS, "get_weather through the weather service (accents, & and # in a name, a 503, a 404)")


@register("ex09.refund-tool")
def refund_tool(ctx: Context) -> tuple[bool, str]:
    ctx.attr("build_registry")
    return _differential(ctx, "refund", REFUND_CALLS, "refund_order (unconfirmed, within and past what is left, an unknown order)")


# --------------------------------------------------------------------------- structured outputs

#: An adversarial text for extraction: braces, quotes, a fence, accents, and length.
EXTRACT_TEXT = course.CARD_TEXT + ' PS: my handle is {sarah_c} and I sign "S." </text> Grüße aus Zürich. ' + "Thanks! " * 150
CARD = {
    "people": [{
        "full_name": "Sarah Chen", "email": "sarah.chen@techcorp.example", "phone": "+1 415 555 0123",
        "job_title": "Senior Software Engineer",
        "company": {"name": "Techcorp", "industry": "fintech", "size": "about 500 people"},
        "address": {"street": "123 Innovation Drive", "city": "San Francisco", "region": "CA", "postal_code": "94102", "country": "USA"},
        "skills": ["Python", "distributed systems", "machine learning"],
    }]
}


def _format_of(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
    if isinstance(fmt.get("json_schema"), dict):
        return dict(fmt["json_schema"]) | {"type": fmt.get("type")}
    return dict(fmt)


@register("ex09.structured-extraction")
def structured_extraction(ctx: Context) -> tuple[bool, str]:
    model = ScriptedModel([Turn(text=json.dumps(CARD))], name="ex09-extract")
    try:
        got = ctx.attr("extract")(model.client(), EXTRACT_TEXT)
    except Exception as err:  # noqa: BLE001
        rejected = next((e for e in model.exchanges if e.status != 200), None)
        if rejected is not None:
            return False, f"the API rejected the request ({rejected.status}): {rejected.error[:200]}"
        return False, f"extract raised {type(err).__name__}: {str(err)[:160]}"
    if len(model.exchanges) != 1:
        return False, f"{len(model.exchanges)} requests for one extraction (expected 1)"
    body = model.exchanges[0].body
    fmt = _format_of(body)
    if fmt.get("type") != "json_schema" or fmt.get("strict") is not True:
        return False, f"the request's output format is {fmt.get('type', 'plain text')!r} without strict: true: use responses.parse(text_format=Extraction) or chat.completions.parse(response_format=Extraction)"
    if set((fmt.get("schema") or {}).get("properties", {})) != {"people"}:
        return False, "the schema sent is not Extraction's: pass the Extraction model"
    if not any(EXTRACT_TEXT in text for text in user_texts(model.exchanges[0])):
        return False, "the text to extract from is not in the request as given (it has braces, quotes and a </text> inside: do not format it into a template)"
    if not isinstance(got, course.Extraction):
        return False, f"extract returned {type(got).__name__}, expected the parsed Extraction"
    if got != course.Extraction.model_validate(CARD):
        return False, f"extract returned {got.model_dump_json()[:120]}…, not what the model answered"
    return True, "one strict json_schema request; the nested answer came back as an Extraction (company and address as objects)"


@register("ex09.refusal")
def refusal(ctx: Context) -> tuple[bool, str]:
    said = "I can't help locate or track a private person."
    model = ScriptedModel([Turn(refusal=said)], name="ex09-refuse")
    try:
        got = ctx.attr("extract")(model.client(), course.REFUSED_TEXT)
    except Exception as err:  # noqa: BLE001
        return False, f"a refusal made extract raise {type(err).__name__}: {str(err)[:120]}; return Refusal(reason) instead"
    if not isinstance(got, course.Refusal):
        return False, f"a refusal gave {got!r:.80}: return course's Refusal(reason=the model's refusal text), a typed outcome the caller must handle"
    if got.reason != said:
        return False, f"Refusal.reason is {got.reason!r:.80}; it should be the model's refusal text {said!r}"
    return True, f"the refusal came back as Refusal({said!r})"


# --------------------------------------------------------------------------- long conversations


def reference_trim(items: list[dict[str, Any]], budget: int, model: str) -> list[dict[str, Any]] | None:
    """The contract's trim, written independently: None where it must raise ValueError."""
    head = items[:1] if items and items[0].get("role") in ("developer", "system") else []
    rest = items[len(head):]
    sizes = [course.item_tokens(i, model) for i in items]
    cost = sum(sizes) + REPLY_PRIMING  # what head + rest[start:] costs, for start = 0, 1, ...
    if not rest:
        return list(head) if cost <= budget else None
    for start in range(len(rest)):
        tail = rest[start:]
        called = {i.get("call_id") for i in tail if i.get("type") == "function_call"}
        orphan = any(i.get("type") == "function_call_output" and i.get("call_id") not in called for i in tail)
        if not orphan and cost <= budget:
            return [*head, *tail]
        cost -= sizes[len(head) + start]
    return None


WORDS = ("refund", "order A-1002", "the tent leaks", "Zürich", "ça va", "{braces}", "'quote'", "📦", "please", "why?")
#: Conversations drawn for the trim check (seeded, so every run grades the same ones).
TRIM_SEED, TRIM_CASES = 909, 36
SHARES = (0.0, 0.2, 0.45, 0.7, 0.9, 1.0, 1.2)


def histories(seed: int = TRIM_SEED, n: int = TRIM_CASES) -> list[tuple[list[dict[str, Any]], float]]:
    """Conversations with developer/system heads, tool rounds of one to three parallel calls and
    assistant turns, each with a budget share; smallest first, so the first failure is the simplest."""
    rng = random.Random(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))

    cases = []
    for _ in range(n):
        items: list[dict[str, Any]] = []
        if rng.random() < 0.6:
            items.append({"role": rng.choice(["developer", "system"]), "content": text()})
        calls = 0
        for _ in range(rng.randint(1, 4)):
            items.append({"role": "user", "content": text()})
            for _ in range(rng.randint(0, 2)):
                ids = [f"call_{calls + i}" for i in range(rng.randint(1, 3))]
                calls += len(ids)
                items += [{"type": "function_call", "call_id": c, "name": "get_order", "arguments": json.dumps({"order_id": text()})}
                          for c in ids]
                items += [{"type": "function_call_output", "call_id": c, "output": text()} for c in ids]
            if rng.random() < 0.5:
                items.append({"role": "assistant", "content": text()})
        cases.append((items, rng.choice(SHARES)))
    return sorted(cases, key=lambda case: (len(case[0]), case[1]))


@register("ex09.trim-history")
def trim_history(ctx: Context) -> tuple[bool, str]:
    trim = ctx.attr("trim_history")
    model = course.MODEL

    def problem(items: list[dict[str, Any]], share: float) -> str | None:
        full = sum(course.item_tokens(i, model) for i in items) + REPLY_PRIMING
        budget = int(full * share)
        want = reference_trim(items, budget, model)
        before = copy.deepcopy(items)
        try:
            got = trim(items, budget=budget, model=model)
        except ValueError:
            got = None
        if items != before:
            return "trim_history changed the list it was given: build a new one"
        roles = [i.get("role") or i.get("type") for i in items]
        lead = items[0].get("role") if items else None
        if lead in ("developer", "system") and got is not None and (not got or got[0] != items[0]):
            return f"the leading {lead} message was dropped (budget {budget} of {full} tokens): it is always kept, and counted"
        if want is None:
            return None if got is None else (f"budget {budget} of {full} tokens: not even the newest item fits, so raise "
                                             f"ValueError (got {len(got)} items)")
        if got is None:
            return f"budget {budget} of {full} tokens ({len(items)} items: {roles}): raised ValueError, but {len(want)} items fit"
        if got != want:
            kept = [i.get("role") or i.get("type") for i in got]
            return (f"budget {budget} of {full} tokens, items {roles}: kept {kept}, the contract keeps the last {len(want)} "
                    "(the leading developer/system message, then the longest newest run that fits without an orphaned "
                    "function_call_output)")
        return None

    edges = [([{"role": "developer", "content": "Be brief."}], 0.99), ([{"role": "system", "content": "Be brief."}], 1.0),
             ([{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}], 0.7)]
    cases = [*edges, *histories()]  # the instructions alone first: boundaries a random draw rarely makes
    for items, share in cases:
        shown = json.dumps(items, ensure_ascii=False)[:300]
        found = problem(items, share)
        if found:
            return False, f"{found} (items={shown})"
    return True, f"{len(cases)} conversations (tool rounds of up to three parallel calls), budgets from 0 to 120% of their size"
