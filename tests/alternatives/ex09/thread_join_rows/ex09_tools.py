"""Exercise 09, an alternative: an explicit-stack schema walk, a daemon thread joined with a time
limit, sqlite3.Row lookups with Decimal cents, output items sent back as dicts, a backward trim."""

import inspect
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
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

EXTRACT_MAX_OUTPUT = 2_000


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


def strict_schema(args: type[BaseModel]) -> dict[str, Any]:
    """The SDK's strict parameters, checked with an explicit stack of (path, node)."""
    schema: dict[str, Any] = openai.pydantic_function_tool(args)["function"]["parameters"]
    stack: list[tuple[str, Any]] = [(args.__name__, schema)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, list):
            stack.extend((path, n) for n in node)
            continue
        if not isinstance(node, dict):
            continue
        is_object = node.get("type") == "object" or "properties" in node or "additionalProperties" in node
        if is_object and node.get("additionalProperties", True) is not False:
            raise TypeError(f"{path} is a free-form object (a dict); give it named fields")
        for key, sub in (node.get("properties") or {}).items():
            stack.append((f"{path}.{key}", sub))
        for key in ("anyOf", "oneOf", "allOf", "items"):
            if key in node:
                stack.append((path, node[key]))
        for key, sub in (node.get("$defs") or {}).items():
            stack.append((key, sub))
    return schema


