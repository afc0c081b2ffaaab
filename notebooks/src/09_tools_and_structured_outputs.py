# %% [markdown]
# # 09 · Tools and structured outputs: a model that acts, safely
#
# **What you will build:** the function-calling system of the lesson's first exercise, on today's
# API. Tools are declared once (a typed Python function and a pydantic model of its arguments); a
# registry turns them into the strict JSON schemas the API wants and runs the model's calls; a loop
# sends each result back under its call id until the model answers. The tools touch real things:
# a SQLite database of orders and a small HTTP weather service on 127.0.0.1. Then every edge case
# the lesson lists, one by one: parallel calls, arguments that fail validation, a tool that does
# not exist, a tool that raises or hangs, a refund that must be confirmed by a person, and a model
# that never stops calling tools. After that: Structured Outputs with `parse` (nested objects, a
# refusal as a typed outcome, the schema the SDK really sends), and conversation state
# (`previous_response_id`, the Conversations API, moving off the Assistants API, and keeping a
# long conversation inside a token budget).

# %%
import labkit

labkit.notebook.intro("ex09")

# %% [markdown]
# ## From `functions` to `tools`, and which API takes them
#
# The lesson declares its functions the 2023 way: `functions=[...]` and `function_call="auto"` on
# Chat Completions, answered by `message.function_call`. Both parameters have been deprecated since
# November 2023 in favour of `tools=[{"type": "function", ...}]` and `tool_choice`, which also
# allow several calls in one answer, each with an id. The course's linter says so before anything
# is sent:

# %%
from labkit.course.ex09 import CHAT_MODEL, MODEL, lesson_request

for finding in labkit.lint_request(**lesson_request(CHAT_MODEL)):
    print(finding.code, "->", finding.message)

# %% [markdown]
# The second change is newer. Every GPT-6 model is a reasoning model, and most of them take
# function tools **only on the Responses API**; the ones that accept them in Chat Completions do so
# only at reasoning effort `"none"`. The course's catalog records this per model (`chat_tools` in
# `labkit/models.toml`):

# %%
from labkit.catalog import get_model
from labkit.course.models import ROLES

for role, model in ROLES.items():
    print(f"{role:9} {model:14} function tools in Chat Completions: {get_model(model).chat_tools}")

# %% [markdown]
# So the lesson's request, rewritten with `tools`, still fails on the course's everyday model,
# and works in two ways: the fast model at effort `"none"` on Chat Completions, or any model on
# the Responses API. The tool's parameters come from a pydantic model (next section explains how).

# %%
import openai

from labkit.course.ex09 import CHAT_EFFORT, EFFORT, LESSON_QUESTION, GetWeather

ref = labkit.notebook.solution("ex09")
client = labkit.client("ex09")
tool = {"type": "function", "name": "get_weather", "description": "Current weather in a city.",
        "parameters": ref.strict_schema(GetWeather), "strict": True}
chat_tool = {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}
question = [{"role": "user", "content": LESSON_QUESTION}]

try:
    client.chat.completions.create(model=MODEL, messages=question, tools=[chat_tool])
except openai.BadRequestError as err:
    print(f"{MODEL} on Chat Completions: 400 {err.body['message']}\n")

chat = client.chat.completions.create(model=CHAT_MODEL, messages=question, tools=[chat_tool], reasoning_effort=CHAT_EFFORT)
call = chat.choices[0].message.tool_calls[0]
print(f"{CHAT_MODEL} at effort none, Chat Completions: {call.function.name}({call.function.arguments})  id={call.id}")

response = client.responses.create(model=MODEL, input=LESSON_QUESTION, tools=[tool], reasoning={"effort": EFFORT})
call = next(item for item in response.output if item.type == "function_call")
print(f"{MODEL}, Responses API: {call.name}({call.arguments})  call_id={call.call_id}")
print("output items:", [item.type for item in response.output])
print(labkit.provenance(client))

