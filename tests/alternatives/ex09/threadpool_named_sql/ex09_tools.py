"""Exercise 09, an alternative: a generator of free-form paths, multiprocessing ThreadPool with
apply_async, named SQL placeholders with cursor.description, a conditional INSERT ... SELECT refund,
a while loop, create + model_validate_json extraction, a deque trim.

Exercise 09: tools the model can call safely, structured outputs, and long conversations.

You build four things (the contract is in labkit/course/ex09.py, ``CONTRACT``):

1. ``ToolRegistry``: tools declared once, as a typed function plus a pydantic model for its
   arguments; strict JSON schemas generated from them; ``execute`` that turns every failure
   (unknown tool, bad arguments, an exception, a timeout, a side effect nobody confirmed) into an
   error result the model can read, instead of a crash.
2. ``build_registry``: the shop's four tools, on a real SQLite database of orders and a real HTTP
   weather service (parameterized SQL; URL parameters encoded by the HTTP client).
3. ``run_tools``: the loop. It sends the conversation and the tools, runs every tool call of an
   answer, sends each result back with its call id, and stops at a final answer or after
   ``max_rounds`` requests, saying which.
4. ``extract`` (Structured Outputs with ``parse``, a refusal as a typed outcome) and
   ``trim_history`` (a long conversation cut to a token budget without orphaning a tool call).

The course's models: the loop runs on ``MODEL`` (the everyday model) through the Responses API,
where function tools work at every effort; Chat Completions takes function tools only at
reasoning effort "none" on ``CHAT_MODEL``. Edit the TODOs, then run `labkit check ex09` or the
last cell of notebooks/09_tools_and_structured_outputs.ipynb. Keep the names the starter gives.
"""

import inspect
import json
import multiprocessing
import multiprocessing.pool
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pydantic
from openai import OpenAI
from openai.lib._parsing._responses import type_to_text_format_param
from pydantic import BaseModel

# The tools' arguments, the loop's request and result types, the extraction schema and the
# token counter for trimming: the lesson's, given (see labkit/course/ex09.py).
from labkit.course.ex09 import (
    CONTRACT,
    EFFORT,
    MAX_ROUNDS,
    MODEL,
    ORDER_FIELDS,
    TOOL_TIMEOUT,
    WEATHER_PATH,
    Confirm,
    Extraction,
    FindOrders,
    GetOrder,
    GetWeather,
    RefundOrder,
    Refusal,
    RunResult,
    ToolOutput,
    extract_input,
    history_tokens,
    opening,
    responses_request,
)

#: The output limit of one extraction (a few people, nested).
EXTRACT_MAX_OUTPUT = 2_000


# --------------------------------------------------------------------------- given


@dataclass(frozen=True)
class Tool:
    """One registered tool: what the model sees (name, description, arguments) and how to run it."""

    name: str
    description: str
    args: type[BaseModel]
    fn: Callable[[Any], Any]
    side_effect: bool
    timeout: float


def error_result(message: str) -> str:
    """What the model receives when a call could not run: ``{"error": message}`` as JSON text."""
    return json.dumps({CONTRACT.error_key: message}, ensure_ascii=False)


# --------------------------------------------------------------------------- yours: the registry


