"""Hostile case: a correct solution that is noisy on stderr (warnings, logging, prints); it must get full marks."""

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
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "cost_usd": cost(usage, completion.model).total_usd if usage else 0.0,
    }


import logging
import sys
import warnings

warnings.warn("this module is noisy on purpose", UserWarning, stacklevel=1)
warnings.warn("deprecated-looking thing", DeprecationWarning, stacklevel=1)
logging.warning("a logging warning at import")
print("a plain message on stderr", file=sys.stderr)
_summarize = summarize


def summarize(completion: ChatCompletion) -> dict[str, Any]:
    print("summarize called", file=sys.stderr)
    warnings.warn("still noisy", RuntimeWarning, stacklevel=1)
    return _summarize(completion)