# %% [markdown]
# The Responses API answer is a list of **output items**: a `reasoning` item (the model thought
# first), then one `function_call` item per call, each with a `call_id`. Nothing ran yet: the model
# only asked. Running the function and sending its result back is your code's job, and that loop is
# what this notebook builds, on the Responses API (the exercise accepts either).

# %% [markdown]
# ## The real things the tools touch
#
# A stand-in for the shop's systems, both real: a **SQLite** database of seven orders (money in
# cents), and a **weather service**, a small WSGI application served by a real HTTP server on
# 127.0.0.1, standing in for a paid weather API. It answers `GET /v1/current?city=...` with JSON,
# a 404 for a city it does not know, a 503 for a station that is down (Nuuk) and, slowly, for a
# station on a satellite link (Longyearbyen).

# %%
import tempfile
from pathlib import Path

from labkit.course.ex09 import WEATHER_PATH, WeatherService, create_orders_db

db = create_orders_db(Path(tempfile.mkdtemp(prefix="ex09-")) / "orders.db")
for row in db.execute("SELECT order_id, customer, email, status, total_cents, items FROM orders"):
    print(row)

weather = WeatherService()  # a real server on 127.0.0.1, in a background thread
http = weather.client()
for city in ["Paris", "São Paulo", "Nuuk", "Atlantis"]:
    reply = http.get(WEATHER_PATH, params={"city": city})
    print(reply.status_code, reply.url.path + "?" + reply.url.query.decode(), reply.json())

# %% [markdown]
# Note the encoded `S%C3%A3o+Paulo`: the HTTP client encodes what goes in `params`. A tool that
# builds the URL with an f-string would send `city=Paris&country=FR` as *two* parameters when the
# model passes `Paris&country=FR`, and get Paris's weather for a question about another place.
# The same goes for SQL: customers have apostrophes in their names and emails (Dara O'Brien), so
# every query uses `?` placeholders, never string formatting.

# %% [markdown]
# ## Tools declared once
#
# A tool is two things you already write anyway: a **function** with a docstring, and a **pydantic
# model** of its arguments. The registry derives the rest: the tool's name (the function's), its
# description (the docstring, which is what the model reads to decide when to call it), and the
# JSON schema of its parameters. Here are the shop's four tools, registered by the reference
# solution's `build_registry`, and what one of them looks like on the wire:

# %%
import json

shop = ref.build_registry(db, http)
for name, t in shop.tools.items():
    print(f"{name:12} side effect: {t.side_effect!s:5}  {t.description}")
print()
print(json.dumps(shop.schemas("responses")[0], indent=1, ensure_ascii=False))

# %% [markdown]
# ### The schema the SDK actually sends
#
# `"strict": true` makes the API constrain the model's arguments to the schema, so they always
# parse. Strict mode accepts only a subset of JSON Schema, and a schema straight from pydantic
# breaks it in three ways: fields with a default are not `required` (strict mode wants *every*
# field required), objects do not say `additionalProperties: false`, and a free-form `dict` cannot
# be closed at all. The SDK's converter (`openai.pydantic_function_tool`, the same one
# `responses.parse` uses) fixes the first two: an optional field becomes a required field that
# may be `null`, and a field with a default becomes required too (the model must send it every
# time; pydantic's default is never used). Compare:

# %%
from typing import Literal

from pydantic import BaseModel


class Delivery(BaseModel):
    """Where and how to ship an order."""

    city: str
    postcode: str | None = None
    speed: Literal["standard", "express"] = "standard"


plain = Delivery.model_json_schema()
strict = openai.pydantic_function_tool(Delivery)["function"]["parameters"]
for label, schema in (("pydantic", plain), ("strict", strict)):
    print(f"{label:8}", "required:", schema["required"], "| additionalProperties:", schema.get("additionalProperties", "(absent)"))
    print(" " * 8, "postcode:", schema["properties"]["postcode"])

# %% [markdown]
# The lesson's extraction code sends `"strict": True` with `TaskExtraction.model_json_schema()`,
# the pydantic form: the API rejects that schema with a 400 before the model sees anything. The
# same rules check what the course's simulator would answer:

