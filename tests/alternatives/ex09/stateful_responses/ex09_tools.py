"""Exercise 09, another valid solution: the API keeps the conversation (previous_response_id).

Differences from the reference: after the first round only the new function_call_output items are
sent, with previous_response_id; the parallel calls of an answer run concurrently (results still in
call order); tools are methods of a Shop class; schemas come from the SDK's Responses helper; the
trim cuts at turn boundaries found first.
"""

import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai import OpenAI
from pydantic import BaseModel, ValidationError

from labkit.course.ex09 import (
    EFFORT,
    INSTRUCTIONS,
    MAX_OUTPUT,
    MAX_ROUNDS,
    MODEL,
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
)


def _free_form(schema: Any, name: str = "") -> str | None:
    """The first field whose value is a free-form object, if any."""
    if isinstance(schema, list):
        return next((f for f in (_free_form(s, name) for s in schema) if f), None)
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("additionalProperties"), dict) or (schema.get("type") == "object" and "properties" not in schema):
        return name or "the arguments"
    for key, value in schema.items():
        found = _free_form(value, name) if key != "properties" else next(
            (f for f in (_free_form(v, k) for k, v in value.items()) if f), None)
        if found:
            return found
    return None


@dataclass
class Spec:
    args: type[BaseModel]
    run: Callable[[Any], Any]
    side_effect: bool
    timeout: float
    tool: dict[str, Any] = field(default_factory=dict)


class ToolRegistry:
    def __init__(self, default_timeout: float = TOOL_TIMEOUT) -> None:
        self.default_timeout = default_timeout
        self.specs: dict[str, Spec] = {}

    def tool(self, args: type[BaseModel], *, side_effect: bool = False,
             timeout: float | None = None) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        loose = _free_form(openai.pydantic_responses_function_tool(args)["parameters"])
        if loose:
            raise TypeError(f"{args.__name__}.{loose}: free-form dicts cannot be strict")

        def decorate(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            tool = dict(openai.pydantic_responses_function_tool(args, name=fn.__name__, description=(fn.__doc__ or "").strip()))
            tool["strict"] = True
            self.specs[fn.__name__] = Spec(args, fn, side_effect, timeout if timeout is not None else self.default_timeout, tool)
            return fn

        return decorate

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        tools = [dict(s.tool) for s in self.specs.values()]
        if api == "responses":
            return tools
        return [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}} for t in tools]

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        spec = self.specs.get(name)
        if spec is None:
            return json.dumps({"error": f"{name} is not a tool I have (I have: {' / '.join(self.specs)})"})
        try:
            args = spec.args.model_validate_json(arguments)
        except ValidationError as err:
            return json.dumps({"error": err.json(include_url=False, include_input=False)})
        if spec.side_effect:
            approved = confirm(name, args) if confirm is not None else False
            if approved is not True:
                return json.dumps({"error": "not confirmed by the user, so nothing was done"})
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = spec.run(args)
            except Exception as err:  # noqa: BLE001
                box["error"] = f"{type(err).__name__}: {err}"

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        worker.join(spec.timeout)
        if worker.is_alive():
            return json.dumps({"error": f"{name} timed out"})
        if "error" in box:
            return json.dumps({"error": box["error"]})
        return json.dumps(box["value"], ensure_ascii=False)


