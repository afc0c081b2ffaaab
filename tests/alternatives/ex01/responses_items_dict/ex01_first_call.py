"""Exercise 01, another valid solution: the Responses API with the conversation as explicit message
items (a developer instruction, then the user's prompt), effort "low", and a summary read from the
response's JSON (model_dump) rather than from the SDK's attributes, the text gathered from its
output_text parts."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.responses import Response

from labkit.costs import cost
from labkit.course.ex01 import INCOMPLETE_REASONS, MODEL, PROMPT, SYSTEM


def build_messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    items = []
    for role, text in (("developer", SYSTEM), ("user", prompt)):
        items.append({"type": "message", "role": role, "content": text})
    return items


def first_completion(client: OpenAI) -> Response:
    return client.responses.create(model=MODEL, input=build_messages(), reasoning={"effort": "low"})  # type: ignore[arg-type]


def summarize(response: Response) -> dict[str, Any]:
    data = response.model_dump()
    usage = data["usage"]
    parts = [part["text"] for item in data["output"] if item["type"] == "message"
             for part in item["content"] if part["type"] == "output_text"]
    if data["status"] == "completed":
        finish = "stop"
    else:
        finish = INCOMPLETE_REASONS[data["incomplete_details"]["reason"]]
    return {
        "id": data["id"],
        "text": "".join(parts),
        "model": data["model"],
        "finish_reason": finish,
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"],
        "cost_usd": cost(usage, data["model"]).total_usd,
    }