# %%
from labkit.course.ex09 import Extraction
from labkit.simulate import strict_schema_problem

print("pydantic's schema:", strict_schema_problem(Extraction.model_json_schema(), "response_format 'Extraction'"))
sdk = openai.pydantic_function_tool(Extraction)["function"]["parameters"]
print("the SDK's strict form:", strict_schema_problem(sdk, "response_format 'Extraction'") or "accepted")

# %% [markdown]
# What the SDK lets through is the free-form dict: it leaves `additionalProperties` as the dict's
# value schema, and the API refuses the tool. The registry refuses it earlier, when the tool is
# registered, where the mistake is made:

# %%
from labkit.course.ex09 import TagOrder

loose = {"type": "function", "name": "tag_order", "description": "Tag an order.",
         "parameters": openai.pydantic_function_tool(TagOrder)["function"]["parameters"], "strict": True}
try:
    client.responses.create(model=MODEL, input="Tag order A-1001 as a gift.", tools=[loose])
except openai.BadRequestError as err:
    print("the API:", err.body["message"])
try:
    ref.ToolRegistry().tool(TagOrder)(lambda args: None)
except TypeError as err:
    print("the registry:", err)

# %% [markdown]
# ## The loop
#
# One request per round: send the conversation and the tools; if the answer holds function calls,
# run each one and append, for each, a `function_call_output` item carrying the call's `call_id`
# (not the item's `id`) and the result as text; then ask again. When an answer has no calls, its
# text is the answer. Two details matter on a reasoning model:
#
# * Send the answer's output items back as they came (`items += response.output`): the `reasoning`
#   item travels with its function calls. Sending a call back by id without its reasoning item is a
#   400. (Or let the API keep the conversation: `previous_response_id`, below.)
# * Every call gets exactly one output. A call left unanswered is a 400 too (`No tool output found
#   for function call ...`).

# %%
from labkit.course.ex09 import QUESTIONS


def show(result):
    """Each tool call of a run, what went back for it, and how the run ended."""
    for o in result.outputs:
        print(f"  {o.call_id}  {o.name:12} -> {o.output[:118]}")
    print(result, end="\n\n")


show(ref.run_tools(client, shop, QUESTIONS["loop"]))

# %% [markdown]
# The model asked for both lookups in one answer: **parallel tool calls**, on by default. Each call
# has its own `call_id` and gets its own output. Here is the loop's core, from the reference
# solution (your version is in the exercise):
#
# ```python
# for round_ in range(1, max_rounds + 1):
#     response = client.responses.create(**responses_request(items, tools))
#     calls = [item for item in response.output if item.type == "function_call"]
#     if not calls:
#         return RunResult(response.output_text, "answer", round_, outputs)
#     if round_ == max_rounds:
#         break                      # these calls could never be answered: don't run them
#     items += response.output       # reasoning items travel with their calls
#     for call in calls:
#         output = registry.execute(call.name, call.arguments, confirm=confirm)
#         items.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
# return RunResult(None, "max_rounds", max_rounds, outputs)
# ```
#
# `registry.execute` never raises: whatever goes wrong becomes an **error result**, a JSON object
# with an `"error"` key, which the model reads like any other result and can act on. The lesson's
# registry raises on an unknown name and lets a tool's exception escape, so one bad call ends the
# whole conversation. Each edge case below is one of those.

# %% [markdown]
# ## Every edge case
#
# ### Parallel calls
#
# Three calls in one answer, two to the same tool: each runs, each gets its own output.

# %%
show(ref.run_tools(client, shop, QUESTIONS["parallel"]))

# %% [markdown]
# ### Arguments that fail validation
#
# A strict schema guarantees the *shape* of the arguments, not your rules: `GetOrder` accepts any
# string, and its validator wants `A-` and four digits. The model passes `"1001"`; the registry
# sends back pydantic's message, naming the field; the model corrects itself on the next round.
# (Without strict mode, or when an answer is cut off mid-call, the arguments may not even be JSON:
# the same path handles it.)

