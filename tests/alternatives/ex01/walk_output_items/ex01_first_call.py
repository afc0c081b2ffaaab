"""Exercise 01 on the Responses API with the conversation as input items (system message first), a
summary built as a dataclass, and the text gathered by walking output items (no output_text)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from openai import OpenAI
from openai.types.responses import Response

from labkit.costs import cost
from labkit.course.ex01 import EFFORT, INCOMPLETE_REASONS, MODEL, PROMPT, SYSTEM


@dataclass
class CallRecord:
    id: str
    text: str
    model: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: float


def build_messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in zip(("system", "user"), (SYSTEM, prompt), strict=True)]


def first_completion(client: OpenAI) -> Response:
    request: dict[str, Any] = {"model": MODEL, "input": build_messages(), "reasoning": {"effort": EFFORT}}
    return client.responses.create(**request)


def _text_of(response: Response) -> str:
    pieces: list[str] = []
    for item in response.output:
        if item.type != "message":
            continue
        for part in item.content:
            if part.type == "output_text":
                pieces.append(part.text)
    return "".join(pieces)


def _why_it_ended(response: Response) -> str:
    match response.status:
        case "completed":
            return "stop"
        case _:
            reason = response.incomplete_details.reason if response.incomplete_details else None
            return INCOMPLETE_REASONS.get(reason or "", "length")


def summarize(response: Response) -> dict[str, Any]:
    usage = response.usage
    if usage is None:
        raise ValueError(f"{response.id} carries no usage")
    record = CallRecord(
        id=response.id,
        text=_text_of(response),
        model=response.model,
        finish_reason=_why_it_ended(response),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.output_tokens_details.reasoning_tokens,
        cost_usd=cost(usage, response.model).total_usd,
    )
    return asdict(record)
