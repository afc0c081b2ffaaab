# %% [markdown]
# # 01 · Your first API call, from code
#
# **What you will build:** a function that makes one request on purpose (the model named by its
# role, the reasoning effort chosen for the task) through either of OpenAI's two text APIs, and a
# summary of what came back (id, text, model, why it stopped, tokens, cost): the record a
# production system keeps for every call. On the way you will see the same request as raw HTTP,
# the two APIs side by side, and how models come and go.
#
# The lesson's quick start calls `gpt-5` (the course keeps it as the role `LESSON_FLAGSHIP`). That
# model is deprecated and shuts down on 11 December 2026; the section on model lifecycles shows
# what the API answers for it then, and how the course moves to another model in one line.

# %%
import labkit

labkit.notebook.intro("ex01")

# %% [markdown]
# ## One request
#
# A chat completion takes a model and a list of messages. The **system** message sets who the
# assistant is (newer models also call it a **developer** message; both work); the **user**
# message is the task. The course never spells a model id in a lesson: `labkit/course/models.py`
# names each model once, by the role it plays, and `MODEL` here is the `FAST` role, the
# cheapest current model.
#
# Every current OpenAI model is a *reasoning* model: before it answers, it may think in hidden
# reasoning tokens that are billed as output. How much it thinks is the **reasoning effort**.
# A one-line subject line needs no thinking, so the first call sets the effort to `none` on
# purpose (the default is `medium`; the cost cell below shows the difference).
#
# The client comes from `labkit.client()`. In replay mode it answers from the recording; with a key
# it calls the API. Never write `api_key="sk-..."` in code: the SDK reads `OPENAI_API_KEY`.
# The model, effort, system message and prompt live in `labkit/course/ex01.py`, the one place the
# notebook, your exercise, the recordings and the checks all read them from.

# %%
from labkit.course.ex01 import EFFORT, MESSAGES, MODEL, PROMPT, SYSTEM

print("MODEL:", MODEL, "| EFFORT:", EFFORT)
print("lint:", labkit.lint_request(model=MODEL, messages=MESSAGES, reasoning_effort=EFFORT) or "no problems")
client = labkit.client("ex01")
completion = client.chat.completions.create(model=MODEL, messages=MESSAGES, reasoning_effort=EFFORT)
print(completion.choices[0].message.content)
print(labkit.provenance(client))

# %% [markdown]
# `labkit.lint_request` takes the same arguments as the call and says what the API would reject
# before you pay for a request; an empty list means it sees no problem.
#
# ## What the response holds
#
# The SDK returns a typed `ChatCompletion`, not a dict. The parts you will use in every program:

# %%
choice = completion.choices[0]
print("id:           ", completion.id)
print("model:        ", completion.model, "(the model that answered, as the API names it)")
print("finish_reason:", choice.finish_reason, "('length' would mean the output limit cut it off)")
usage = completion.usage
print("usage:        ", usage.prompt_tokens, "prompt +", usage.completion_tokens, "completion =", usage.total_tokens,
      "tokens, of which", usage.completion_tokens_details.reasoning_tokens, "reasoning")

# %% [markdown]
# ## What did it cost, and what would the default effort cost?
#
# Input and output tokens have different prices (output is several times dearer), cached input is
# cheaper still, and hidden reasoning tokens are billed as output. So cost comes from `usage`,
# priced per kind of token, never from "total tokens times one price". Here is the same request
# without `reasoning_effort`, so the model runs at its default:

# %%
from labkit.catalog import get_model
from labkit.costs import cost

default = client.chat.completions.create(model=MODEL, messages=MESSAGES)  # no effort: the model's default
runs = {f"effort {EFFORT!r}": completion, f"default ({get_model(MODEL).default_effort})": default}
for label, r in runs.items():
    priced = cost(r.usage, r.model)
    print(f"{label:<18} {r.usage.completion_tokens:>4} output tokens ({r.usage.completion_tokens_details.reasoning_tokens:>3}"
          f" reasoning)  ${priced.total_usd:.7f}  per 1,000 calls ${1000 * priced.total_usd:.4f}")
print(cost(default.usage, default.model))
ratio = cost(default.usage, default.model).total_usd / cost(completion.usage, completion.model).total_usd
print(f"the same subject line at the default effort: {ratio:.1f}x the price, and slower (reasoning comes before the first word)")

