# %% [markdown]
# # 01 · Your first API call, from code
#
# **What you will build:** a function that sends one chat completion and a summary of what came
# back (text, model, finish reason, tokens, cost), the record a production system keeps for every
# call. You will also see the same request as raw HTTP and through the newer Responses API.

# %%
import labkit

labkit.notebook.intro("ex01")

# %% [markdown]
# ## One request
#
# A chat completion takes a model and a list of messages. The **system** message sets who the
# assistant is; the **user** message is the task. We use `gpt-4.1-mini` here: a fast, cheap
# sampling model. (The lesson uses `gpt-5`; it works the same way for this call, costs more, and,
# as notebook 02 shows, rejects some of the parameters the lesson later sets.)
#
# The client comes from `labkit.client()`. In replay mode it answers from the recording; with a key
# it calls the API. Never write `api_key="sk-..."` in code: the SDK reads `OPENAI_API_KEY`.
#
# The lesson's model, system message and prompt live in `labkit/course/ex01.py`, the one place the
# notebook, your exercise, the recordings and the checks all read them from.

# %%
from labkit.course.ex01 import MODEL, PROMPT, SYSTEM

client = labkit.client("ex01")
completion = client.chat.completions.create(
    model=MODEL,
    messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
)
print(completion.choices[0].message.content)
print(labkit.provenance(client))

# %% [markdown]
# ## What the response holds
#
# The SDK returns a typed `ChatCompletion`, not a dict. The parts you will use in every program:

# %%
choice = completion.choices[0]
print("id:           ", completion.id)
print("model:        ", completion.model, "(the dated snapshot that answered)")
print("finish_reason:", choice.finish_reason, "('length' would mean the output limit cut it off)")
print("usage:        ", completion.usage.prompt_tokens, "prompt +", completion.usage.completion_tokens,
      "completion =", completion.usage.total_tokens, "tokens")

# %% [markdown]
# **What did it cost?** Input and output tokens have different prices (output is several times
# dearer), and cached input is cheaper still. So cost comes from `usage`, priced per kind of token,
# not from "total tokens times one price":

# %%
from labkit.costs import cost

print(cost(completion.usage, completion.model))
print("per 1,000 such calls: $%.4f" % (1000 * cost(completion.usage, completion.model).total_usd))

# %% [markdown]
# The token counts are not magic: they come from the model's tokenizer. `labkit.count_tokens`
# uses the real `tiktoken` (offline), including the few tokens of overhead each chat message adds:

# %%
messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
print("counted locally:", labkit.count_tokens(messages, MODEL), "| reported by the response:", completion.usage.prompt_tokens)

# %% [markdown]
# ## The same request as raw HTTP
#
# Under the SDK is one HTTPS POST. With curl it looks like this (the key comes from the
# environment, never typed into the command):

# %%
import json

body = json.dumps({"model": MODEL, "messages": messages})
print("curl https://api.openai.com/v1/chat/completions \\")
print('  -H "Content-Type: application/json" \\')
print('  -H "Authorization: Bearer $OPENAI_API_KEY" \\')
print(f"  -d '{body}'")

# %% [markdown]
# Here we make that exact request with `httpx2` (the HTTP library the SDK is built on), answered by
# the recording instead of the network:

# %%
import httpx2
from labkit.replay import ReplayTransport

http = httpx2.Client(transport=ReplayTransport(["ex01"]), base_url="https://api.openai.com/v1")
raw = http.post(
    "/chat/completions",
    headers={"Authorization": "Bearer <your key here>", "Content-Type": "application/json"},
    json={"model": MODEL, "messages": messages},
)
print(raw.status_code, raw.headers["content-type"])
print(raw.json()["choices"][0]["message"]["content"])

# %% [markdown]
# ## The same call through the Responses API
#
# OpenAI's newer endpoint takes `instructions` (the system message) and `input`, and returns
# `output_text` directly. New projects should prefer it; Chat Completions stays supported, and most
# of this course uses it because the lesson does.

# %%
response = client.responses.create(model=MODEL, instructions=SYSTEM, input=PROMPT)
print(response.output_text)
print("usage:", response.usage.input_tokens, "in,", response.usage.output_tokens, "out")

# %% [markdown]
# ## Request ids and rate-limit headers
#
# Parsed objects hide the HTTP headers. `with_raw_response` keeps them: the request id (quote it to
# support when something goes wrong) and the `x-ratelimit-*` headers that tell you how much room you
# have left. Read these instead of relying on published tier tables, which change.

# %%
raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
print("request id:", raw.headers["x-request-id"])
for name in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens"):
    print(f"{name}: {raw.headers[name]}")
completion_again = raw.parse()  # the usual ChatCompletion
print(completion_again.choices[0].message.content)

# %% [markdown]
# ## Your turn: exercise 01
#
# Open `exercises/ex01_first_call.py` and fill in the three functions: `build_messages`,
# `first_completion` and `summarize`. This cell runs your file:

# %%
ex01 = labkit.notebook.exercise("ex01")
try:
    print(ex01.summarize(ex01.first_completion(labkit.client("ex01"))))
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** a request is a model plus messages; the response carries the text, why it stopped, and
# the tokens you pay for; cost is computed from `usage` per kind of token. Check your work (hidden
# checks are graded by your instructor):

# %%
labkit.check("ex01")
