# %% [markdown]
# # 04 · Troubleshooting: the five problems you will meet
#
# **What you will build:** a fix for each of the lesson's five common problems, reproduced here
# offline: rate limits (read the `x-ratelimit-*` headers, pause only as needed), an overloaded model
# (a fallback cascade that moves on only for transient errors), a bill higher than expected (price a
# usage log, find the culprits, fix a prompt that defeats caching), inconsistent outputs (Structured
# Outputs at a low temperature), and `401 Unauthorized` (diagnose a key without ever printing it).

# %%
import labkit

labkit.notebook.intro("ex04")

# %% [markdown]
# Each part shows the problem, then asks you to write the fix in `exercises/ex04_troubleshooting.py`.
# The cells below run your file; a part you have not done yet just says so. The lesson's data (the
# requests, the emails, the classifier's schema, the usage log's generator) is in
# `labkit/course/ex04.py`, the one place this notebook, your exercise, the recordings and the checks
# read it from.

# %%
import openai

from labkit import faults
from labkit.clock import Clock

ex04 = labkit.notebook.exercise("ex04")


def attempt(fn, *args, **kwargs):
    """Run one of your exercise functions; report a TODO instead of failing."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as todo:
        print(f"Still to do ({fn.__name__}):", todo)
        return None


# %% [markdown]
# ## 1 · "Rate limit exceeded"
#
# The lesson quotes fixed tiers ("free 20 requests/minute, paid 3,500"). Those figures are years out
# of date, and limits differ by model, by organisation and by usage tier, in requests *and* tokens per
# minute. You do not need a table: every response carries your current limits in its headers. Parsed
# objects hide headers, so ask for the raw response:

# %%
from labkit.course.ex04 import MODEL, RATE_MESSAGES  # MODEL: the fast sampling model used throughout

client = labkit.client("ex04")
raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=RATE_MESSAGES)
print("answer:", raw.parse().choices[0].message.content)
for name, value in raw.headers.items():
    if name.startswith("x-ratelimit"):
        print(f"  {name}: {value}")

# %% [markdown]
# (These header values are illustrative, written for the course; live ones come from your account.)
# Requests are plentiful here, but only 1,450 of the minute's 200,000 tokens are left, and the token
# budget refills in `1m2.4s`. Resets are written as durations: `20ms`, `1.5s`, `6m0s`, `1h2m3.5s`.
#
# When you do hit the limit, the API answers 429 with a message that says which budget ran out and a
# `retry-after-ms` header. Here is one, scripted:

# %%
from labkit.faults import Step

step = Step("status", 429, (("retry-after-ms", "450"), ("x-ratelimit-remaining-tokens", "0"), ("x-ratelimit-reset-tokens", "450ms")),
            message=f"Rate limit reached for {MODEL} on tokens per min (TPM): Limit 200000, Used 199000, "
                    "Requested 1500. Please try again in 450ms.")
limited = faults.client([step], "ex04")
try:
    limited.chat.completions.create(model=MODEL, messages=RATE_MESSAGES)
except openai.RateLimitError as err:
    print(type(err).__name__, err.status_code, "-", err.body["message"])
    print("retry-after-ms:", err.response.headers["retry-after-ms"], "| code:", err.code)

# %% [markdown]
# Two responses to it. *Reactive*: back off and retry, honouring `retry-after-ms` (your notebook 03
# client does this; so does the SDK). *Proactive*: before sending, check whether the budget the last
# response reported has room for this request, and if not, wait for that budget's reset, and only that
# one. The lesson's other tip, batching, helps too in two forms: several items per request cuts the
# request count (not the tokens), and the Batch API runs large jobs within 24 hours at half price with
# its own, separate limits.
#
# One 429 is not worth retrying: `code: insufficient_quota` means the account has no credit left.
#
# **Your turn (part 1):** `parse_reset`, `read_rate_limits(headers)` and `pause_before(limits, tokens_needed)`.

# %%
def part1(mod) -> None:
    limits = attempt(mod.read_rate_limits, raw.headers)
    if limits is not None:
        print(limits)
        for needed in (1_000, 2_000):
            print(f"a {needed:,}-token request: pause {attempt(mod.pause_before, limits, needed)} s")


part1(ex04)

# %% [markdown]
# ## 2 · "This model is currently overloaded"
#
# Overload arrives as a 503 (sometimes a 500 or 502), which the SDK raises as `InternalServerError`:

# %%
from labkit.course.ex04 import CASCADE_TEMPERATURE, FALLBACK_MODELS, OVERLOAD_MESSAGES

print("the lesson's cascade:", " -> ".join(FALLBACK_MODELS))
busy = faults.client("503", "ex04")
try:
    busy.chat.completions.create(model=FALLBACK_MODELS[0], messages=OVERLOAD_MESSAGES)
except openai.InternalServerError as err:
    print(type(err).__name__, err.status_code, err.body)

# %% [markdown]
# The lesson's advice is to retry with backoff and then fall back to another model, down the cascade
# printed above. The catch is *which* errors justify moving on. A cascade that catches every
# exception also "recovers" from mistakes in your own request. Watch: we add a `temperature`, which
# GPT-5 models reject; a catch-everything cascade shrugs, moves to the second model (which accepts
# it) and returns an answer. Every request now pays for a failed call, runs on the second-choice
# model, and nobody is told:

# %%
def naive_cascade(sdk, messages, models=FALLBACK_MODELS, **params):
    for model in models:
        try:
            return sdk.chat.completions.create(model=model, messages=messages, **params).choices[0].message.content, model
        except Exception:  # noqa: BLE001  (the bug: a 400 is treated like an outage)
            continue
    return None, None


sdk = faults.client("", "ex04")
text, model = naive_cascade(sdk, OVERLOAD_MESSAGES, temperature=CASCADE_TEMPERATURE)
print(f"answered by {model}: {text[:60]}...")
for a in sdk._labkit_transport.attempts:
    print("  sent to", a.body["model"])

# %% [markdown]
# The rule: **fall back only on transient errors** (timeouts, connection errors, 408, 409, 429, 5xx),
# the same set you would retry. A 400, 401, 403 or 404 fails on every model, so raise it at once and
# fix the request. Also keep in mind that a fallback model differs in price, quality and accepted
# parameters: log which model answered, and send only parameters every model in the cascade accepts
# (the linter from notebook 02 tells you):

# %%
for model in FALLBACK_MODELS:
    findings = labkit.lint_request(model=model, messages=OVERLOAD_MESSAGES, temperature=CASCADE_TEMPERATURE)
    print(f"{model:11}", [f.code for f in findings] or "ok")

# %% [markdown]
# **Your turn (part 2):** `complete_with_fallback(client, messages, models, **params)` returns
# `(text, model)`. Here it meets a 503 on the first model, then a request error:

# %%
def part2(mod) -> None:
    sdk = faults.client("503", "ex04")
    result = attempt(mod.complete_with_fallback, sdk, OVERLOAD_MESSAGES)
    if result is not None:
        print("answered by", result[1], "after", [a.outcome for a in sdk._labkit_transport.attempts])
        try:
            mod.complete_with_fallback(faults.client("", "ex04"), OVERLOAD_MESSAGES, temperature=CASCADE_TEMPERATURE)
        except openai.BadRequestError as err:
            print(f"temperature={CASCADE_TEMPERATURE} ->", type(err).__name__, "at once:", err.body["message"])


part2(ex04)

# %% [markdown]
# ## 3 · "API costs higher than expected"
#
# The fix starts with data, not guesses. `data/ex04_usage_log.jsonl` is a week of a fictional
# product's API usage (synthetic, made by `make_usage_log` in `labkit/course/ex04.py`), one line per
# request with its feature, model, the start of its prompt, and the `usage` the API returned:

# %%
from labkit.course.ex04 import USAGE_LOG

rows = ex04.load_usage_log(labkit.notebook.data_path(USAGE_LOG))
print(len(rows), "requests; the first:")
print(rows[0])

# %% [markdown]
# Price every request from its usage (input, cached input and output each at their own price, as in
# notebook 01), then look at the bill two ways: by feature, and request by request.
#
# **Your turn (part 3a):** `request_cost(row)`, `cost_by_feature(rows)` and `top_requests(rows, n)`.

# %%
import matplotlib.pyplot as plt


def part3a(mod) -> None:
    by_feature = attempt(mod.cost_by_feature, rows)
    if by_feature is not None:
        total = sum(by_feature.values())
        for feature, usd in by_feature.items():
            calls = sum(1 for r in rows if r["feature"] == feature)
            print(f"{feature:15} ${usd:7.4f}  {usd / total:5.1%}  {calls:4} calls  ${usd / calls:.5f}/call")
        fig, ax = plt.subplots(figsize=(7, 2.5))
        ax.barh(list(by_feature)[::-1], list(by_feature.values())[::-1])
        ax.set_xlabel("USD this week")
        plt.tight_layout()
        plt.show()
    top = attempt(mod.top_requests, rows, 5)
    if top is not None:
        print("the five dearest requests:")
        for r in top:
            u = r["usage"]
            print(f"${r['cost_usd']:.4f}  {r['feature']:14} {r['model']:18} {u['prompt_tokens']:>7,} in  "
                  f"{u['completion_tokens']:>6,} out ({u['completion_tokens_details']['reasoning_tokens']:,} reasoning)")


part3a(ex04)

# %% [markdown]
# Two different culprits, and neither is what a token count would suggest (the document summariser
# sends the most tokens, but on a cheap model):
#
# * **The dearest single requests** are the weekly reports on `gpt-5`: most of their output is
#   reasoning tokens, billed as output at $10 per 1M. Options: a lower `reasoning_effort`, or a smaller
#   model for a formatting job. Measure the quality before switching.
# * **The biggest line on the bill** is the FAQ bot: cheap per call, but 800 calls a week on `gpt-4o`,
#   each sending a 1,100-token playbook at the full input price. Prompt caching should discount that
#   (it is automatic for prompts of 1,024 tokens or more, no code needed), yet `cached_tokens` is zero
#   in every row. The log's `prompt_prefix` shows why:

# %%
faq = [r for r in rows if r["feature"] == "faq-bot"]
for r in faq[:3]:
    print(r["prompt_prefix"][:60], "...| cached:", r["usage"]["prompt_tokens_details"]["cached_tokens"])

# %% [markdown]
# The prompt **starts with the current time**. The cache matches prompts by their exact beginning, so
# a prompt that changes in its first line never matches anything. The fix is to put what never
# changes first (the playbook, from `labkit/course/ex03.py`) and what varies (time, question) last.
# With that order, a recorded FAQ answer reports most of its input tokens served from the cache:

# %%
from labkit.course.ex03 import PLAYBOOK_CACHED_TOKENS, SUPPORT_PLAYBOOK
from labkit.course.ex04 import FAQ_MODEL, FAQ_QUESTION, FAQ_TIME, stamp
from labkit.costs import cost, estimate

fixed = client.chat.completions.create(model=FAQ_MODEL, messages=[
    {"role": "system", "content": SUPPORT_PLAYBOOK},
    {"role": "user", "content": f"Current time: {stamp(FAQ_TIME)}.\n{FAQ_QUESTION}"},
])
print(cost(fixed.usage, fixed.model))

cached = PLAYBOOK_CACHED_TOKENS
before = sum(cost(r["usage"], r["model"]).total_usd for r in faq)
after = sum(estimate(r["usage"]["prompt_tokens"], r["usage"]["completion_tokens"], r["model"], cached_tokens=cached).total_usd
            for r in faq)
print(f"the FAQ bot's week: ${before:.2f} -> ${after:.2f} if each call reuses {cached:,} cached tokens ({1 - after / before:.0%} less)")

# %% [markdown]
# (Cache hits are likely, not guaranteed: the cache lasts minutes of inactivity, so quiet hours see
# misses. Read `cached_tokens` in your own logs to know.) The lesson's other levers, checked against
# real prices: a smaller model is the biggest one (the lesson's "$0.002 vs $0.06, 97 % savings" uses
# illustrative per-1K prices; from the catalog, gpt-5-mini costs a fifth of gpt-5 for input and
# output alike, an 80 % saving); `max_tokens` / `max_completion_tokens` caps the damage of a runaway
# answer but does not make answers shorter (ask for brevity in the prompt); and project budgets and
# usage alerts in the dashboard catch what your code misses.
#
# **Your turn (part 3b):** rewrite `faq_messages(question, now)` so every request shares the playbook
# as its prefix:

# %%
from labkit.course.ex04 import FAQ_ASKED


def part3b(mod) -> None:
    (a_question, a_time), (b_question, b_time) = FAQ_ASKED
    a = attempt(mod.faq_messages, a_question, a_time)
    if a is not None:
        b = mod.faq_messages(b_question, b_time)
        print("same first message:", a[0] == b[0], "|", labkit.count_tokens([a[0]], FAQ_MODEL), "tokens in it")


part3b(ex04)

# %% [markdown]
# ## 4 · "Responses are inconsistent or not following instructions"
#
# A vague instruction at a high temperature gives a different *shape* of answer each time. Three
# replies to the same email (authored variations of the same recorded request):

# %%
from labkit.course.ex04 import VAGUE_MESSAGES, VAGUE_TEMPERATURE

print("system:", VAGUE_MESSAGES[0]["content"], f"| temperature {VAGUE_TEMPERATURE}")
for i in range(3):
    reply = client.chat.completions.create(model=MODEL, temperature=VAGUE_TEMPERATURE, messages=VAGUE_MESSAGES)
    print(f"--- reply {i + 1}\n{reply.choices[0].message.content}")

# %% [markdown]
# The lesson's fix is JSON mode (`response_format={"type": "json_object"}`), which it says
# "guarantees valid JSON". It guarantees JSON *syntax*: any keys, any values. Code that reads
# `data["urgency"]` still breaks:

# %%
import json

from labkit.course.ex04 import JSON_MODE_MESSAGES, JSON_MODE_TEMPERATURE

print("system:", JSON_MODE_MESSAGES[0]["content"])
for i in range(2):
    reply = client.chat.completions.create(model=MODEL, temperature=JSON_MODE_TEMPERATURE,
                                           response_format={"type": "json_object"}, messages=JSON_MODE_MESSAGES)
    data = json.loads(reply.choices[0].message.content)  # parses every time...
    print(f"reply {i + 1}: keys {sorted(data)} -> urgency = {data.get('urgency', 'KeyError: no urgency key')}")

# %% [markdown]
# **Structured Outputs** guarantee the *schema*: you pass a pydantic model, the SDK sends it as a
# strict JSON schema, the model is constrained to it, and `.parsed` gives you a validated object.
# With the allowed values as `Literal`s, "Negative", "urgent" and "HIGH" are impossible. Add a low
# temperature so the same email gets the same judgement, and a system message that defines the
# terms (when is something "critical"?). Temperature 0 is stable, not perfectly deterministic; and
# GPT-5 reasoning models accept no temperature at all, so there the schema and clear instructions do
# the work. Then test on 20 or more varied emails, as the lesson says.
#
# **Your turn (part 4):** `classify_email(client, email)`, on the lesson's emails:

# %%
from labkit.course.ex04 import CLASSIFY_EMAILS


def part4(mod) -> None:
    for email in CLASSIFY_EMAILS:
        ticket = attempt(mod.classify_email, client, email)
        if ticket is None:
            break
        print(f"{ticket.sentiment:8} {ticket.urgency:8} {ticket.category:9} {ticket.summary}")


part4(ex04)

# %% [markdown]
# ## 5 · "Authentication errors (401 Unauthorized)"
#
# A 401 never fixes itself, so it is never retried (notebook 03). The API's message says the key was
# rejected:

# %%
denied = faults.client("401", "ex04")
try:
    denied.chat.completions.create(model=MODEL, messages=RATE_MESSAGES)
except openai.AuthenticationError as err:
    print(type(err).__name__, err.status_code, err.code, "| request id:", err.request_id)

# %% [markdown]
# With the SDK you never write the `Authorization: Bearer ...` header yourself; it reads
# `OPENAI_API_KEY`. So the usual causes are in the value: a trailing newline or space from a file or a
# copy-paste, quotes kept from a `.env` line, the whole header pasted in, an organisation or project
# id instead of the key, a truncated copy, or a key that was revoked or belongs to a project without
# access. The last two only the dashboard can tell you; the rest you can check locally, without
# printing the key (logs and notebooks are shared, so a key in output is a leaked key). A missing
# billing method or exhausted credit is a different error: 429 with `code: insufficient_quota`, not 401.
#
# `labkit doctor` does this for the environment variable. Here it looks at a made-up key with a
# trailing newline (built in code, so no key-shaped text is stored in this notebook):

# %%
import os

from labkit import doctor

fake = "sk-" + "Xy7" * 30 + "\n"
saved = os.environ.get("OPENAI_API_KEY")
os.environ["OPENAI_API_KEY"] = fake
try:
    print(next(f for f in doctor.run() if f.name == "api key"))
finally:
    if saved is None:
        os.environ.pop("OPENAI_API_KEY")
    else:
        os.environ["OPENAI_API_KEY"] = saved

# %% [markdown]
# **Your turn (part 5):** `diagnose_key(key)` returns problem codes; `describe_key(key)` a line that is
# safe to print. Try them on made-up keys:

# %%
body = "Ab3Cd4Ef5Gh6" * 9
examples = {
    "unset": None,
    "well-formed": "sk-" + body,
    "newline from a file": "sk-" + body + "\n",
    "quotes from .env": '"' + "sk-" + body + '"',
    "whole header pasted": "Bearer " + "sk-" + body,
    "truncated": "sk-" + body[:12],
}


def part5(mod) -> None:
    for name, key in examples.items():
        line = attempt(mod.describe_key, key)
        if line is None:
            break
        print(f"{name:20} {line}")


part5(ex04)

# %% [markdown]
# ## After you have tried: the reference solution on the same inputs

# %%
ref = labkit.notebook.solution("ex04")
for part in (part1, part2, part3a, part3b, part4, part5):
    print(f"== {part.__name__}")
    part(ref)

# %% [markdown]
# **Recap:** read rate limits from the `x-ratelimit-*` headers and wait only for the budget that ran
# out; fall back to another model only for transient errors, never to hide a 400; find cost by pricing
# real usage per feature and per request, and keep prompts' fixed parts first so caching can work;
# make outputs consistent with Structured Outputs and a low temperature (JSON mode checks syntax only);
# and diagnose a 401 from the key's shape, never by printing it. Check your work:

# %%
labkit.check("ex04")
