"""Exercise 09, an alternative: free-form dicts found from the type annotations (ValueError), one
shared thread pool, explicit tool_choice/parallel_tool_calls, chat.completions.parse for the
extraction, and a trim that finds the fitting suffix with prefix sums and bisect."""

import bisect
import concurrent.futures
import inspect
import itertools
import json
import sqlite3
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
import pydantic
from openai import OpenAI
from pydantic import BaseModel

from labkit.course.ex09 import (
    CONTRACT,
    EFFORT,
    MAX_ROUNDS,
    MODEL,
    ORDER_FIELDS,
    REFUND_FIELDS,
    SUMMARY_FIELDS,
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
    item_tokens,
    opening,
    responses_request,
    wait_for,
)

EXTRACT_MAX_OUTPUT = 2_000
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="tool")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    fn: Callable[[Any], Any]
    side_effect: bool
    timeout: float


def error_result(message: str) -> str:
    return json.dumps({CONTRACT.error_key: message}, ensure_ascii=False)


def _free_form(annotation: Any, path: str) -> str | None:
    """The path of a dict hidden in a type annotation (through unions, lists and nested models)."""
    origin = typing.get_origin(annotation)
    if annotation is dict or origin is dict:
        return path
    if origin in (typing.Union, types.UnionType, list, tuple, set, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _free_form(arg, path)
            if found:
                return found
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            found = _free_form(info.annotation, f"{path}.{name}" if path else name)
            if found:
                return found
    return None


def strict_schema(args: type[BaseModel]) -> dict[str, Any]:
    found = _free_form(args, "")
    if found:
        raise ValueError(f"field {found!r} of {args.__name__} is a dict: strict function schemas cannot hold one")
    return dict(openai.pydantic_function_tool(args)["function"]["parameters"])


class ToolRegistry:
    def __init__(self, default_timeout: float = TOOL_TIMEOUT) -> None:
        self.tools: dict[str, Tool] = {}
        self.default_timeout = default_timeout

    def tool(self, args: type[BaseModel], *, side_effect: bool = False,
             timeout: float | None = None) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        parameters = strict_schema(args)
        limit = self.default_timeout if timeout is None else timeout

        def decorate(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self.tools[fn.__name__] = Tool(fn.__name__, inspect.getdoc(fn) or "", args, fn, side_effect, limit)
            self._params = getattr(self, "_params", {}) | {fn.__name__: parameters}
            return fn

        return decorate

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        result = []
        for name, tool in self.tools.items():
            spec = {"name": name, "description": tool.description, "strict": True, "parameters": self._params[name]}
            result.append({"type": "function", "function": spec} if api == "chat" else {**spec, "type": "function"})
        return result

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        try:
            tool = self.tools[name]
        except KeyError:
            return error_result(f"{name} is not a tool here; use one of: {', '.join(self.tools)}")
        try:
            args = tool.args.model_validate_json(arguments)
        except pydantic.ValidationError as err:
            return error_result("; ".join(f"{'/'.join(str(x) for x in e['loc']) or '(body)'} - {e['msg']}" for e in err.errors()))
        allowed = not tool.side_effect or (confirm is not None and confirm(name, args) is True)
        if not allowed:
            return error_result(f"{name} changes data and was not approved, so it did not run")
        future = _POOL.submit(tool.fn, args)
        try:
            value = wait_for(future, tool.timeout)
        except TimeoutError:
            future.cancel()
            return error_result(f"{name}: timeout after {tool.timeout} seconds")
        except Exception as err:  # noqa: BLE001
            return error_result(f"{name} raised {err.__class__.__name__}: {err}")
        return json.dumps(value, ensure_ascii=False)


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    registry = ToolRegistry(default_timeout=timeout)

    @registry.tool(GetOrder)
    def get_order(args: GetOrder) -> dict[str, Any]:
        """Details of one order: customer, status, total, currency, date, items."""
        found = db.execute("SELECT order_id, customer, email, status, total_cents / 100.0, currency, placed_on, items "
                           "FROM orders WHERE order_id = :id", {"id": args.order_id}).fetchone()
        if not found:
            raise LookupError("unknown order " + args.order_id)
        return dict(zip(ORDER_FIELDS, found))

    @registry.tool(FindOrders)
    def find_orders(args: FindOrders) -> list[dict[str, Any]]:
        """A customer's orders by email, newest first."""
        cur = db.execute("SELECT order_id, status, total_cents / 100.0, placed_on FROM orders WHERE email = :email "
                         "ORDER BY date(placed_on) DESC", {"email": args.email})
        return [dict(zip(SUMMARY_FIELDS, row)) for row in cur]

    @registry.tool(GetWeather)
    def get_weather(args: GetWeather) -> dict[str, Any]:
        """Today's weather for a city."""
        reply = http.get(WEATHER_PATH, params={"city": args.city})
        reply.raise_for_status()
        return dict(reply.json())

    @registry.tool(RefundOrder, side_effect=True)
    def refund_order(args: RefundOrder) -> dict[str, Any]:
        """Refund an amount on an order. Changes money, so it needs confirmation."""
        cents = int(round(args.amount * 100))
        left = db.execute("SELECT o.total_cents - COALESCE((SELECT SUM(r.amount_cents) FROM refunds r WHERE r.order_id = o.order_id), 0) "
                          "FROM orders o WHERE o.order_id = ?", (args.order_id,)).fetchone()
        if left is None:
            raise LookupError("unknown order " + args.order_id)
        if cents > left[0]:
            raise ValueError(f"cannot refund {cents / 100:.2f}: {left[0] / 100:.2f} left")
        with db:
            new_id = db.execute("INSERT INTO refunds (order_id, amount_cents, reason) VALUES (?, ?, ?)",
                                (args.order_id, cents, args.reason)).lastrowid
        return dict(zip(REFUND_FIELDS, (new_id, args.order_id, cents / 100, "refunded")))

    return registry


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    items: list[Any] = opening(question)
    tools = registry.schemas("responses")
    results: list[ToolOutput] = []
    for n in itertools.count(1):
        if n > max_rounds:
            return RunResult(None, "max_rounds", max_rounds, results)
        response = client.responses.create(**responses_request(items, tools), tool_choice="auto", parallel_tool_calls=True)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            return RunResult(response.output_text, "answer", n, results)
        if n == max_rounds:
            return RunResult(None, "max_rounds", n, results)
        items = [*items, *response.output]
        for call in calls:
            out = registry.execute(call.name, call.arguments, confirm=confirm)
            results.append(ToolOutput(call.call_id, call.name, out))
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": out})
    raise AssertionError("unreachable")


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    completion = client.chat.completions.parse(model=MODEL, messages=extract_input(text), response_format=Extraction,
                                               reasoning_effort=EFFORT, max_completion_tokens=EXTRACT_MAX_OUTPUT)
    message = completion.choices[0].message
    if message.refusal:
        return Refusal(message.refusal)
    if message.parsed is None:
        return Refusal("the model gave no parsable answer")
    return message.parsed


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    """Suffix costs are non-increasing: bisect finds the first start that fits, then skip orphaning starts."""
    lead = 1 if items and items[0].get("role") in {"developer", "system"} else 0
    sizes = [item_tokens(i, model) for i in items]
    base = sum(sizes[:lead]) + 3
    rest = items[lead:]
    # suffix[k] = tokens of rest[k:]; negated so it ascends for bisect
    suffix = list(itertools.accumulate(reversed(sizes[lead:]), initial=0))[::-1]
    if base > budget:
        raise ValueError("the budget is smaller than the instructions")
    if not rest:
        return items[:lead]
    first = bisect.bisect_left([-s for s in suffix], -(budget - base))
    for start in range(first, len(rest)):
        tail = rest[start:]
        called = {i.get("call_id") for i in tail if i.get("type") == "function_call"}
        if not any(i.get("type") == "function_call_output" and i.get("call_id") not in called for i in tail):
            return items[:lead] + tail
    raise ValueError("nothing fits the budget")
