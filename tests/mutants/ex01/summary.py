"""Exercise 01 (reference solution): your first API call, made from code and accounted for."""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletion

from labkit.costs import cost

MODEL = "gpt-4.1-mini"
SYSTEM = "You are a helpful business assistant."
PROMPT = "Write a professional email subject line for a sales outreach about project management software."


def build_messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    """The conversation to send: a system message (SYSTEM) then the user's prompt."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def first_completion(client: OpenAI) -> ChatCompletion:
    """Send one chat completion request with MODEL and build_messages(); return the response."""
    return client.chat.completions.create(model=MODEL, messages=build_messages())


def summarize(completion: ChatCompletion) -> dict[str, Any]:
    """What a production log needs from a response."""
    choice = completion.choices[0]
    usage = completion.usage
    return {
        "text": choice.message.content,
        "model": completion.model,
        "finish_reason": choice.finish_reason,
        "prompt_tokens": usage.total_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "cost_usd": cost(usage, completion.model).total_usd if usage else 0.0,
    }