# %% [markdown]
# Fractions of a cent, but the ratio is what matters at volume, and it grows with the effort. Pick
# the effort per task: `none` or `low` for one-liners, classification and extraction; `medium` or
# more for multi-step work. (The recordings are authored: the number of reasoning tokens comes
# from the course's documented model of each effort, not from a live run; see
# `labkit/authoring.py`.)
#
# ### Counting tokens yourself
#
# `labkit.count_tokens` counts with the real `tiktoken` tokenizer, offline, including the few
# tokens of overhead each chat message adds:

# %%
print("counted locally:", labkit.count_tokens(MESSAGES, MODEL), "| reported by the response:", completion.usage.prompt_tokens)

# %% [markdown]
# They match here, but that proves less than it seems: this answer was authored for the course, and
# its `usage` was computed with this same tokenizer from this same text, so the two numbers could
# not differ. Against the live API a local count is an estimate. It can be off because of:
#
# * **the tokenizer**: the catalog assumes `o200k_base` for the course's models; a new model may
#   use a newer encoding that `tiktoken` does not know yet;
# * **tokens you never wrote**: the per-message overhead is a published rule of thumb, and the API
#   adds its own formatting around the system or developer message, the schema of a structured
#   output, tool definitions;
# * **reasoning tokens**: they are output, and nobody can count them before the call; only
#   `usage` tells you afterwards;
# * **images and files**: they are billed by size and detail level, not by any text you can count.
#
# So count locally to estimate and to stay under a limit; bill and log from `usage`.
#
# ## The same request as raw HTTP
#
# Under the SDK is one HTTPS POST. With curl it looks like this (the key comes from the
# environment, never typed into the command):

# %%
import json

body = {"model": MODEL, "messages": MESSAGES, "reasoning_effort": EFFORT}
print("curl https://api.openai.com/v1/chat/completions \\")
print('  -H "Content-Type: application/json" \\')
print('  -H "Authorization: Bearer $OPENAI_API_KEY" \\')
print(f"  -d '{json.dumps(body)}'")

# %% [markdown]
# Here we make that exact request with `httpx2` (the HTTP library the SDK is built on), answered by
# the recording instead of the network:

# %%
import httpx2
from labkit.replay import ReplayTransport

http = httpx2.Client(transport=ReplayTransport(["ex01"]), base_url="https://api.openai.com/v1")
raw = http.post("/chat/completions", headers={"Authorization": "Bearer <your key here>"}, json=body)
print(raw.status_code, raw.headers["content-type"])
print(raw.json()["choices"][0]["message"]["content"])

# %% [markdown]
# ## Two APIs for the same call: Chat Completions and Responses
#
# OpenAI has two APIs for text generation. **Chat Completions** (`/v1/chat/completions`) is the
# older one, the one the lesson uses and the one many other libraries and providers copy. The
# **Responses API** (`/v1/responses`) is the newer one, and it is where new features land. Here is
# the first call through it: the system message becomes `instructions`, the user message becomes
# `input`, and the effort moves into `reasoning`:

# %%
response = client.responses.create(model=MODEL, instructions=SYSTEM, input=PROMPT, reasoning={"effort": EFFORT})
print(response.output_text)
print("status:", response.status, "| output items:", [item.type for item in response.output])
print("usage:", response.usage.input_tokens, "in,", response.usage.output_tokens, "out, of which",
      response.usage.output_tokens_details.reasoning_tokens, "reasoning")
print("'output_text' in the JSON the API sent:", "output_text" in response.model_dump())

