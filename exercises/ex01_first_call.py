"""Exercise 01: your first API call, made on purpose and accounted for.

Fill in the TODOs, then run `labkit check ex01` (or the last cell of notebooks/01_first_api_call.ipynb).
The client you are given is a real `openai.OpenAI`: in replay mode it answers from recordings,
with a key it calls the API. Never put a key in this file.

Use either API for the call: Chat Completions (`client.chat.completions.create`, returns a
`ChatCompletion`) or the Responses API (`client.responses.create`, returns a `Response`). Both
earn full marks; `summarize` must read whichever object your `first_completion` returns. The
contract, with where each API keeps every field, is in labkit/course/ex01.py.
"""

from __future__ import annotations

from typing import Any

from openai import OpenAI
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from labkit.costs import cost
from labkit.course.ex01 import EFFORT, MODEL, PROMPT, SYSTEM


def build_messages(prompt: str = PROMPT) -> list[dict[str, str]]:
    """The conversation to send: the instruction SYSTEM as a "system" message, then the user's prompt, unchanged."""
    # TODO: return a list of two dicts with "role" and "content" keys.
    raise NotImplementedError("build the system + user messages")


def first_completion(client: OpenAI) -> ChatCompletion | Response:
    """Send ONE request on `client`: MODEL, build_messages(), reasoning effort EFFORT; return what the SDK gives you.

    Chat Completions: client.chat.completions.create(model=..., messages=..., reasoning_effort=...).
    Responses API: client.responses.create(model=..., input=..., reasoning={"effort": ...})
    (or instructions=SYSTEM, input=PROMPT). Set the effort on purpose: MODEL's default, medium,
    bills hidden reasoning tokens that a one-line subject line does not need.
    """
    # TODO: call the client once, with MODEL, build_messages() and EFFORT, and return its result unchanged.
    raise NotImplementedError("make the first call (client.chat.completions.create or client.responses.create)")


def summarize(response: ChatCompletion | Response) -> dict[str, Any]:
    """What a production log keeps of a response (a ChatCompletion or a Response: read the one you get).

    Return a dict with:
      "id"               the response's id
      "text"             the reply: choices[0].message.content, or a Response's output_text
      "model"            the model that answered, as the response names it
      "finish_reason"    "stop", "length" or "content_filter": choices[0].finish_reason; for a
                         Response, "stop" when status is "completed", else
                         INCOMPLETE_REASONS[response.incomplete_details.reason] (labkit.course.ex01)
      "input_tokens"     usage.prompt_tokens (Chat) or usage.input_tokens (Responses)
      "output_tokens"    usage.completion_tokens or usage.output_tokens (hidden reasoning included)
      "reasoning_tokens" the reasoning part of it: usage.completion_tokens_details.reasoning_tokens
                         or usage.output_tokens_details.reasoning_tokens
      "cost_usd"         labkit.costs.cost(usage, model).total_usd, with the response's model
    """
    # TODO: read every value from the object you are given; do not type numbers or text in.
    raise NotImplementedError("summarize the response")

# labkit starter 0ec607bb6214 (made from solutions/ex01_first_call.py by `labkit exercises build`)
