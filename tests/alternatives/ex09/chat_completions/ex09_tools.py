"""Exercise 09, another valid solution: Chat Completions on the fast model at effort "none".

Differences from the reference: the loop is on Chat Completions (tool messages by tool_call_id),
the registry keeps the SDK's pydantic_function_tool definitions and flattens them for the
Responses API, errors are phrased differently, extraction uses chat.completions.parse, and trimming
walks from the newest item backwards.
"""

import concurrent.futures
import inspect
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pydantic
from openai import OpenAI
from pydantic import BaseModel

from labkit.course.ex09 import (
    CHAT_EFFORT,
    CHAT_MODEL,
    MAX_OUTPUT,
    MAX_ROUNDS,
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
)
from labkit.tokens import REPLY_PRIMING


def _open_fields(node: Any, field: str = "") -> list[str]:
    """The fields of a schema whose objects do not list their properties and forbid others."""
    if isinstance(node, list):
        return [f for n in node for f in _open_fields(n, field)]
    if not isinstance(node, dict):
        return []
    found = [field or "(root)"] if node.get("type") == "object" and node.get("additionalProperties") is not False else []
    for name, sub in (node.get("properties") or {}).items():
        found += _open_fields(sub, name)
    for sub in (node.get("anyOf"), node.get("items"), list((node.get("$defs") or {}).values())):
        found += _open_fields(sub, field)
    return found