# %%
show(ref.run_tools(client, shop, QUESTIONS["invalid"]))

# %% [markdown]
# ### A tool that does not exist
#
# With strict tools the model rarely invents a name, but it happens: a tool removed between turns,
# a name from an older prompt, a non-strict setup. Never dispatch a name you did not register;
# answer with an error that lists what exists.

# %%
show(ref.run_tools(client, shop, QUESTIONS["unknown"]))

# %% [markdown]
# ### A tool that raises, and one that hangs
#
# The weather station in Nuuk is down (the service answers 503, the tool raises); the one in
# Longyearbyen takes a second to answer and this registry allows a tool 0.3 s. The registry runs
# each call in a worker thread and stops *waiting* at the limit. It cannot stop the thread: a timed
# out call may still finish its work later, which is harmless for a read and dangerous for a
# payment (side-effecting tools need an idempotency key, or no timeout).

# %%
import time

from labkit.course.ex09 import DEMO_TIMEOUT

slow_shop = ref.build_registry(db, http, timeout=DEMO_TIMEOUT)
start = time.perf_counter()
show(ref.run_tools(client, slow_shop, QUESTIONS["failing"]))
print(f"the run took {time.perf_counter() - start:.1f} s; the slow station takes 1.0 s")

# %% [markdown]
# ### Side effects need a person's yes
#
# `refund_order` moves money, so it is registered with `side_effect=True`: the registry validates
# the arguments, then asks `confirm(name, args)` (a person, through your UI) and runs the tool only
# on an explicit yes. No `confirm` at all means no refund. The model proposes; it never decides.

# %%
from labkit.course.ex09 import refunds_in


def ask(answer):
    def confirm(name, args):
        print(f"  confirm {name}({args.model_dump()})? -> {'yes' if answer else 'no'}")
        return answer

    return confirm


show(ref.run_tools(client, shop, QUESTIONS["refund"], confirm=ask(False)))
print("refunds:", refunds_in(db), end="\n\n")
show(ref.run_tools(client, shop, QUESTIONS["refund"], confirm=ask(True)))
print("refunds:", refunds_in(db))

# %% [markdown]
# ### A model that keeps calling tools
#
# Asked for every order of every customer, the model guesses one email after another. The loop
# caps the number of requests (`max_rounds`) and, at the cap, stops without running the last
# answer's calls (their results could never be sent back) and says so: `stopped="max_rounds"`,
# no answer. (The lesson suggests one more request with `tool_choice="none"` to force a final
# answer; that is a fine policy too, as long as it counts against the cap.)

# %%
from labkit.course.ex09 import DEMO_MAX_ROUNDS

show(ref.run_tools(client, shop, QUESTIONS["endless"], max_rounds=DEMO_MAX_ROUNDS))

# %% [markdown]
# ## Structured Outputs
#
# When you want data rather than actions, skip the tools: give `parse` a pydantic model and get an
# instance back. `responses.parse(text_format=...)` puts the strict schema in `text.format`;
# `chat.completions.parse(response_format=...)` does the same on Chat Completions. Nested models
# work (a person with a company and an address); a field the text does not give comes back
# `null`, because the schema makes every field required and the instructions say never to guess.

# %%
from labkit.course.ex09 import CARD_TEXT, THREAD_TEXT, extract_input

card = ref.extract(client, CARD_TEXT)
person = card.people[0]
print(person.full_name, "|", person.job_title, "|", person.company, "|", person.address.city, person.address.postal_code)

completion = client.chat.completions.parse(model=CHAT_MODEL, messages=extract_input(THREAD_TEXT),
                                           response_format=Extraction, reasoning_effort=CHAT_EFFORT)
for p in completion.choices[0].message.parsed.people:
    print(f"{p.full_name:12} email={p.email} phone={p.phone} company={p.company.name if p.company else None}")

wire = labkit.transport_of(client).sent[-1]["response_format"]
print("\nwhat chat.completions.parse sent:", wire["type"], wire["json_schema"]["name"], "strict =", wire["json_schema"]["strict"])

