"""The course simulator: an honest answer for a request on a recorded task.

Used by graded runs (``labkit.client(..., simulate=True)``) where a learner's valid request differs
from the recording in a way that should not matter to the grade (their own wording of a system
message, another current model, an extra harmless parameter). The answer keeps the recorded text
(the task's answer); the model, usage, reasoning tokens, latency and ids are computed for the
request actually sent, as :mod:`labkit.authoring` computes them. A request the real API would
reject gets the error the API gives (404 for a shut-down model, 400 for a rejected parameter),
judged on the course's pinned date so grades do not change with the calendar. Every simulated
answer says ``simulated`` in its provenance.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2
import openai

from .authoring import Pending, Renderer
from .clock import course_date

if TYPE_CHECKING:
    from .replay import Interaction

__all__ = ["Exchange", "ScriptedModel", "Turn", "api_error_for", "recorded_answer", "simulate_answer", "strict_schema_problem"]


def recorded_answer(inter: Interaction) -> tuple[str, list[dict[str, Any]]] | None:
    """The answer text and tool calls of a recorded 200 response (JSON or a stream)."""
    text = inter.content.decode("utf-8", "replace")
    if inter.status != 200 or not text:
        return None
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        return _from_object(data)
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ") and line[6:].strip() != "[DONE]"]
    parsed = [json.loads(e) for e in events]
    done = next((e["response"] for e in parsed if e.get("type") == "response.completed"), None)
    if done is not None:
        return _from_object(done)
    pieces: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in parsed:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            pieces.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or []:
                got = calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                got["name"] += fn.get("name") or ""
                got["arguments"] += fn.get("arguments") or ""
    return "".join(pieces), [calls[i] for i in sorted(calls)]


def _from_object(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    if data.get("object") == "response":
        texts, calls = [], []
        for item in data.get("output") or []:
            if item.get("type") == "message":
                texts += [part.get("text", "") for part in item.get("content") or [] if part.get("type") == "output_text"]
            elif item.get("type") == "function_call":
                calls.append({"name": item.get("name", ""), "arguments": item.get("arguments", "")})
        return "".join(texts), calls
    message = (data.get("choices") or [{}])[0].get("message") or {}
    calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in message.get("tool_calls") or []]
    return message.get("content") or "", calls


#: lint codes the real API rejects, with the status, error code and parameter it names.
_REJECTIONS: dict[str, tuple[int, str | None, str | None]] = {
    "model-shut-down": (404, "model_not_found", None),
    "sampling-unsupported": (400, "unsupported_parameter", "temperature"),
    "sampling-out-of-range": (400, "decimal_above_max_value", "temperature"),
    "max-tokens-unsupported": (400, "unsupported_parameter", "max_tokens"),
    "reasoning-unsupported": (400, "unsupported_value", "reasoning_effort"),
    "verbosity-unsupported": (400, "unsupported_parameter", "verbosity"),
    "chat-tools-unsupported": (400, "unsupported_parameter", "tools"),
    "json-mode-needs-json": (400, None, "messages"),
    "stream-options-need-stream": (400, None, "stream_options"),
    "max-output-exceeded": (400, "integer_above_max_value", "max_completion_tokens"),
    "context-overflow": (400, "context_length_exceeded", "messages"),
}


def api_error_for(body: dict[str, Any]) -> dict[str, Any] | None:
    """The error the real API answers for this request, if it rejects it (judged on the course date)."""
    from .lint import SAMPLING, lint_request

    params = {k: v for k, v in body.items() if k != "today"}
    day = course_date()
    for finding in lint_request(today=day, **params):
        if finding.severity != "error" or finding.code not in _REJECTIONS:
            continue
        status, code, param = _REJECTIONS[finding.code]
        if finding.code.startswith("sampling-"):
            param = next((k for k in SAMPLING if k in body), param)
        if finding.code == "model-shut-down":
            message = f"The model `{body.get('model')}` does not exist or you do not have access to it."
        else:
            message = finding.message
        return {"status": status, "message": message, "type": "invalid_request_error", "param": param, "code": code}
    return None


def simulate_answer(path: str, body: dict[str, Any], raw: bytes, source: Interaction) -> tuple[int, str, dict[str, str]] | None:
    """``(status, payload, headers)`` for ``body``, from the recorded answer of ``source``."""
    answer = recorded_answer(source)
    if answer is None:
        return None
    text, calls = answer
    seed = hashlib.sha256(raw + f"|{source.index}".encode()).hexdigest()[:32]
    error = api_error_for(body)
    pending = Pending(reply=None if error else text, tool_calls=None if error or not calls else calls, error=error,
                      label=f"simulated from {source.label or 'a recording'}")
    return Renderer().render(path, body, raw, pending, seed)


# --------------------------------------------------------------------------- strict schemas


def strict_schema_problem(schema: Any, what: str) -> str | None:
    """What the API answers (400) for a schema sent with ``strict: true``, or None if it accepts it.

    ``what`` names the schema as the API does: ``"function 'get_order'"`` or ``"response_format
    'Extraction'"``. The rules checked are the ones plain pydantic schemas break: the root is an
    object; every object (in ``$defs`` too) sets ``additionalProperties`` to false (so no free-form
    dicts) and lists every property in ``required`` (optional fields are nullable, not absent).
    """
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return f"Invalid schema for {what}: schema must be a JSON Schema of 'type: \"object\"', got 'type: {schema.get('type') if isinstance(schema, dict) else None!r}'."

    def walk(node: Any, where: tuple[str, ...]) -> str | None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                found = walk(item, (*where, str(i)))
                if found:
                    return found
            return None
        if not isinstance(node, dict):
            return None
        is_object = node.get("type") == "object" or isinstance(node.get("properties"), dict)
        if is_object and node.get("additionalProperties") is not False:
            return f"In context={where!r}, 'additionalProperties' is required to be supplied and to be false."
        properties = node.get("properties")
        if is_object and isinstance(properties, dict):
            listed = node.get("required")
            required: list[Any] = listed if isinstance(listed, list) else []
            missing = [key for key in properties if key not in required]
            if missing:
                return (f"In context={where!r}, 'required' is required to be supplied and to be an array including "
                        f"every key in properties. Missing '{missing[0]}'.")
        for key in ("properties", "$defs", "definitions"):
            block = node.get(key)
            if isinstance(block, dict):
                for name, sub in block.items():
                    found = walk(sub, (*where, key, name))
                    if found:
                        return found
        for key in ("items", "anyOf", "allOf", "prefixItems"):
            if key in node:
                found = walk(node[key], (*where, key))
                if found:
                    return found
        return None

    found = walk(schema, ())
    return f"Invalid schema for {what}: {found}" if found else None


# --------------------------------------------------------------------------- a scripted model


@dataclass(frozen=True)
class Turn:
    """One answer a :class:`ScriptedModel` gives: tool calls, a final text, or a refusal.

    ``calls`` are ``(name, arguments)`` pairs; arguments as a dict (sent as JSON) or a raw string
    (to send malformed JSON, as a model cut off mid-call does).
    """

    calls: tuple[tuple[str, Any], ...] = ()
    text: str | None = None
    refusal: str | None = None


@dataclass
class Exchange:
    """One request a :class:`ScriptedModel` received and what it answered."""

    index: int
    api: str  # "responses" or "chat"
    body: dict[str, Any]
    status: int
    error: str = ""
    turn: int = -1
    #: the whole conversation the request stands for (a stored response's items included)
    context: list[dict[str, Any]] = field(default_factory=list)
    #: tool calls this answer asked for: (call_id, name, arguments)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    #: tool outputs the request's conversation carries, by call id (several if sent twice)
    outputs: dict[str, list[str]] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_names(self) -> list[str]:
        """The function tools the request declared."""
        names = []
        for tool in self.body.get("tools") or []:
            if isinstance(tool, dict) and tool.get("type") == "function":
                names.append(str(tool.get("name") or (tool.get("function") or {}).get("name")))
        return names


class ScriptedModel(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """A model that plays a script of turns, under the API's rules (checks and notebooks use it).

    Each request to ``/v1/responses`` or ``/v1/chat/completions`` gets the next :class:`Turn`
    (the last one again once the script is over, with new call ids when ``repeat_last``: a model
    that never stops calling tools), rendered in the API's wire format by
    :class:`labkit.authoring.Renderer`. Before answering it applies what the real API enforces:
    a request the API would reject gets the API's 400/404 (:func:`api_error_for`); strict schemas
    must be strict (:func:`strict_schema_problem`); every tool call in the conversation needs
    exactly its output, matched by call id, and no output may name an unknown call;
    ``previous_response_id`` must name a stored response; a function call sent back by id needs
    its reasoning item. With ``tool_choice="none"`` or no tools, a turn's calls become
    ``final_text``. Every exchange is kept in :attr:`exchanges` for the checks to read.
    """

    def __init__(self, turns: list[Turn], *, repeat_last: bool = False, name: str = "scripted",
                 final_text: str = "I have to stop here without using more tools.") -> None:
        if not turns:
            raise ValueError("a scripted model needs at least one turn")
        self.turns = list(turns)
        self.repeat_last = repeat_last
        self.name = name
        self.final_text = final_text
        self.exchanges: list[Exchange] = []
        self._stored: dict[str, list[dict[str, Any]]] = {}
        self._reasoning_of: dict[str, str] = {}  # function call item id -> its reasoning item id
        self._answered = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ httpx2
    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request, await request.aread())

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """An SDK client answered by this model (no retries: the code under test decides)."""
        from .modes import attach_transport

        common = {"api_key": "scripted-no-key", "base_url": "https://api.openai.com/v1", "max_retries": 0, **kwargs}
        made = openai.OpenAI(http_client=httpx2.Client(transport=self), **common)
        attach_transport(made, self)
        return made

    @property
    def answered(self) -> list[Exchange]:
        """The exchanges answered 200, in order."""
        return [e for e in self.exchanges if e.status == 200]

    # ------------------------------------------------------------------ answering
    def _answer(self, request: httpx2.Request, raw: bytes) -> httpx2.Response:
        path = request.url.path
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        api = "responses" if path.endswith("/responses") else "chat" if path.endswith("/chat/completions") else ""
        with self._lock:
            ex = Exchange(len(self.exchanges), api, body if isinstance(body, dict) else {}, 0)
            self.exchanges.append(ex)
            status, payload, headers = self._respond(ex, raw)
        headers = {**headers, "x-labkit-provenance": "scripted", "x-labkit-match": "scripted"}
        return httpx2.Response(status, headers=list(headers.items()), stream=httpx2.ByteStream(payload.encode()), request=request)

    def _fail(self, ex: Exchange, status: int, message: str, param: str | None = None, code: str | None = None) -> tuple[int, str, dict[str, str]]:
        ex.status, ex.error = status, message
        err = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
        return status, json.dumps(err, indent=2), {"content-type": "application/json", "x-request-id": f"req_scripted_{ex.index}"}

    def _respond(self, ex: Exchange, raw: bytes) -> tuple[int, str, dict[str, str]]:
        body = ex.body
        if not ex.api:
            return self._fail(ex, 404, "This scripted model answers /v1/responses and /v1/chat/completions only.")
        error = api_error_for(body)
        if error:
            return self._fail(ex, int(error["status"]), str(error["message"]), error.get("param"), error.get("code"))
        problem = self._schema_problem(body)
        if problem:
            return self._fail(ex, 400, problem, "tools" if problem.startswith("Invalid schema for function") else None)
        pairing = self._context(ex)
        if pairing:
            return self._fail(ex, 400, *pairing)
        k = self._answered
        turn = self.turns[min(k, len(self.turns) - 1)]
        ex.turn = min(k, len(self.turns) - 1)
        calls: list[dict[str, Any]] = [{"name": n, "arguments": a} for n, a in turn.calls]
        text, refusal = turn.text, turn.refusal
        if calls and (not ex.tool_names or body.get("tool_choice") == "none"):
            calls, text = [], self.final_text
        seed = hashlib.sha256(f"{self.name}|{ex.index}".encode() + raw).hexdigest()[:32]
        pending = Pending(reply=text, tool_calls=calls or None, refusal=refusal, label=f"{self.name} turn {ex.turn}")
        status, payload, headers = Renderer().render(f"/v1/{'responses' if ex.api == 'responses' else 'chat/completions'}",
                                                     body, raw, pending, seed)
        ex.status = status
        self._answered += 1
        try:
            ex.answer = json.loads(payload)
        except ValueError:  # a stream
            ex.answer = {}
        self._keep(ex)
        return status, payload, headers

    @staticmethod
    def _schema_problem(body: dict[str, Any]) -> str | None:
        for tool in body.get("tools") or []:
            if not isinstance(tool, dict) or tool.get("type") != "function":
                continue
            fn: dict[str, Any] = tool["function"] if isinstance(tool.get("function"), dict) else tool
            if fn.get("strict"):
                found = strict_schema_problem(fn.get("parameters"), f"function '{fn.get('name')}'")
                if found:
                    return found
        fmt = body.get("response_format") or (body.get("text") or {}).get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            spec: dict[str, Any] = fmt["json_schema"] if isinstance(fmt.get("json_schema"), dict) else fmt
            if spec.get("strict"):
                return strict_schema_problem(spec.get("schema"), f"response_format '{spec.get('name')}'")
        return None

    # ------------------------------------------------------------------ conversation rules
    def _context(self, ex: Exchange) -> tuple[str, str | None] | None:
        """Rebuild the request's conversation into ``ex``; the API's 400 if its tool calls do not pair up."""
        body = ex.body
        if ex.api == "chat":
            messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
            ex.context = messages
            return self._chat_pairs(ex, messages)
        prior: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if previous:
            if previous not in self._stored:
                return f"Previous response with id '{previous}' not found.", "previous_response_id"
            prior = self._stored[previous]
        inp = body.get("input", [])
        new = [{"role": "user", "content": inp}] if isinstance(inp, str) else [i for i in inp if isinstance(i, dict)]
        ex.context = [*prior, *new]
        calls = {i.get("call_id"): i for i in ex.context if i.get("type") == "function_call"}
        for item in ex.context:
            if item.get("type") == "function_call_output":
                cid = item.get("call_id")
                if cid not in calls:
                    return f"No tool call found for function call output with call_id {cid}.", "input"
                ex.outputs.setdefault(str(cid), []).append(_output_text(item.get("output")))
        for cid in calls:
            if cid not in ex.outputs:
                return f"No tool output found for function call {cid}.", "input"
        sent_ids = {i.get("id") for i in new if i.get("id")} | {i.get("id") for i in prior if i.get("id")}
        for item in new:
            rs = self._reasoning_of.get(str(item.get("id"))) if item.get("type") == "function_call" else None
            if rs and rs not in sent_ids:
                return (f"Item '{item.get('id')}' of type 'function_call' was provided without its required "
                        f"'reasoning' item: '{rs}'."), "input"
        return None

    @staticmethod
    def _chat_pairs(ex: Exchange, messages: list[dict[str, Any]]) -> tuple[str, str | None] | None:
        open_ids: list[str] = []
        for i, m in enumerate(messages):
            role = m.get("role")
            if role == "tool":
                cid = str(m.get("tool_call_id"))
                if cid not in open_ids:
                    return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                            "with 'tool_calls'.", f"messages.[{i}].role")
                open_ids.remove(cid)
                ex.outputs.setdefault(cid, []).append(_output_text(m.get("content")))
                continue
            if open_ids:
                return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                        f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_ids)}",
                        f"messages.[{i}].role")
            if role == "assistant":
                open_ids = [str(c.get("id")) for c in m.get("tool_calls") or [] if isinstance(c, dict)]
        if open_ids:
            return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_ids)}",
                    "messages")
        return None

    def _keep(self, ex: Exchange) -> None:
        """Note the calls an answer asked for; store a response the API would store."""
        if ex.api == "chat":
            message = ((ex.answer.get("choices") or [{}])[0]).get("message") or {}
            ex.calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
            return
        output = ex.answer.get("output") or []
        rs = next((o["id"] for o in output if o.get("type") == "reasoning"), None)
        for o in output:
            if o.get("type") == "function_call":
                ex.calls.append((o["call_id"], o["name"], o["arguments"]))
                if rs:
                    self._reasoning_of[o["id"]] = rs
        if ex.body.get("store", True) is not False and ex.answer.get("id"):
            self._stored[str(ex.answer["id"])] = [*ex.context, *output]


def _output_text(output: Any) -> str:
    """A tool output as text (a string, or a list of text parts)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return "" if output is None else json.dumps(output)
