"""Exercise 01 with the Responses API and a message list: a developer message, text parts, effort low, an output cap."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.responses import Response

from labkit.costs import cost
from labkit.course.ex01 import INCOMPLETE_REASONS, MODEL, PROMPT, SYSTEM


def build_messages(prompt: str = PROMPT) -> list[dict[str, Any]]:
    return [
        {"role": "developer", "content": [{"type": "input_text", "text": SYSTEM}]},
        {"role": "user", "content": [{"type": "input_text", "text": prompt}]},
    ]


def first_completion(client: OpenAI) -> Response:
    return client.responses.create(
        model=MODEL,
        input=build_messages(),  # type: ignore[arg-type]
        reasoning={"effort": "low"},
        max_output_tokens=600,  # room for a little reasoning and one line
        safety_identifier="learner-0042",
    )


def summarize(response: Response) -> dict[str, Any]:
    usage = response.usage
    if usage is None:
        raise ValueError("no usage on this response")
    finish = "stop"
    if response.status != "completed":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        finish = INCOMPLETE_REASONS.get(reason or "", "length")
    return {
        "id": response.id,
        "text": response.output_text,
        "model": response.model,
        "finish_reason": finish,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
        "cost_usd": cost(usage, response.model).total_usd,
    }