class ToolRegistry:
    def __init__(self, default_timeout: float = TOOL_TIMEOUT) -> None:
        self.tools: dict[str, Tool] = {}
        self.default_timeout = default_timeout

    def tool(self, args: type[BaseModel], *, side_effect: bool = False,
             timeout: float | None = None) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        strict_schema(args)

        def add(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self.tools[fn.__name__] = Tool(name=fn.__name__, description=inspect.getdoc(fn) or "", args=args, fn=fn,
                                           side_effect=side_effect, timeout=timeout or self.default_timeout)
            return fn

        return add

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        def one(t: Tool) -> dict[str, Any]:
            return {"name": t.name, "description": t.description, "parameters": strict_schema(t.args), "strict": True}

        if api == "chat":
            return [{"type": "function", "function": one(t)} for t in self.tools.values()]
        return [{"type": "function"} | one(t) for t in self.tools.values()]

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        if name not in self.tools:
            return error_result(f"no tool called {name}. Available: {sorted(self.tools)}")
        tool = self.tools[name]
        try:
            args = tool.args.model_validate_json(arguments)
        except pydantic.ValidationError as err:
            return error_result("bad arguments: " + " | ".join(f"{e['loc']} {e['msg']}" for e in err.errors()))
        if tool.side_effect:
            if confirm is None:
                return error_result(f"{name} needs confirmation, and none can be asked for: not run")
            if not confirm(name, args):
                return error_result(f"the person declined {name}: not run")
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["value"] = tool.fn(args)
            except BaseException as exc:  # noqa: BLE001
                box["error"] = exc

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        deadline = time.monotonic() + tool.timeout
        while worker.is_alive() and time.monotonic() < deadline:
            worker.join(0.005)
        if worker.is_alive():
            return error_result(f"{name} did not finish: timed out ({tool.timeout} s)")
        if "error" in box:
            exc = box["error"]
            return error_result(f"{type(exc).__name__} in {name}: {exc}")
        return json.dumps(box["value"], ensure_ascii=False)


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    registry = ToolRegistry(default_timeout=timeout)

    def query(sql: str, *params: Any) -> list[sqlite3.Row]:
        cursor = db.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, params).fetchall()

    def order_dict(row: sqlite3.Row) -> dict[str, Any]:
        return {"order_id": row["order_id"], "customer": row["customer"], "email": row["email"], "status": row["status"],
                "total": row["total_cents"] / 100, "currency": row["currency"], "placed_on": row["placed_on"],
                "items": row["items"]}

    def get_order(args: GetOrder) -> dict[str, Any]:
        """Fetch an order by id (like A-1001): who ordered, what, when, its status and total."""
        rows = query("SELECT * FROM orders WHERE order_id = ?", args.order_id)
        if not rows:
            raise KeyError(f"order {args.order_id} not found")
        return order_dict(rows[0])

    def find_orders(args: FindOrders) -> list[dict[str, Any]]:
        """All orders placed with an email address, the most recent first."""
        rows = query("SELECT * FROM orders WHERE email = ?", args.email)
        rows.sort(key=lambda r: r["placed_on"], reverse=True)
        return [{"order_id": r["order_id"], "status": r["status"], "total": r["total_cents"] / 100, "placed_on": r["placed_on"]}
                for r in rows]

    def get_weather(args: GetWeather) -> dict[str, Any]:
        """Current conditions in a city (temperature, sky, wind)."""
        answer = http.get(WEATHER_PATH, params=[("city", args.city)])
        if answer.status_code == 200:
            return dict(answer.json())
        raise RuntimeError(answer.text)

    def refund_order(args: RefundOrder) -> dict[str, Any]:
        """Give money back on an order (all or part of it). Only with the customer's go-ahead."""
        cents = int(Decimal(str(args.amount)) * 100)
        orders = query("SELECT total_cents FROM orders WHERE order_id = ?", args.order_id)
        if not orders:
            raise KeyError(f"order {args.order_id} not found")
        refunded = query("SELECT amount_cents FROM refunds WHERE order_id = ?", args.order_id)
        left = orders[0]["total_cents"] - sum(r["amount_cents"] for r in refunded)
        if cents > left:
            raise ValueError(f"only {left / 100:.2f} is left to refund on {args.order_id}")
        cursor = db.execute("INSERT INTO refunds (order_id, amount_cents, reason) VALUES (?, ?, ?)",
                            (args.order_id, cents, args.reason))
        db.commit()
        return {"refund_id": cursor.lastrowid, "order_id": args.order_id, "amount": cents / 100, "status": "refunded"}

    registry.tool(GetOrder)(get_order)
    registry.tool(FindOrders)(find_orders)
    registry.tool(GetWeather)(get_weather)
    registry.tool(RefundOrder, side_effect=True)(refund_order)
    return registry


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    """A while loop; every output item goes back as a plain dict."""
    conversation: list[dict[str, Any]] = [*opening(question)]
    schemas = registry.schemas()
    sent: list[ToolOutput] = []
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        response = client.responses.create(**responses_request(conversation, schemas))
        wanted = [o for o in response.output if o.type == "function_call"]
        if not wanted:
            return RunResult(answer=response.output_text, stopped="answer", rounds=rounds, outputs=sent)
        if rounds >= max_rounds:
            break
        conversation.extend(o.model_dump(exclude_none=True) for o in response.output)
        for call in wanted:
            text = registry.execute(call.name, call.arguments, confirm)
            sent.append(ToolOutput(call_id=call.call_id, name=call.name, output=text))
            conversation.append({"type": "function_call_output", "call_id": call.call_id, "output": text})
    return RunResult(answer=None, stopped="max_rounds", rounds=rounds, outputs=sent)


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    response = client.responses.parse(model=MODEL, input=extract_input(text), text_format=Extraction,
                                      reasoning={"effort": EFFORT}, max_output_tokens=EXTRACT_MAX_OUTPUT)
    refusals = [part.refusal for item in response.output if item.type == "message"
                for part in item.content if part.type == "refusal"]
    if refusals:
        return Refusal(reason=" ".join(refusals))
    parsed = response.output_parsed
    return parsed if parsed is not None else Refusal(reason="no structured answer")


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    """From the newest end backwards: how far back fits, then the first cut that splits no tool round."""
    keep_head = bool(items) and items[0].get("role") in ("developer", "system")
    head = items[:1] if keep_head else []
    rest = items[1:] if keep_head else items[:]
    used = history_tokens(head, model)
    if used > budget:
        raise ValueError("the instructions alone are over the budget")
    earliest = len(rest)
    for index in range(len(rest) - 1, -1, -1):
        cost = item_tokens(rest[index], model)
        if used + cost > budget:
            break
        used += cost
        earliest = index
    if not rest:
        return list(head)
    for start in range(earliest, len(rest)):
        tail = rest[start:]
        asked = {i["call_id"] for i in tail if i.get("type") == "function_call"}
        if all(i["call_id"] in asked for i in tail if i.get("type") == "function_call_output"):
            return head + [dict(i) for i in tail]
    raise ValueError("the newest item alone does not fit the budget")
