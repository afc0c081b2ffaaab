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
from typing import TYPE_CHECKING, Any

from .authoring import Pending, Renderer
from .clock import course_date

if TYPE_CHECKING:
    from .replay import Interaction

__all__ = ["api_error_for", "recorded_answer", "simulate_answer"]


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