class Shop:
    def __init__(self, db: sqlite3.Connection, http: httpx2.Client) -> None:
        self.db, self.http = db, http

    def get_order(self, args: GetOrder) -> dict[str, Any]:
        """Look an order up by id."""
        row = self.db.execute("SELECT order_id, customer, email, status, total_cents / 100.0, currency, placed_on, items "
                              "FROM orders WHERE order_id = ?", [args.order_id]).fetchone()
        if row is None:
            raise LookupError("unknown order")
        keys = ("order_id", "customer", "email", "status", "total", "currency", "placed_on", "items")
        return dict(zip(keys, row))

    def find_orders(self, args: FindOrders) -> list[dict[str, Any]]:
        """A customer's orders by email, latest first."""
        rows = self.db.execute("SELECT order_id, status, total_cents / 100.0, placed_on FROM orders WHERE email = ? "
                               "ORDER BY placed_on DESC", [args.email]).fetchall()
        return [dict(zip(("order_id", "status", "total", "placed_on"), r)) for r in rows]

    def get_weather(self, args: GetWeather) -> dict[str, Any]:
        """Current conditions in a city."""
        reply = self.http.get(httpx2.URL(WEATHER_PATH, params={"city": args.city}))
        if reply.is_error:
            raise RuntimeError(reply.json()["error"])
        data: dict[str, Any] = reply.json()
        return data

    def refund_order(self, args: RefundOrder) -> dict[str, Any]:
        """Refund (part of) an order. Requires the customer's confirmation."""
        cents = round(args.amount * 100)
        with self.db:
            total = self.db.execute("SELECT total_cents FROM orders WHERE order_id = ?", [args.order_id]).fetchone()
            done = self.db.execute("SELECT TOTAL(amount_cents) FROM refunds WHERE order_id = ?", [args.order_id]).fetchone()[0]
            if total is None or cents + done > total[0]:
                raise ValueError("refund refused")
            new_id = self.db.execute("INSERT INTO refunds (order_id, amount_cents, reason) VALUES (?, ?, ?)",
                                     [args.order_id, cents, args.reason]).lastrowid
        return {"refund_id": new_id, "order_id": args.order_id, "amount": cents / 100, "status": "refunded"}


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    shop, registry = Shop(db, http), ToolRegistry(default_timeout=timeout)
    registry.tool(GetOrder)(shop.get_order)
    registry.tool(FindOrders)(shop.find_orders)
    registry.tool(GetWeather)(shop.get_weather)
    registry.tool(RefundOrder, side_effect=True)(shop.refund_order)
    return registry


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    tools = registry.schemas()
    new_input: list[Any] = [{"role": "developer", "content": INSTRUCTIONS}, {"role": "user", "content": question}]
    previous: str | None = None
    outputs: list[ToolOutput] = []
    for n in range(max_rounds):
        extra = {"previous_response_id": previous} if previous else {}
        response = client.responses.create(model=MODEL, input=new_input, tools=tools, reasoning={"effort": EFFORT},
                                           max_output_tokens=MAX_OUTPUT, **extra)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            return RunResult(response.output_text, "answer", n + 1, outputs)
        if n + 1 == max_rounds:
            break
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures: list[Future[str]] = [pool.submit(registry.execute, c.name, c.arguments, confirm) for c in calls]
            texts = [f.result() for f in futures]
        outputs += [ToolOutput(c.call_id, c.name, t) for c, t in zip(calls, texts)]
        new_input = [{"type": "function_call_output", "call_id": c.call_id, "output": t} for c, t in zip(calls, texts)]
        previous = response.id
    return RunResult(None, "max_rounds", max_rounds, outputs)


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    response = client.responses.parse(model=MODEL, input=extract_input(text), text_format=Extraction)
    if response.output_parsed is not None:
        return response.output_parsed
    refusals = [p.refusal for o in response.output if o.type == "message" for p in o.content if p.type == "refusal"]
    return Refusal(refusals[0] if refusals else "no answer")


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    fixed = list(items[:1]) if items and items[0].get("role") in {"system", "developer"} else []
    body = items[len(fixed):]
    if not body:
        if history_tokens(fixed, model) <= budget:
            return fixed
        raise ValueError("too small")
    owner = {i.get("call_id"): k for k, i in enumerate(body) if i.get("type") == "function_call"}
    cuts = [k for k in range(len(body))
            if all(owner.get(i.get("call_id"), -1) >= k for i in body[k:] if i.get("type") == "function_call_output")]
    lo, hi = 0, len(cuts) - 1
    if history_tokens(fixed + body[cuts[-1]:], model) > budget:
        raise ValueError("too small")
    while lo < hi:  # the earliest allowed cut that fits (cost falls as the cut moves later)
        mid = (lo + hi) // 2
        if history_tokens(fixed + body[cuts[mid]:], model) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return fixed + body[cuts[lo]:]