# %% [markdown]
# `response.output_text` is a convenience of the Python SDK, not a field of the response: the JSON
# holds a list of `output` items (a `reasoning` item when the model reasoned, then a `message`
# whose `content` parts hold the text), and `output_text` joins the text parts of every message for
# you. Code that reads the raw JSON, or another language's SDK, has to walk `output` itself. (At
# effort `none` there is no reasoning item; at the default effort `output[0]` is the reasoning
# item, so `output[0].content[0].text` is a bug waiting to happen.)
#
# The same facts, in each API:
#
# | | Chat Completions | Responses API |
# | --- | --- | --- |
# | call | `client.chat.completions.create` | `client.responses.create` |
# | instruction | a `system` (or `developer`) message | `instructions=` (or that message first in `input`) |
# | the task | `messages=[...]` | `input="..."` or `input=[...]` (the same message dicts work) |
# | effort | `reasoning_effort="none"` | `reasoning={"effort": "none"}` |
# | output limit | `max_completion_tokens` (`max_tokens` is deprecated) | `max_output_tokens` |
# | the text | `choices[0].message.content` | `output_text` (SDK property over `output` items) |
# | why it stopped | `choices[0].finish_reason`: `stop`, `length`, `content_filter`, `tool_calls` | `status` (`completed` or `incomplete`) and `incomplete_details.reason` |
# | tokens | `usage.prompt_tokens`, `usage.completion_tokens` | `usage.input_tokens`, `usage.output_tokens` |
# | reasoning tokens | `usage.completion_tokens_details.reasoning_tokens` | `usage.output_tokens_details.reasoning_tokens` |
# | conversation state | you resend the whole history every time | stored responses: `previous_response_id`, or a `conversation` from the Conversations API |
#
# **Which one to use.** For a new project, the Responses API: new features arrive there first or
# only (built-in tools such as web and file search, background mode, conversation state, the
# newest reasoning controls), OpenAI says reasoning models work better there, and on several
# current models function tools work *only* there (the course's `DEFAULT` and `REASONING` models
# take no function tools in Chat Completions; `MODEL` takes them there only at effort `none`).
# Chat Completions remains supported and is fine for a simple, stateless call like this one, or
# when your code must also talk to other providers that copy its format. Most of this course uses
# Chat Completions because the lesson does, and shows the Responses form where it matters.
#
# Two older interfaces the lesson's material still mentions are gone or going:
#
# * **The Assistants API** (`client.beta.assistants`, threads, runs) was shut down on 26 August
#   2026. Its replacement is the Responses API for each turn plus the **Conversations API**
#   (`client.conversations.create()`, then `conversation=...` on each `responses.create`) for the
#   thread. The SDK still ships the old classes, marked deprecated, but the endpoints are gone.
# * **`functions` and `function_call`** in Chat Completions are deprecated in favour of `tools`
#   and `tool_choice`: each tool is `{"type": "function", "function": {"name", "description",
#   "parameters"}}` (in the Responses API: `{"type": "function", "name", "description",
#   "parameters"}`). `lint_request` flags the old form, and knows where function tools work:

# %%
from labkit.lint import format_findings

weather = {"name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ask = [{"role": "user", "content": "Weather in Oslo?"}]
for label, request in {
    "functions= (old form)": {"model": MODEL, "messages": ask, "functions": [weather], "reasoning_effort": EFFORT},
    "tools=, default effort": {"model": MODEL, "messages": ask, "tools": [{"type": "function", "function": weather}]},
    "tools=, effort none": {"model": MODEL, "messages": ask, "tools": [{"type": "function", "function": weather}],
                            "reasoning_effort": EFFORT},
}.items():
    print(f"{label}:\n  " + format_findings(labkit.lint_request(**request)).replace("\n", "\n  "))

# %% [markdown]
# ## Request ids and rate-limit headers
#
# Parsed objects hide the HTTP headers. `with_raw_response` keeps them: the request id (quote it to
# support when something goes wrong) and the `x-ratelimit-*` headers that tell you how much room you
# have left. Read these instead of relying on published tier tables, which change.

# %%
raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, reasoning_effort=EFFORT)
print("request id:", raw.headers["x-request-id"])
for name in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"):
    print(f"{name}: {raw.headers[name]}")
completion_again = raw.parse()  # the usual ChatCompletion
print(completion_again.choices[0].message.content)

# %% [markdown]
# ## Models come and go
#
# A model id in your code has a shelf life. Four things to know:
#
# **Aliases and dated snapshots.** Many model ids are aliases for a dated snapshot (the lesson's
# model is one; the cell below prints both). The `model` field of every response names the model that actually answered,
# so log it (your summary will). Requesting the snapshot pins behaviour; requesting the alias
# follows OpenAI's updates. Either way, both stop working on the model's shutdown date. (The
# answers in this course are authored, and the fact sheet behind the catalog lists no dated
# snapshot for the GPT-6 models, so their answers repeat the alias; a recording made live with
# `make record` shows what the API reports.)

# %%
from labkit.authoring import SNAPSHOTS
from labkit.catalog import base_id
from labkit.course import models

print(f"this notebook asked {MODEL!r}; the response names {completion.model!r}")
print(f"the lesson's {models.LESSON_FLAGSHIP!r} answered as {SNAPSHOTS[models.LESSON_FLAGSHIP]!r}",
      f"(base id {base_id(SNAPSHOTS[models.LESSON_FLAGSHIP])!r})")

