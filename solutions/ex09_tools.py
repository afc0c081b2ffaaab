"""Exercise 09: tools the model can call safely, structured outputs, and long conversations.

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

import concurrent.futures
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
from pydantic import BaseModel

# The tools' arguments, the loop's request and result types, the extraction schema and the
# token counter for trimming: the lesson's, given (see labkit/course/ex09.py).
from labkit.course.ex09 import (
    CHAT_MODEL,
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
    Refusal,
    RefundOrder,
    RunResult,
    ToolOutput,
    chat_request,
    extract_input,
    history_tokens,
    item_tokens,
    opening,
    responses_request,
    wait_for,
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
    ### BEGIN SOLUTION: generate the strict schema, refusing free-form dicts
    ### TODO: start from openai.pydantic_function_tool(args)["function"]["parameters"] (the SDK
    ### makes every field required, optional ones nullable, and closes every object it knows),
    ### then walk it: any dict node whose "additionalProperties" is not False is a free-form dict
    ### the SDK let through; raise TypeError naming it.
    schema: dict[str, Any] = openai.pydantic_function_tool(args)["function"]["parameters"]

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, where)
            return
        if not isinstance(node, dict):
            return
        if (node.get("type") == "object" or "properties" in node) and node.get("additionalProperties") is not False:
            raise TypeError(f"{args.__name__}: {where or 'the arguments'} is a free-form dict; strict schemas "
                            "need named fields (a pydantic model), or the API answers 400")
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, name)
        for key in ("anyOf", "allOf", "items"):
            walk(node.get(key), where)
        walk(list((node.get("$defs") or {}).values()), where)

    walk(schema, "")
    return schema
    ### END SOLUTION


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
        ### BEGIN SOLUTION: run one call, turning every failure into an error result
        ### TODO, in this order (each failure: return error_result("what went wrong")):
        ### 1. an unknown name: say which tool was asked for and which exist;
        ### 2. tool.args.model_validate_json(arguments): a pydantic.ValidationError (not JSON, a
        ###    missing field, a validator) -> name the fields and the problems, and do not run;
        ### 3. a side-effecting tool runs only if confirm is given and confirm(name, args) is True;
        ### 4. run tool.fn(args) in a worker thread (concurrent.futures.ThreadPoolExecutor) and
        ###    wait at most tool.timeout seconds with wait_for(future, tool.timeout) (given: it is
        ###    future.result(timeout=...)); on TimeoutError say it "timed out" and do not wait for
        ###    the thread (pool.shutdown(wait=False)); another exception -> its type and message;
        ### 5. success: json.dumps(result, ensure_ascii=False).
        tool = self.tools.get(name)
        if tool is None:
            return error_result(f"unknown tool {name!r}; the tools are {', '.join(self.tools) or 'none'}")
        try:
            args = tool.args.model_validate_json(arguments)
        except pydantic.ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in err.errors())
            return error_result(f"invalid arguments for {name}: {problems}")
        if tool.side_effect and (confirm is None or confirm(name, args) is not True):
            return error_result(f"{name} was not run: it changes something and was not confirmed")
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        future = pool.submit(tool.fn, args)
        try:
            result = wait_for(future, tool.timeout)
        except TimeoutError:
            return error_result(f"{name} timed out after {tool.timeout:g} s")
        except Exception as err:  # noqa: BLE001 - the model gets every failure as a result
            return error_result(f"{name} failed: {type(err).__name__}: {err}")
        finally:
            pool.shutdown(wait=False)
        return json.dumps(result, ensure_ascii=False, default=str)
        ### END SOLUTION


# --------------------------------------------------------------------------- yours: the shop's tools


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    """The shop's tools on a real orders database and the weather service (``http`` has its base URL).

    get_order -> the order as a JSON object (ORDER_FIELDS, total in currency units);
    find_orders -> the customer's orders, newest first (SUMMARY_FIELDS each);
    get_weather -> the service's JSON object; refund_order (a side effect) -> REFUND_FIELDS.
    A missing order, an unknown city or a refund larger than what is left raise an exception.
    """
    registry = ToolRegistry(default_timeout=timeout)

    ### BEGIN SOLUTION: declare the four tools
    ### TODO: decorate four functions with @registry.tool(Args) (refund_order with side_effect=True),
    ### each with a docstring: it is the description the model reads. SQL with ? placeholders,
    ### never f-strings (customers have apostrophes in their emails); money is stored in cents.
    ### get_weather: http.get(WEATHER_PATH, params={"city": ...}) lets the client encode the city;
    ### any status but 200 raises with the service's error message.
    @registry.tool(GetOrder)
    def get_order(args: GetOrder) -> dict[str, Any]:
        """Look up one order by its id: customer, status, total, date and items."""
        row = db.execute(
            "SELECT order_id, customer, email, status, total_cents, currency, placed_on, items FROM orders WHERE order_id = ?",
            (args.order_id,),
        ).fetchone()
        if row is None:
            raise LookupError(f"there is no order {args.order_id}")
        record = dict(zip(ORDER_FIELDS, row))
        record["total"] = row[4] / 100
        return record

    @registry.tool(FindOrders)
    def find_orders(args: FindOrders) -> list[dict[str, Any]]:
        """List a customer's orders, newest first, by the email address they used."""
        rows = db.execute(
            "SELECT order_id, status, total_cents, placed_on FROM orders WHERE email = ? ORDER BY placed_on DESC",
            (args.email,),
        ).fetchall()
        return [dict(zip(SUMMARY_FIELDS, (r[0], r[1], r[2] / 100, r[3]))) for r in rows]

    @registry.tool(GetWeather)
    def get_weather(args: GetWeather) -> dict[str, Any]:
        """Current weather in a city: temperature in °C, conditions and wind."""
        reply = http.get(WEATHER_PATH, params={"city": args.city})
        if reply.status_code != 200:
            raise LookupError(f"the weather service answered {reply.status_code}: {reply.json().get('error', '')}")
        data: dict[str, Any] = reply.json()
        return data

    @registry.tool(RefundOrder, side_effect=True)
    def refund_order(args: RefundOrder) -> dict[str, Any]:
        """Refund part or all of an order's total to the customer. Moves money: needs the customer's confirmation."""
        cents = round(args.amount * 100)
        with db:  # one transaction: read what is left, then write the refund
            row = db.execute("SELECT total_cents FROM orders WHERE order_id = ?", (args.order_id,)).fetchone()
            if row is None:
                raise LookupError(f"there is no order {args.order_id}")
            (total,) = row
            (done,) = db.execute("SELECT COALESCE(SUM(amount_cents), 0) FROM refunds WHERE order_id = ?", (args.order_id,)).fetchone()
            if cents > total - done:
                raise ValueError(f"{args.order_id} has less than {args.amount:.2f} left to refund")
            cursor = db.execute("INSERT INTO refunds (order_id, amount_cents, reason) VALUES (?, ?, ?)",
                                (args.order_id, cents, args.reason))
        return dict(zip(REFUND_FIELDS, (cursor.lastrowid, args.order_id, cents / 100, "refunded")))
    ### END SOLUTION

    return registry


