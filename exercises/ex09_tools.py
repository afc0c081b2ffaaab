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
    # TODO: start from openai.pydantic_function_tool(args)["function"]["parameters"] (the SDK
    # makes every field required, optional ones nullable, and closes every object it knows),
    # then walk it: any dict node whose "additionalProperties" is not False is a free-form dict
    # the SDK let through; raise TypeError naming it.
    raise NotImplementedError("generate the strict schema, refusing free-form dicts")


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
        # TODO: call strict_schema(args) now (so a bad tool fails at registration, not in front
        # of the model); return a decorator that stores Tool(fn.__name__, inspect.getdoc(fn) or "",
        # args, fn, side_effect, the timeout if given else self.default_timeout) in self.tools and
        # returns fn.
        raise NotImplementedError("register a tool")

    def schemas(self, api: str = "responses") -> list[dict[str, Any]]:
        """Every tool for the API: ``"responses"`` or ``"chat"`` (Chat Completions' nested form)."""
        # TODO: for each tool, {"name", "description", "parameters": strict_schema(tool.args),
        # "strict": True}; Responses wants it flat with "type": "function", Chat Completions as
        # {"type": "function", "function": {...}}.
        raise NotImplementedError("the tools in the API's format, strict")

    def execute(self, name: str, arguments: str, confirm: Confirm | None = None) -> str:
        """Run one tool call; return its result as JSON text, or an error result. Never raises."""
        # TODO, in this order (each failure: return error_result("what went wrong")):
        # 1. an unknown name: say which tool was asked for and which exist;
        # 2. tool.args.model_validate_json(arguments): a pydantic.ValidationError (not JSON, a
        #    missing field, a validator) -> name the fields and the problems, and do not run;
        # 3. a side-effecting tool runs only if confirm is given and confirm(name, args) is True;
        # 4. run tool.fn(args) in a worker thread (concurrent.futures.ThreadPoolExecutor) and
        #    wait at most tool.timeout seconds with wait_for(future, tool.timeout) (given: it is
        #    future.result(timeout=...)); on TimeoutError say it "timed out" and do not wait for
        #    the thread (pool.shutdown(wait=False)); another exception -> its type and message;
        # 5. success: json.dumps(result, ensure_ascii=False).
        raise NotImplementedError("run one call, turning every failure into an error result")


# --------------------------------------------------------------------------- yours: the shop's tools


def build_registry(db: sqlite3.Connection, http: httpx2.Client, *, timeout: float = TOOL_TIMEOUT) -> ToolRegistry:
    """The shop's tools on a real orders database and the weather service (``http`` has its base URL).

    get_order -> the order as a JSON object (ORDER_FIELDS, total in currency units);
    find_orders -> the customer's orders, newest first (SUMMARY_FIELDS each);
    get_weather -> the service's JSON object; refund_order (a side effect) -> REFUND_FIELDS.
    A missing order, an unknown city or a refund larger than what is left raise an exception.
    """
    registry = ToolRegistry(default_timeout=timeout)

    # TODO: decorate four functions with @registry.tool(Args) (refund_order with side_effect=True),
    # each with a docstring: it is the description the model reads. SQL with ? placeholders,
    # never f-strings (customers have apostrophes in their emails); money is stored in cents.
    # get_weather: http.get(WEATHER_PATH, params={"city": ...}) lets the client encode the city;
    # any status but 200 raises with the service's error message.
    raise NotImplementedError("declare the four tools")

    return registry


# --------------------------------------------------------------------------- yours: the loop


def run_tools(client: OpenAI, registry: ToolRegistry, question: str, *, max_rounds: int = MAX_ROUNDS,
              confirm: Confirm | None = None) -> RunResult:
    """Answer ``question`` with the registry's tools: at most ``max_rounds`` requests to the model."""
    # TODO: items = opening(question); tools = registry.schemas("responses"). For each round up
    # to max_rounds: response = client.responses.create(**responses_request(items, tools)).
    # Its function calls are the output items of type "function_call". None: return
    # RunResult(response.output_text, "answer", round, outputs). At the cap: stop without
    # running them (RunResult(None, "max_rounds", ...)). Otherwise add response.output to items
    # (reasoning items must travel with their calls), run each call with registry.execute(name,
    # arguments, confirm) and add {"type": "function_call_output", "call_id": call.call_id,
    # "output": ...} for each, keeping a ToolOutput for the result.
    raise NotImplementedError("the tool loop")


# --------------------------------------------------------------------------- yours: structured outputs


def extract(client: OpenAI, text: str) -> Extraction | Refusal:
    """Every person in ``text`` as an Extraction (Structured Outputs), or a Refusal if the model declines."""
    # TODO: client.responses.parse(model=MODEL, input=extract_input(text), text_format=Extraction,
    # reasoning={"effort": EFFORT}, max_output_tokens=EXTRACT_MAX_OUTPUT). A refusal arrives as
    # a content part of type "refusal" (output_parsed is then None): return Refusal(its text).
    # Otherwise return response.output_parsed. (chat.completions.parse works too: there the
    # refusal is message.refusal.)
    raise NotImplementedError("parse, and treat a refusal as an outcome")


# --------------------------------------------------------------------------- yours: long conversations


def trim_history(items: list[dict[str, Any]], *, budget: int, model: str = MODEL) -> list[dict[str, Any]]:
    """The newest part of a conversation that fits ``budget`` tokens (history_tokens).

    A leading developer or system message is always kept. Of the rest, keep the longest run of
    newest items that fits, never starting inside a tool round (a function_call_output whose
    function_call was cut). Raise ValueError when not even the newest item fits. Never change
    ``items``.
    """
    # TODO: head = items[:1] if the first item's role is "developer" or "system", else [].
    # For start = 0, 1, 2... over the rest: the tail rest[start:] is allowed when every
    # function_call_output in it has its function_call (same call_id) in it; return head + the
    # first allowed tail with history_tokens(head + tail, model) <= budget. Nothing fits: raise
    # ValueError. (Count each item once with item_tokens: the sum of a tail plus 3 is its cost.)
    raise NotImplementedError("trim from the oldest end")

# labkit starter 4241e32cbbf9 (made from solutions/ex09_tools.py by `labkit exercises build`)
