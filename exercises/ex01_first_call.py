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
    # TODO: return a list of two dicts with "role" and "content" keys.
    raise NotImplementedError("build the system + user messages")


def first_completion(client: OpenAI) -> ChatCompletion:
    """Send one chat completion request with MODEL and build_messages(); return the response."""
    # TODO: call client.chat.completions.create(...) once and return what it gives you.
    raise NotImplementedError("call client.chat.completions.create")


def summarize(completion: ChatCompletion) -> dict[str, Any]:
    """What a production log needs from a response.

    Return a dict with: "text" (the assistant's reply), "model" (the model that answered),
    "finish_reason", "prompt_tokens", "completion_tokens", and "cost_usd" priced with
    labkit.costs.cost(usage, model).total_usd.
    """
    # TODO: read these from the completion object; do not type numbers in.
    raise NotImplementedError("summarize the completion")

# labkit starter 59ee0b9f8af1 (made from solutions/ex01_first_call.py by `labkit exercises build`)