# --------------------------------------------------------------------------- yours: the loop


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    """Answer ``question`` with the registry's tools: at most ``max_rounds`` requests to the model."""
    ### BEGIN SOLUTION: the tool loop
    ### TODO: items = opening(question); tools = registry.schemas("responses"). For each round up
    ### to max_rounds: response = client.responses.create(**responses_request(items, tools)).
    ### Its function calls are the output items of type "function_call". None: return
    ### RunResult(response.output_text, "answer", round, outputs). At the cap: stop without
    ### running them (RunResult(None, "max_rounds", ...)). Otherwise add response.output to items
    ### (reasoning items must travel with their calls), run each call with registry.execute(name,
    ### arguments, confirm) and add {"type": "function_call_output", "call_id": call.call_id,
    ### "output": ...} for each, keeping a ToolOutput for the result.
    items: list[Any] = list(opening(question))
    tools = registry.schemas("responses")
    outputs: list[ToolOutput] = []
    for round_ in range(1, max_rounds + 1):
        response = client.responses.create(**responses_request(items, tools))
        calls = [item for item in response.output if item.type == "function_call"]
        if not calls:
            return RunResult(response.output_text, "answer", round_, outputs)
        if round_ == max_rounds:
            break
        items += response.output
        for call in calls:
            output = registry.execute(call.name, call.arguments, confirm=confirm)
            outputs.append(ToolOutput(call.call_id, call.name, output))
            items.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
    return RunResult(None, "max_rounds", max_rounds, outputs)
    ### END SOLUTION


# --------------------------------------------------------------------------- yours: structured outputs


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    """Every person in ``text`` as an Extraction (Structured Outputs), or a Refusal if the model declines."""
    ### BEGIN SOLUTION: parse, and treat a refusal as an outcome
    ### TODO: client.responses.parse(model=MODEL, input=extract_input(text), text_format=Extraction,
    ### reasoning={"effort": EFFORT}, max_output_tokens=EXTRACT_MAX_OUTPUT). A refusal arrives as
    ### a content part of type "refusal" (output_parsed is then None): return Refusal(its text).
    ### Otherwise return response.output_parsed. (chat.completions.parse works too: there the
    ### refusal is message.refusal.)
    response = client.responses.parse(model=MODEL, input=extract_input(text), text_format=Extraction,
                                      reasoning={"effort": EFFORT}, max_output_tokens=EXTRACT_MAX_OUTPUT)
    for item in response.output:
        if item.type == "message":
            for part in item.content:
                if part.type == "refusal":
                    return Refusal(part.refusal)
    if response.output_parsed is None:
        return Refusal("the answer could not be parsed")
    return response.output_parsed
    ### END SOLUTION


# --------------------------------------------------------------------------- yours: long conversations


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    """The newest part of a conversation that fits ``budget`` tokens (history_tokens).

    A leading developer or system message is always kept. Of the rest, keep the longest run of
    newest items that fits, never starting inside a tool round (a function_call_output whose
    function_call was cut). Raise ValueError when not even the newest item fits. Never change
    ``items``.
    """
    ### BEGIN SOLUTION: trim from the oldest end
    ### TODO: head = items[:1] if the first item's role is "developer" or "system", else [].
    ### For start = 0, 1, 2... over the rest: the tail rest[start:] is allowed when every
    ### function_call_output in it has its function_call (same call_id) in it; return head + the
    ### first allowed tail with history_tokens(head + tail, model) <= budget. Nothing fits: raise
    ### ValueError. (Count each item once with item_tokens: the sum of a tail plus 3 is its cost.)
    head = items[:1] if items and items[0].get("role") in ("developer", "system") else []
    rest = items[len(head):]
    if not rest:
        if history_tokens(head, model) > budget:
            raise ValueError(f"the instructions alone take more than {budget} tokens")
        return list(head)
    sizes = [item_tokens(i, model) for i in rest]
    total = history_tokens(head, model) + sum(sizes)
    for start in range(len(rest)):
        tail = rest[start:]
        calls = {i.get("call_id") for i in tail if i.get("type") == "function_call"}
        whole = all(i.get("call_id") in calls for i in tail if i.get("type") == "function_call_output")
        if whole and total <= budget:
            return [*head, *tail]
        total -= sizes[start]
    raise ValueError(f"not even the newest item fits in {budget} tokens")
    ### END SOLUTION
