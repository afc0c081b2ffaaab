"""Lesson 01, your first API call: the request notebook 01 sends and exercise 01's contract.

The contract, once, as data (the starter's docstrings, notebook 01 and the checks read it):

* ``build_messages(prompt)`` returns the conversation: the instruction ``SYSTEM`` first (role
  ``"system"``, or ``"developer"``, its newer name; see ``INSTRUCTION_ROLES``), then the user's
  ``prompt`` unchanged.
* ``first_completion(client)`` sends exactly one request on the client it is given, through
  either API (``APIS``): Chat Completions or the Responses API. It asks ``MODEL`` with the
  conversation (in the Responses API ``instructions=SYSTEM, input=PROMPT`` says the same), at a
  reasoning effort chosen for the task (``EFFORT``; ``CHEAP_EFFORTS`` are accepted), and returns
  the SDK's object unchanged: a ``ChatCompletion`` or a ``Response``.
* ``summarize(response)`` reads whichever of the two it gets and returns the log record
  ``SUMMARY`` describes, with ``finish_reason`` in ``FINISH_REASONS``' words and ``cost_usd``
  priced from the response's own usage and model by ``labkit.costs.cost``.
"""

from __future__ import annotations

from .models import FAST

#: The model of the first call, by role: the course's cheapest current model.
MODEL = FAST
#: The reasoning effort of the first call, chosen on purpose. Every current model reasons before
#: it answers, and MODEL's default effort (medium) bills a few hundred hidden reasoning tokens as
#: output; a one-line subject line needs no reasoning at all.
EFFORT = "none"
#: Efforts that suit a one-line task (the checks accept either; the model must accept it too).
CHEAP_EFFORTS = ("none", "low")
SYSTEM = "You are a helpful business assistant."
PROMPT = "Write a professional email subject line for a sales outreach about project management software."
#: The conversation exercise 01's build_messages() must produce for PROMPT.
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
#: The roles an instruction may take: "developer" is the newer name of "system" (both accepted).
INSTRUCTION_ROLES = ("system", "developer")

#: The two APIs a first call may use: endpoint -> (SDK method, what it returns). Both are first-class.
APIS = {
    "/v1/chat/completions": ("client.chat.completions.create", "ChatCompletion"),
    "/v1/responses": ("client.responses.create", "Response"),
}
#: Where each API takes the request's parts: (Chat Completions, Responses API).
REQUEST_FIELDS = {
    "instruction": ("a 'system' (or 'developer') message first in messages", "instructions=SYSTEM (or that message first in input)"),
    "prompt": ("a 'user' message in messages", "input=PROMPT (or a 'user' message in input)"),
    "effort": (f"reasoning_effort={EFFORT!r}", f"reasoning={{'effort': {EFFORT!r}}}"),
    "output limit": ("max_completion_tokens (max_tokens is deprecated)", "max_output_tokens"),
}

#: The summary's keys: what each holds, and where a ChatCompletion and a Response keep it.
SUMMARY = {
    "id": ("the response's id (quote it when you ask for support)", "completion.id", "response.id"),
    "text": ("the assistant's reply, exactly as returned", "completion.choices[0].message.content",
             "response.output_text (an SDK property joining the message's output_text parts)"),
    "model": ("the model that answered, as the response names it", "completion.model", "response.model"),
    "finish_reason": ("why the answer ended, in FINISH_REASONS' words", "completion.choices[0].finish_reason",
                      "'stop' when response.status is 'completed', else INCOMPLETE_REASONS[response.incomplete_details.reason]"),
    "input_tokens": ("tokens billed as input", "completion.usage.prompt_tokens", "response.usage.input_tokens"),
    "output_tokens": ("tokens billed as output, hidden reasoning included", "completion.usage.completion_tokens",
                      "response.usage.output_tokens"),
    "reasoning_tokens": ("the hidden reasoning part of output_tokens",
                         "completion.usage.completion_tokens_details.reasoning_tokens",
                         "response.usage.output_tokens_details.reasoning_tokens"),
    "cost_usd": ("USD, priced by labkit.costs.cost(usage, model).total_usd", "cost(completion.usage, completion.model)",
                 "cost(response.usage, response.model)"),
}
#: Why an answer ended (Chat Completions' finish_reason, the summary's vocabulary).
FINISH_REASONS = {
    "stop": "the model finished its answer",
    "length": "the output limit cut it off (hidden reasoning counts against the limit)",
    "content_filter": "the content filter stopped it",
}
#: The Responses API says "completed" (= "stop") or "incomplete" with a reason: its equivalents.
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
