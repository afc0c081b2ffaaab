"""Exercise 01 through the Responses API: instructions and input, effort none, a Response summarized."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.responses import Response

from labkit.costs import cost
from labkit.course.ex01 import EFFORT, INCOMPLETE_REASONS, MODEL, PROMPT, SYSTEM


def build_messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def first_completion(client: OpenAI) -> Response:
    return client.responses.create(model=MODEL, instructions=SYSTEM, input=PROMPT, reasoning={"effort": EFFORT})


def summarize(response: Response) -> dict[str, Any]:
    usage = response.usage
    assert usage is not None, "a non-streamed Response always carries usage"
    why = response.incomplete_details.reason if response.incomplete_details else None
    return {
        "id": response.id,
        "text": response.output_text,
        "model": response.model,
        "finish_reason": "stop" if response.status == "completed" else INCOMPLETE_REASONS[str(why)],
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "reasoning_tokens": usage.output_tokens_details.reasoning_tokens,
        "cost_usd": cost(usage, response.model).total_usd,
    }