def strict_schema(args: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema of a tool's arguments, as the API needs it.

    Raise TypeError if some field is a free-form dict: a strict schema cannot express one (every
    object must list its properties and forbid others), and the API would answer 400.
    """
    schema: dict[str, Any] = openai.pydantic_function_tool(args)["function"]["parameters"]

    def free_forms(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            is_object = node.get("type") == "object" or "properties" in node
            if is_object and node.get("additionalProperties") is not False:
                yield path
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    for name, sub in value.items():
                        yield from free_forms(sub, name)
                elif key in ("$defs", "definitions") and isinstance(value, dict):
                    yield from free_forms(list(value.values()), path)
                elif key in ("anyOf", "allOf", "oneOf", "items"):
                    yield from free_forms(value, path)
        elif isinstance(node, list):
            for sub in node:
                yield from free_forms(sub, path)

    bad = list(free_forms(schema, "(root)"))
    if bad:
        raise TypeError(f"{args.__name__} has free-form dict field(s) {', '.join(bad)}: use a model with named fields")
    return schema


class ToolRegistry:
    """Tools declared once; schemas for the API; safe execution of the model's calls."""

    def __init__(self, default_timeout: float = TOOL_TIMEOUT) -> None:
        self.tools: dict[str, Tool] = {}
        self.default_timeout = default_timeout

    def tool(self, args: type[BaseModel], *, side_effect: bool = False,
             timeout: float | None = None) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Decorator: register a function that takes one ``args`` instance as a tool.

        The tool's name is the function's name, its description the function's docstring.
        ``side_effect=True`` marks a tool that changes something (sends, pays, deletes): it runs
        only after ``confirm`` says yes. ``timeout`` (seconds) overrides the registry's default.
        """
        ### BEGIN SOLUTION: register a tool
        ### TODO: call strict_schema(args) now (so a bad tool fails at registration, not in front
        ### of the model); return a decorator that stores Tool(fn.__name__, inspect.getdoc(fn) or "",
        ### args, fn, side_effect, the timeout if given else self.default_timeout) in self.tools and
        ### returns fn.
        strict_schema(args)

        def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            limit = self.default_timeout if timeout is None else timeout
            self.tools[fn.__name__] = Tool(fn.__name__, inspect.getdoc(fn) or "", args, fn, side_effect, limit)
            return fn

        return register
        ### END SOLUTION

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        """Every tool for the API: ``"responses"`` or ``"chat"`` (Chat Completions' nested form)."""
        ### BEGIN SOLUTION: the tools in the API's format, strict
        ### TODO: for each tool, {"name", "description", "parameters": strict_schema(tool.args),
        ### "strict": True}; Responses wants it flat with "type": "function", Chat Completions as
        ### {"type": "function", "function": {...}}.
        out = []
        for t in self.tools.values():
            fn = {"name": t.name, "description": t.description, "parameters": strict_schema(t.args), "strict": True}
            out.append({"type": "function", **fn} if api == "responses" else {"type": "function", "function": fn})
        return out
        ### END SOLUTION

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        """Run one tool call; return its result as JSON text, or an error result. Never raises."""
        if name not in self.tools:
            return error_result(f"no tool called {name!r} (available: {sorted(self.tools)})")
        tool = self.tools[name]
        try:
            args = tool.args.model_validate_json(arguments)
        except pydantic.ValidationError as err:
            fields = ", ".join(f"{'/'.join(str(p) for p in e['loc']) or '(whole)'} ({e['msg']})" for e in err.errors())
            return error_result(f"bad arguments: {fields}")
        if tool.side_effect:
            if confirm is None:
                return error_result(f"{name} needs confirmation and none was asked for")
            if confirm(name, args) is not True:
                return error_result(f"{name} declined by the customer")
        pool = multiprocessing.pool.ThreadPool(processes=1)
        pending = pool.apply_async(tool.fn, (args,))
        pool.close()  # no more work; do not join: a hung tool must not hold us
        try:
            value = pending.get(timeout=tool.timeout)
        except multiprocessing.TimeoutError:
            return error_result(f"{name} timed out ({tool.timeout} s)")
        except Exception as err:  # noqa: BLE001 - the model is told, the loop goes on
            return error_result(f"{name} raised {err.__class__.__name__}: {err}")
        return json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- yours: the shop's tools


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    """The shop's tools on a real orders database and the weather service (``http`` has its base URL).

    get_order -> the order as a JSON object (ORDER_FIELDS, total in currency units);
    find_orders -> the customer's orders, newest first (SUMMARY_FIELDS each);
    get_weather -> the service's JSON object; refund_order (a side effect) -> REFUND_FIELDS.
    A missing order, an unknown city or a refund larger than what is left raise an exception.
    """
    registry = ToolRegistry(default_timeout=timeout)

    def rows(sql: str, **params: Any) -> list[dict[str, Any]]:
        cursor = db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    @registry.tool(GetOrder)
    def get_order(args: GetOrder) -> dict[str, Any]:
        """Look up one order by its id: customer, status, total, date and items."""
        found = rows("SELECT order_id, customer, email, status, total_cents / 100.0 AS total, currency, placed_on, items "
                     "FROM orders WHERE order_id = :order_id", order_id=args.order_id)
        if not found:
            raise KeyError(f"order {args.order_id} does not exist")
        return {key: found[0][key] for key in ORDER_FIELDS}

    @registry.tool(FindOrders)
    def find_orders(args: FindOrders) -> list[dict[str, Any]]:
        """Find a customer's orders by email address, newest first."""
        return rows("SELECT order_id, status, total_cents / 100.0 AS total, placed_on FROM orders "
                    "WHERE email = :email ORDER BY placed_on DESC", email=args.email)

    @registry.tool(GetWeather)
    def get_weather(args: GetWeather) -> dict[str, Any]:
        """The current weather in a city (temperature in Celsius, conditions, wind)."""
        answer = http.get(WEATHER_PATH, params=[("city", args.city)])
        body = answer.json()
        if answer.status_code == 200:
            return dict(body)
        raise RuntimeError(f"weather service error {answer.status_code}: {body.get('error')}")

    @registry.tool(RefundOrder, side_effect=True)
    def refund_order(args: RefundOrder) -> dict[str, Any]:
        """Refund money on an order (all or part of what was paid). Needs the customer's confirmation."""
        cents = int(round(args.amount * 100))
        with db:
            inserted = db.execute(
                "INSERT INTO refunds (order_id, amount_cents, reason) "
                "SELECT :oid, :cents, :reason WHERE :cents <= "
                "(SELECT total_cents FROM orders WHERE order_id = :oid) - "
                "(SELECT COALESCE(SUM(amount_cents), 0) FROM refunds WHERE order_id = :oid)",
                {"oid": args.order_id, "cents": cents, "reason": args.reason},
            )
        if inserted.rowcount != 1:
            exists = rows("SELECT 1 AS one FROM orders WHERE order_id = :oid", oid=args.order_id)
            raise ValueError(f"cannot refund {args.amount} on {args.order_id}" + ("" if exists else ": no such order"))
        return {"refund_id": inserted.lastrowid, "order_id": args.order_id, "amount": cents / 100, "status": "refunded"}

    return registry


# --------------------------------------------------------------------------- yours: the loop


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    """Answer ``question`` with the registry's tools: at most ``max_rounds`` requests to the model."""
    conversation: list[Any] = opening(question)
    schemas = registry.schemas("responses")
    done: list[ToolOutput] = []
    sent = 0
    while sent < max_rounds:
        reply = client.responses.create(**responses_request(conversation, schemas))
        sent += 1
        wanted = [item for item in reply.output if item.type == "function_call"]
        if not wanted:
            return RunResult(answer=reply.output_text, stopped="answer", rounds=sent, outputs=done)
        if sent == max_rounds:
            break
        conversation.extend(reply.output)
        for call in wanted:
            text = registry.execute(call.name, call.arguments, confirm)
            done.append(ToolOutput(call.call_id, call.name, text))
            conversation.append({"type": "function_call_output", "call_id": call.call_id, "output": text})
    return RunResult(answer=None, stopped="max_rounds", rounds=sent, outputs=done)


# --------------------------------------------------------------------------- yours: structured outputs


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    """Every person in ``text`` as an Extraction (Structured Outputs), or a Refusal if the model declines."""
    response = client.responses.create(model=MODEL, input=extract_input(text), text={"format": type_to_text_format_param(Extraction)},
                                       reasoning={"effort": EFFORT}, max_output_tokens=EXTRACT_MAX_OUTPUT)
    refusals = [part.refusal for item in response.output if item.type == "message"
                for part in item.content if part.type == "refusal"]
    if refusals:
        return Refusal(" ".join(refusals))
    try:
        return Extraction.model_validate_json(response.output_text)
    except pydantic.ValidationError:
        return Refusal("the model's answer did not match the schema")


# --------------------------------------------------------------------------- yours: long conversations


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    """The newest part of a conversation that fits ``budget`` tokens (history_tokens).

    A leading developer or system message is always kept. Of the rest, keep the longest run of
    newest items that fits, never starting inside a tool round (a function_call_output whose
    function_call was cut). Raise ValueError when not even the newest item fits. Never change
    ``items``.
    """
    keep_head = bool(items) and items[0].get("role") in {"system", "developer"}
    head = [items[0]] if keep_head else []
    window = deque(items[1:] if keep_head else items)
    while True:
        open_calls = {i.get("call_id") for i in window if i.get("type") == "function_call"}
        orphan = any(i.get("type") == "function_call_output" and i.get("call_id") not in open_calls for i in window)
        nothing_left = not window and len(items) > len(head)
        if not orphan and not nothing_left and history_tokens(head + list(window), model) <= budget:
            return head + list(window)
        if not window:
            break
        window.popleft()
    raise ValueError(f"nothing fits in {budget} tokens")