# %% [markdown]
# ### A refusal is an outcome, not an error
#
# A model may decline (here: work out where a private person lives). Then there is no parsed
# object: `output_parsed` is `None` and the message holds a `refusal` part (Chat Completions:
# `message.refusal`). Code that reads `.people` on `None` crashes on the one request where the
# user most needs a clear answer. `extract` returns a `Refusal` instead, a type the caller must
# handle. (JSON mode, `{"type": "json_object"}`, is no substitute for any of this: it guarantees
# the JSON's syntax, not your schema.)

# %%
from labkit.course.ex09 import REFUSED_TEXT, Refusal

outcome = ref.extract(client, REFUSED_TEXT)
match outcome:
    case Refusal(reason=reason):
        print("refused:", reason)
    case _:
        print(len(outcome.people), "people")

# %% [markdown]
# ## Conversation state
#
# ### `previous_response_id`
#
# The Responses API stores each response (for 30 days by default; `store=False` opts out), so a
# follow-up can name the previous one instead of resending the history. You still pay for the
# whole conversation as input tokens on every turn (the cached part at the cached price): the
# second turn's input is the first turn's input, its answer, and the new question.

# %%
from labkit.course.ex09 import opening

first = client.responses.create(model=MODEL, input=opening("Hi, I'm Ana Souza; my order is A-1001."), reasoning={"effort": EFFORT})
second = client.responses.create(model=MODEL, previous_response_id=first.id, input="Remind me what I ordered?",
                                 reasoning={"effort": EFFORT})
print(second.output_text)
print("input tokens:", first.usage.input_tokens, "then", second.usage.input_tokens)

# %% [markdown]
# ### The Conversations API
#
# A **conversation** is a durable object holding the items (messages, tool calls and their
# outputs, reasoning) of every response made with `conversation=its id`. Unlike a chain of
# response ids it has a single handle, metadata, and a list of items you can read and edit; per
# OpenAI's conversation-state guide its items are not subject to the 30-day expiry of stored
# responses, so delete a conversation when the customer's case is closed (and mind what personal
# data it keeps meanwhile).

# %%
conv = client.conversations.create(metadata={"customer": "ana.souza@example.com"})
client.responses.create(model=MODEL, conversation=conv.id, input=opening("Hi, I'm Ana Souza; my order is A-1001."),
                        reasoning={"effort": EFFORT})
reply = client.responses.create(model=MODEL, conversation=conv.id, input="Remind me what I ordered?", reasoning={"effort": EFFORT})
print(reply.output_text, "\n")
for item in client.conversations.items.list(conv.id, order="asc").data:
    text = " ".join(getattr(part, "text", "") for part in getattr(item, "content", None) or [])
    print(f"{item.type:9} {getattr(item, 'role', '') or '':9} {text[:70]}")
print(client.conversations.delete(conv.id).deleted)

# %% [markdown]
# ### Moving an Assistants design to the Responses API
#
# The lesson's tour of the API builds stateful assistants on the **Assistants API** (assistants,
# threads, messages, runs polled until done). It was shut down on 26 August 2026; the SDK still ships `client.beta.threads`,
# marked deprecated, and the API no longer serves it. The same design maps onto what you just used:
#
# | Assistants API (gone) | Responses API |
# | --- | --- |
# | an assistant: instructions, model, tools, stored server-side | your code: a developer message, the model's role, `registry.schemas()` (the "Prompts" objects first offered in their place were deprecated too, with a shutdown scheduled for 30 November 2026) |
# | a thread | a conversation (`client.conversations.create()`) |
# | adding a message | the `input` of the next response |
# | a run, created then polled | one `client.responses.create(...)` call (or `background=True` for long work) |
# | run steps | the response's output items |
# | `requires_action` + `submit_tool_outputs` | `function_call` items, answered with `function_call_output` items by `call_id` |
# | code interpreter, file search ("retrieval") | the built-in tools of the Responses API |
#
# The migration is mostly deletion: no polling loop, no run states; the loop of this notebook *is*
# the run.