class ToolRegistry:
    """Tools by name: the SDK's function definitions, and how to run each."""

    def __init__(self, default_timeout: float = TOOL_TIMEOUT) -> None:
        self.default_timeout = default_timeout
        self.definitions: dict[str, dict[str, Any]] = {}
        self.runners: dict[str, tuple[type[BaseModel], Callable[[Any], Any], bool, float]] = {}

    def tool(self, args: type[BaseModel], *, side_effect: bool = False,
             timeout: float | None = None) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        definition = openai.pydantic_function_tool(args)["function"]
        open_fields = _open_fields(definition["parameters"])
        if open_fields:
            raise ValueError(f"{args.__name__}: {', '.join(open_fields)} is a free-form mapping; use a model with named fields")

        def add(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self.definitions[fn.__name__] = {**definition, "name": fn.__name__, "description": inspect.getdoc(fn) or ""}
            self.runners[fn.__name__] = (args, fn, side_effect, self.default_timeout if timeout is None else timeout)
            return fn

        return add

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        if api == "chat":
            return [{"type": "function", "function": dict(d)} for d in self.definitions.values()]
        return [{"type": "function", **d} for d in self.definitions.values()]

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        if name not in self.runners:
            return json.dumps({"error": f"no tool called {name}; available: {sorted(self.runners)}"})
        args_model, fn, side_effect, timeout = self.runners[name]
        try:
            args = args_model.model_validate_json(arguments)
        except pydantic.ValidationError as err:
            fields = ", ".join(".".join(map(str, e["loc"])) or "(the JSON itself)" for e in err.errors())
            return json.dumps({"error": f"bad arguments ({fields}): {err.errors()[0]['msg']}"})
        if side_effect and not (confirm and confirm(name, args)):
            return json.dumps({"error": "declined: this action needs the user's confirmation"})
        pool = concurrent.futures.ThreadPoolExecutor(1)  # not `with`: its exit would wait for a hung tool
        future = pool.submit(fn, args)
        done, _ = concurrent.futures.wait([future], timeout=timeout)
        pool.shutdown(wait=False)
        if not done:
            return json.dumps({"error": f"Timeout: {name} took longer than {timeout} seconds"})
        if future.exception() is not None:
            return json.dumps({"error": repr(future.exception())})
        return json.dumps(future.result())


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    registry = ToolRegistry(timeout)

    @registry.tool(GetOrder)
    def get_order(args: GetOrder) -> dict[str, Any]:
        """Fetch an order by id."""
        cur = db.execute("SELECT * FROM orders WHERE order_id = :id", {"id": args.order_id})
        row = cur.fetchone()
        if not row:
            raise KeyError(args.order_id)
        rec = dict(zip([c[0] for c in cur.description], row))
        return {"order_id": rec["order_id"], "customer": rec["customer"], "email": rec["email"], "status": rec["status"],
                "total": rec["total_cents"] / 100, "currency": rec["currency"], "placed_on": rec["placed_on"], "items": rec["items"]}

    @registry.tool(FindOrders)
    def find_orders(args: FindOrders) -> list[dict[str, Any]]:
        """Orders placed with an email address, newest first."""
        rows = db.execute("SELECT order_id, status, total_cents, placed_on FROM orders WHERE email = :e", {"e": args.email})
        found = [{"order_id": o, "status": s, "total": c / 100, "placed_on": d} for o, s, c, d in rows]
        return sorted(found, key=lambda r: r["placed_on"], reverse=True)

    @registry.tool(GetWeather)
    def get_weather(args: GetWeather) -> dict[str, Any]:
        """Weather right now in a city."""
        reply = http.request("GET", WEATHER_PATH, params=[("city", args.city)])
        reply.raise_for_status()
        out: dict[str, Any] = reply.json()
        return out

    @registry.tool(RefundOrder, side_effect=True)
    def refund_order(args: RefundOrder) -> dict[str, Any]:
        """Refund money on an order (needs confirmation)."""
        cents = int(round(args.amount * 100))
        with db:
            cur = db.execute(
                "INSERT INTO refunds (order_id, amount_cents, reason) SELECT ?, ?, ? WHERE ? <= "
                "(SELECT total_cents FROM orders WHERE order_id = ?) - "
                "(SELECT COALESCE(SUM(amount_cents), 0) FROM refunds WHERE order_id = ?)",
                (args.order_id, cents, args.reason, cents, args.order_id, args.order_id),
            )
            if cur.rowcount != 1:
                raise ValueError(f"cannot refund {args.amount} on {args.order_id}")
        return {"refund_id": cur.lastrowid, "order_id": args.order_id, "amount": cents / 100, "status": "refunded"}

    return registry


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    messages: list[Any] = list(opening(question))
    tools = registry.schemas("chat")
    outputs: list[ToolOutput] = []
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        completion = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=tools,
                                                    reasoning_effort=CHAT_EFFORT, max_completion_tokens=MAX_OUTPUT)
        message = completion.choices[0].message
        if not message.tool_calls:
            return RunResult(message.content, "answer", rounds, outputs)
        if rounds == max_rounds:
            return RunResult(None, "max_rounds", rounds, outputs)
        messages.append(message)
        for call in message.tool_calls:
            text = registry.execute(call.function.name, call.function.arguments, confirm)
            outputs.append(ToolOutput(call.id, call.function.name, text))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": text})
    return RunResult(None, "max_rounds", rounds, outputs)


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    completion = client.chat.completions.parse(model=CHAT_MODEL, messages=extract_input(text), response_format=Extraction,
                                               reasoning_effort=CHAT_EFFORT)
    message = completion.choices[0].message
    if message.refusal is not None:
        return Refusal(message.refusal)
    assert message.parsed is not None
    return message.parsed


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = CHAT_MODEL) -> list[dict[str, Any]]:
    keep_first = bool(items) and items[0].get("role") in ("developer", "system")
    first = items[:1] if keep_first else []
    used = REPLY_PRIMING + sum(item_tokens(i, model) for i in first)
    if not items[len(first):]:
        if used > budget:
            raise ValueError("over budget")
        return list(first)
    best: list[dict[str, Any]] | None = None
    tail: list[dict[str, Any]] = []
    for item in reversed(items[len(first):]):
        used += item_tokens(item, model)
        if used > budget:
            break
        tail.insert(0, item)
        calls = {i.get("call_id") for i in tail if i.get("type") == "function_call"}
        if all(i.get("call_id") in calls for i in tail if i.get("type") == "function_call_output"):
            best = list(tail)
    if best is None:
        raise ValueError(f"nothing fits in {budget} tokens")
    return [*first, *best]
