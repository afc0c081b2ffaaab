"""Exercise 09, an alternative: match on the SDK's output item classes, functools.partial registration,
concurrent.futures.wait for time limits, a cursor-level sqlite3.Row factory, an explicit BEGIN IMMEDIATE /
ROLLBACK refund, a bisect over suffix costs for trimming.

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

import bisect
import concurrent.futures
import functools
import inspect
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pydantic
from openai import OpenAI
from openai.types.responses import ResponseFunctionToolCall
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
    item_tokens,
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
    params: dict[str, Any] = openai.pydantic_function_tool(args)["function"]["parameters"]
    todo: list[tuple[str, Any]] = [("arguments", params)] + [("arguments", d) for d in (params.get("$defs") or {}).values()]
    while todo:
        where, node = todo.pop()
        match node:
            case {"type": "object", **rest} if rest.get("additionalProperties") is not False:
                raise TypeError(f"{args.__name__}.{where}: a free-form dict cannot be a strict schema")
            case {"properties": dict()} if node.get("additionalProperties") is not False:
                raise TypeError(f"{args.__name__}.{where}: a free-form dict cannot be a strict schema")
            case dict():
                todo.extend((name, sub) for name, sub in (node.get("properties") or {}).items())
                todo.extend((where, sub) for sub in node.get("anyOf") or [])
                todo.extend((where, sub) for sub in node.get("allOf") or [])
                if isinstance(node.get("items"), dict):
                    todo.append((where, node["items"]))
    return params


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
        strict_schema(args)
        return functools.partial(self._add, args=args, side_effect=side_effect,
                                 timeout=self.default_timeout if timeout is None else timeout)

    def _add(self, fn: Callable[[Any], Any], *, args: type[BaseModel], side_effect: bool, timeout: float) -> Callable[[Any], Any]:
        self.tools[fn.__name__] = Tool(name=fn.__name__, description=inspect.getdoc(fn) or "", args=args, fn=fn,
                                       side_effect=side_effect, timeout=timeout)
        return fn

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        """Every tool for the API: ``"responses"`` or ``"chat"`` (Chat Completions' nested form)."""
        def describe(tool: Tool) -> dict[str, Any]:
            return {"name": tool.name, "description": tool.description, "parameters": strict_schema(tool.args), "strict": True}

        match api:
            case "chat":
                return [{"type": "function", "function": describe(tool)} for tool in self.tools.values()]
            case _:
                return [{"type": "function"} | describe(tool) for tool in self.tools.values()]

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        """Run one tool call; return its result as JSON text, or an error result. Never raises."""
        try:
            tool = self.tools[name]
        except KeyError:
            return error_result(f"there is no tool {name!r}; use one of: {', '.join(sorted(self.tools))}")
        try:
            args = tool.args.model_validate_json(arguments)
        except pydantic.ValidationError as problem:
            return error_result("the arguments do not validate: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problem.errors()))
        allowed = not tool.side_effect or (confirm is not None and confirm(name, args) is True)
        if not allowed:
            return error_result(f"{name} changes something and was not confirmed, so it did not run")
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tool-{name}")
        try:
            future = executor.submit(tool.fn, args)
            finished, _ = concurrent.futures.wait([future], timeout=tool.timeout)
            if not finished:
                return error_result(f"{name} timed out: no result within {tool.timeout} seconds")
            problem_ = future.exception()
            if problem_ is not None:
                return error_result(f"{name}: {problem_}")
            return json.dumps(future.result(), ensure_ascii=False)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------- yours: the shop's tools


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    """The shop's tools on a real orders database and the weather service (``http`` has its base URL).

    get_order -> the order as a JSON object (ORDER_FIELDS, total in currency units);
    find_orders -> the customer's orders, newest first (SUMMARY_FIELDS each);
    get_weather -> the service's JSON object; refund_order (a side effect) -> REFUND_FIELDS.
    A missing order, an unknown city or a refund larger than what is left raise an exception.
    """
    registry = ToolRegistry(default_timeout=timeout)

    def query(sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        cursor = db.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, params).fetchall()

    @registry.tool(GetOrder)
    def get_order(args: GetOrder) -> dict[str, Any]:
        """Look up one order by its id: customer, status, total, date and items."""
        found = query("SELECT * FROM orders WHERE order_id = ?", (args.order_id,))
        if not found:
            raise LookupError(f"no order with id {args.order_id}")
        row = found[0]
        return {field: (row["total_cents"] / 100 if field == "total" else row[field]) for field in ORDER_FIELDS}

    @registry.tool(FindOrders)
    def find_orders(args: FindOrders) -> list[dict[str, Any]]:
        """All orders placed with an email address, newest first."""
        found = query("SELECT * FROM orders WHERE email = ?", (args.email,))
        found.sort(key=lambda r: r["placed_on"], reverse=True)
        return [{"order_id": r["order_id"], "status": r["status"], "total": r["total_cents"] / 100, "placed_on": r["placed_on"]}
                for r in found]

    @registry.tool(GetWeather)
    def get_weather(args: GetWeather) -> dict[str, Any]:
        """Current weather for a city: temperature (°C), conditions, wind speed."""
        response = http.get(WEATHER_PATH, params={"city": args.city})
        match response.status_code:
            case 200:
                return dict(response.json())
            case code:
                raise LookupError(f"weather service {code}: {response.json().get('error', 'no details')}")

    @registry.tool(RefundOrder, side_effect=True)
    def refund_order(args: RefundOrder) -> dict[str, Any]:
        """Refund all or part of an order to the customer (moves money; the customer must confirm)."""
        cents = round(args.amount * 100)
        db.execute("BEGIN IMMEDIATE")
        try:
            total = db.execute("SELECT total_cents FROM orders WHERE order_id = ?", (args.order_id,)).fetchone()
            if total is None:
                raise LookupError(f"no order with id {args.order_id}")
            refunded = db.execute("SELECT TOTAL(amount_cents) FROM refunds WHERE order_id = ?", (args.order_id,)).fetchone()[0]
            left = total[0] - int(refunded)
            if cents > left:
                raise ValueError(f"only {left / 100:.2f} is left to refund on {args.order_id}")
            new_id = db.execute("INSERT INTO refunds (order_id, amount_cents, reason) VALUES (?, ?, ?)",
                                (args.order_id, cents, args.reason)).lastrowid
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return {"refund_id": new_id, "order_id": args.order_id, "amount": cents / 100, "status": "refunded"}

    return registry


# --------------------------------------------------------------------------- yours: the loop


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    """Answer ``question`` with the registry's tools: at most ``max_rounds`` requests to the model."""
    history: list[Any] = opening(question)
    tools = registry.schemas("responses")
    results: list[ToolOutput] = []
    for number in range(1, max_rounds + 1):
        response = client.responses.create(**responses_request(history, tools))
        calls: list[ResponseFunctionToolCall] = []
        for item in response.output:
            match item:
                case ResponseFunctionToolCall():
                    calls.append(item)
        if not calls:
            return RunResult(response.output_text, "answer", number, results)
        if number < max_rounds:
            history = [*history, *response.output]
            for call in calls:
                sent = registry.execute(call.name, call.arguments, confirm=confirm)
                results.append(ToolOutput(call.call_id, call.name, sent))
                history.append({"type": "function_call_output", "call_id": call.call_id, "output": sent})
    return RunResult(None, "max_rounds", max_rounds, results)


# --------------------------------------------------------------------------- yours: structured outputs


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    """Every person in ``text`` as an Extraction (Structured Outputs), or a Refusal if the model declines."""
    parsed = client.responses.parse(model=MODEL, input=extract_input(text), text_format=Extraction,
                                    reasoning={"effort": EFFORT}, max_output_tokens=EXTRACT_MAX_OUTPUT)
    if parsed.output_parsed is not None:
        return parsed.output_parsed
    reason = next((part.refusal for item in parsed.output if item.type == "message"
                   for part in item.content if part.type == "refusal"), None)
    return Refusal(reason or "no structured answer came back")


# --------------------------------------------------------------------------- yours: long conversations


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    """The newest part of a conversation that fits ``budget`` tokens (history_tokens).

    A leading developer or system message is always kept. Of the rest, keep the longest run of
    newest items that fits, never starting inside a tool round (a function_call_output whose
    function_call was cut). Raise ValueError when not even the newest item fits. Never change
    ``items``.
    """
    lead = 1 if items and items[0].get("role") in ("developer", "system") else 0
    head, rest = items[:lead], items[lead:]
    base = history_tokens(head, model)
    if not rest:
        if base > budget:
            raise ValueError("even the instructions do not fit")
        return [*head]
    # suffix[k] = tokens of rest[k:] (each item counted once): decreasing in k
    costs = [item_tokens(i, model) for i in rest]
    suffix = [0] * (len(rest) + 1)
    for k in range(len(rest) - 1, -1, -1):
        suffix[k] = suffix[k + 1] + costs[k]
    # the first k whose tail fits: bisect on the increasing sequence -suffix[k]
    negated = [-s for s in suffix[:-1]]
    k = bisect.bisect_left(negated, -(budget - base))
    while k < len(rest):
        tail = rest[k:]
        ids = {i.get("call_id") for i in tail if i.get("type") == "function_call"}
        if all(i.get("call_id") in ids for i in tail if i.get("type") == "function_call_output"):
            return [*head, *tail]
        k += 1
    raise ValueError(f"the newest item alone is over {budget} tokens")