# %%
deprecated = getattr(openai.resources.beta.threads.Threads.create, "__deprecated__", None)
print("client.beta.threads.create:", deprecated)

# %% [markdown]
# ### Keeping a long conversation inside a budget
#
# A long support conversation resends (and pays for) everything on every turn. Two remedies:
#
# * **Trim** it yourself: keep the instructions and the newest turns that fit a token budget,
#   never cutting between a tool call and its output (an orphaned output is a 400). That is the
#   exercise's `trim_history`. It forgets the old turns entirely.
# * **Compact** it with the API: `client.responses.compact(...)` returns the user messages and one
#   opaque `compaction` item standing for everything else; you carry those forward instead of the
#   history. (`context_management=[{"type": "compaction", "compact_threshold": ...}]` on
#   `responses.create` does it automatically past a threshold.)

# %%
from labkit.course.ex09 import history_tokens, long_history

history = long_history()
print(len(history), "items,", history_tokens(history, MODEL), "tokens")
trimmed = ref.trim_history(history, budget=800, model=MODEL)
print("trimmed to", len(trimmed), "items,", history_tokens(trimmed, MODEL), "tokens; starts with", trimmed[0]["role"], "then",
      trimmed[1].get("role") or trimmed[1]["type"])

compacted = client.responses.compact(model=MODEL, input=history)
print("compacted:", [item.type for item in compacted.output].count("message"), "user messages and",
      [item.type for item in compacted.output].count("compaction"), "compaction item")
follow = "Thanks. Which of my orders is still processing?"
carried = [item.model_dump(exclude_none=True, warnings=False) for item in compacted.output]
after = client.responses.create(model=MODEL, input=[*carried, {"role": "user", "content": follow}], reasoning={"effort": EFFORT})
whole = client.responses.create(model=MODEL, input=[*history, {"role": "user", "content": follow}], reasoning={"effort": EFFORT})
print(f"next turn: {after.usage.input_tokens} input tokens after compaction, {whole.usage.input_tokens} with the whole history")
print(after.output_text)

# %% [markdown]
# ## Your turn
#
# Open `exercises/ex09_tools.py` and fill in the TODOs: the registry (`strict_schema`, `tool`,
# `schemas`, `execute`), the four shop tools, the loop, `extract` and `trim_history`. The cell
# below runs your loop against a **scripted model** (`labkit.simulate.ScriptedModel`), which plays
# a given sequence of answers and enforces the API's rules on what you send back, on your own shop
# tools and the real weather service. The checks use the same model with harder scripts.

# %%
from labkit.simulate import ScriptedModel, Turn

ex09 = labkit.notebook.exercise("ex09")
try:
    model = ScriptedModel([
        Turn(calls=(("get_order", {"order_id": "A-1001"}), ("get_weather", {"city": "Lisbon"}))),
        Turn(text="Your shoes have shipped, and Lisbon is sunny."),
    ])
    mine = ex09.run_tools(model.client(), ex09.build_registry(create_orders_db(), http), QUESTIONS["loop"])
    print(mine)
    for o in mine.outputs:
        print(" ", o.name, o.output[:100])
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** `functions`/`function_call` are long deprecated: send `tools`, and on GPT-6 models use
# the Responses API (or Chat Completions at effort `"none"` where the model allows it). Declare
# each tool once, as a function and a pydantic model; send strict schemas (every field required,
# optional ones nullable, no free-form dicts). Run every call of an answer and send each result
# back under its `call_id`, with the reasoning items; turn every failure (unknown tool, bad
# arguments, an exception, a timeout, an unconfirmed side effect) into an error result the model
# can read; cap the rounds and say when the cap stopped you. Parse structured answers with
# `parse`, and treat a refusal as an outcome. Keep state with `previous_response_id` or a
# conversation (and delete what you no longer need); trim or compact long histories. Check your
# work:

# %%
weather.stop()
labkit.check("ex09")
