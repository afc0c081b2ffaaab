"""Exercise 01: your first API call, made from code and accounted for.

Fill in the TODOs, then run `labkit check ex01` (or the last cell of notebooks/01_first_api_call.ipynb).
The client you are given is a real `openai.OpenAI`: in replay mode it answers from recordings,
with a key it calls the API. Never put a key in this file.
"""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletion

from labkit.costs import cost
from labkit.course.ex01 import MODEL, PROMPT, SYSTEM


def build_messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    """The conversation to send: a system message (SYSTEM) then the user's prompt."""
    ### BEGIN SOLUTION: build the system + user messages
    ### TODO: return a list of two dicts with "role" and "content" keys.
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    ### END SOLUTION


def first_completion(client: OpenAI) -> ChatCompletion:
    """Send one chat completion request with MODEL and build_messages(); return the response."""
    ### BEGIN SOLUTION: call client.chat.completions.create
    ### TODO: call client.chat.completions.create(...) once and return what it gives you.
    return client.chat.completions.create(model=MODEL, messages=build_messages())
    ### END SOLUTION


def summarize(completion: ChatCompletion) -> dict[str, Any]:
    """What a production log needs from a response.

    Return a dict with: "text" (the assistant's reply), "model" (the model that answered),
    "finish_reason", "prompt_tokens", "completion_tokens", and "cost_usd" priced with
    labkit.costs.cost(usage, model).total_usd.
    """
    ### BEGIN SOLUTION: summarize the completion
    ### TODO: read these from the completion object; do not type numbers in.
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
    ### END SOLUTION