# %% [markdown]
# **Shutdown dates.** OpenAI announces a model's shutdown months ahead, names a replacement, and
# `GET /v1/models` returns each model's `shutdown_date` (null when none is announced), so code can
# watch it:
#
# ```python
# for m in openai.OpenAI().models.list():
#     print(m.id, m.shutdown_date)
# ```
#
# The course's catalog (`labkit/models.toml`) keeps the same dates; `labkit doctor` checks the
# course's models against it, and `labkit doctor --live` (with a key, free) against
# `GET /v1/models`, failing when a model the course uses is within 60 days of shutting down. On the
# course's date, the models by role:

# %%
from labkit.clock import today

day = today()
lineup = {**models.ROLES, **{f"lesson {name}": model for name, model in models.LESSON.items()}}
for role, model in lineup.items():
    info = get_model(model)
    state = info.lifecycle(day)
    verb = "shut down on" if state == "shutdown" else "shuts down on"
    when = f"{verb} {info.shutdown_date}, use {info.replacement}" if info.shutdown_date else "no shutdown announced"
    print(f"{role:<17} {model:<14} {state:<10} {when}")

# %% [markdown]
# **What the API answers for a shut-down model.** The lesson's request, exactly as written, asks
# for `gpt-5`. On the course's date it still works, with a warning; `lint_request` judges it on any
# day you give it. From the shutdown date on, the API answers `404 model_not_found`: the recording
# below is that answer (replay serves it only to this exact request).

# %%
import datetime

from openai import NotFoundError

lesson_request = {"model": models.LESSON_FLAGSHIP, "messages": MESSAGES}
shutdown = datetime.date.fromisoformat(get_model(models.LESSON_FLAGSHIP).shutdown_date)
print(f"lint on {day}:", format_findings(labkit.lint_request(today=day, **lesson_request)))
print(f"lint on {shutdown}:", format_findings(labkit.lint_request(today=shutdown, **lesson_request)))
try:
    client.chat.completions.create(**lesson_request)
    print("the API still answers this model (before its shutdown date)")
except NotFoundError as err:
    print(f"{err.status_code} {err.code}: {err.body['message'] if isinstance(err.body, dict) else err.message}")
    print(labkit.provenance(client))

# %% [markdown]
# **Migrating.** Because the course names each model once, by role, moving to another model is a
# one-line change in `labkit/course/models.py` (point `FAST` at the new id), then `make cassettes
# notebooks` to re-author the recordings. A string swap is rarely all: run `labkit.lint_request` on
# your requests after the swap, because newer models reject parameters older ones took (sampling
# parameters outside effort `none`, `max_tokens`, function tools in Chat Completions), and compare
# a few answers before you ship.
#
# ## Your turn: exercise 01
#
# Open `exercises/ex01_first_call.py` and fill in the three functions: `build_messages`,
# `first_completion` and `summarize`. Use either API for the call: the checks grade what your
# request means (`MODEL`, the system message and prompt, an effort chosen for a one-line task),
# and `summarize` must read whichever object your call returns. Where each API keeps each field
# of the summary:

# %%
from labkit.course.ex01 import SUMMARY

for key, (meaning, in_chat, in_responses) in SUMMARY.items():
    print(f"{key:<17} {meaning}\n{'':<19}Chat Completions: {in_chat}\n{'':<19}Responses API:    {in_responses}")

# %% [markdown]
# This cell runs your file. Its client also answers requests worded differently from the recording
# (`simulate=True`: the recorded text, with usage and ids computed for your request, marked
# "simulated"), and answers requests the API would reject with the API's error:

# %%
ex01 = labkit.notebook.exercise("ex01")
try:
    mine = labkit.client("ex01", simulate=True)
    print(ex01.summarize(ex01.first_completion(mine)))
    print(labkit.provenance(mine))
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** a request is a model (named by role), a conversation and the effort the task needs;
# the two APIs carry the same facts in different places, and new work belongs on the Responses
# API; the response says which model answered, why it stopped and the tokens you pay for,
# reasoning included; cost comes from `usage`, per kind of token; model ids expire, so keep them in
# one place and let lint and `labkit doctor` tell you when to move. Check your work (hidden checks
# are graded by your instructor):

# %%
labkit.check("ex01")
