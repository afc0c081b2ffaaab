"""Exercise 01 with Chat Completions through with_raw_response (headers kept for the log), a developer
message and an output cap, and one summarize() that reads either API's object by duck typing."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from labkit import costs
from labkit.course import ex01 as lesson

LAST_REQUEST_ID: str | None = None


def build_messages(prompt: str = lesson.PROMPT) -> list[dict[str, str]]:
    conversation = []
    conversation.append(dict(role="developer", content=lesson.SYSTEM))
    conversation.append(dict(role="user", content=prompt))
    return conversation


def first_completion(client: OpenAI) -> ChatCompletion | Response:
    global LAST_REQUEST_ID
    raw = client.chat.completions.with_raw_response.create(
        model=lesson.MODEL,
        messages=build_messages(),  # type: ignore[arg-type]
        reasoning_effort="low",
        max_completion_tokens=400,
    )
    LAST_REQUEST_ID = raw.headers.get("x-request-id")
    return raw.parse()


def summarize(response: ChatCompletion | Response) -> dict[str, Any]:
    usage: Any = response.usage
    if hasattr(response, "choices"):
        first = response.choices[0]
        text, finish = first.message.content, first.finish_reason
        tokens_in, tokens_out = usage.prompt_tokens, usage.completion_tokens
        details = usage.completion_tokens_details
    else:
        text = response.output_text
        if response.status == "completed":
            finish = "stop"
        else:
            finish = lesson.INCOMPLETE_REASONS[response.incomplete_details.reason]  # type: ignore[union-attr,index]
        tokens_in, tokens_out = usage.input_tokens, usage.output_tokens
        details = usage.output_tokens_details
    reasoning = getattr(details, "reasoning_tokens", 0) or 0
    record = dict(id=response.id, text=text, model=response.model, finish_reason=finish,
                  input_tokens=tokens_in, output_tokens=tokens_out, reasoning_tokens=reasoning)
    record["cost_usd"] = costs.cost(usage, response.model).total_usd
    return record
