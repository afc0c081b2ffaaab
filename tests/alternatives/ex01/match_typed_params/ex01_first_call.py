"""Exercise 01, another valid solution: Chat Completions with the SDK's typed message params, the call
made on a per-request copy of the client (a timeout set with with_options), and one summarize() that
dispatches on the response's class with a `match` statement, so it reads either API's object."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.responses import Response

from labkit.costs import cost
from labkit.course.ex01 import EFFORT, INCOMPLETE_REASONS, MODEL, PROMPT, SYSTEM


def build_messages(prompt: str = PROMPT) -> list[ChatCompletionMessageParam]:
    system: ChatCompletionSystemMessageParam = {"role": "system", "content": SYSTEM}
    user: ChatCompletionUserMessageParam = {"role": "user", "content": prompt}
    return [system, user]


def first_completion(client: OpenAI) -> ChatCompletion:
    patient = client.with_options(timeout=30.0)  # a first call should not hang forever
    return patient.chat.completions.create(model=MODEL, messages=build_messages(), reasoning_effort=EFFORT)


def summarize(response: ChatCompletion | Response) -> dict[str, Any]:
    match response:
        case ChatCompletion(choices=[first, *_], usage=usage) if usage is not None:
            details = usage.completion_tokens_details
            text, finish = first.message.content, first.finish_reason
            counts = (usage.prompt_tokens, usage.completion_tokens, details.reasoning_tokens if details else 0)
        case Response(usage=usage) if usage is not None:
            text = response.output_text
            reason = response.incomplete_details.reason if response.incomplete_details else None
            finish = "stop" if response.status == "completed" else INCOMPLETE_REASONS[str(reason)]
            counts = (usage.input_tokens, usage.output_tokens, usage.output_tokens_details.reasoning_tokens)
        case _:
            raise TypeError(f"cannot summarize a {type(response).__name__}")
    input_tokens, output_tokens, reasoning_tokens = counts
    return {
        "id": response.id,
        "text": text,
        "model": response.model,
        "finish_reason": finish,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens or 0,
        "cost_usd": cost(usage, response.model).total_usd,
    }
