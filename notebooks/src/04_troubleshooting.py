# %% [markdown]
# # 04 · Troubleshooting: the five problems you will meet
#
# **What you will build:** a fix for each of the lesson's five common problems, reproduced here
# offline on today's models: rate limits (read the `x-ratelimit-*` headers, pause only as needed), an
# overloaded model (a fallback cascade that moves on only for transient errors), a bill higher than
# expected (price a usage log, find the culprits, fix a prompt that defeats prompt caching, with
# caching's real rules), inconsistent outputs (Structured Outputs at a low temperature, which today
# means reasoning effort "none"), and `401 Unauthorized` (diagnose a key without ever printing it).

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
# The lesson quotes fixed tiers ("free 20 requests/minute, paid 3,500"). Do not build on those
# figures: they are years out of date, and real limits differ by model, by organisation and by usage
# tier, in requests *and* tokens per minute, and they change as your account's tier grows. You do not
# need a table: every response carries your current limits in its `x-ratelimit-*` headers. Parsed
# objects hide headers, so ask for the raw response (`RATE_PARAMS` runs this one-word triage at
# reasoning effort "none": it needs no hidden reasoning tokens):

# %%
from labkit.course.ex04 import MODEL, RATE_MESSAGES, RATE_PARAMS  # MODEL: the fast model used throughout

client = labkit.client("ex04")
raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=RATE_MESSAGES, **RATE_PARAMS)
print("answer:", raw.parse().choices[0].message.content)
for name, value in raw.headers.items():
    if name.startswith("x-ratelimit"):
        print(f"  {name}: {value}")

# %% [markdown]
# (These header values are illustrative, written for the course; live ones come from your account,
# and the Responses API sends the same headers.) Requests are plentiful here, but only 1,450 of the
# minute's 200,000 tokens are left, and the token budget refills in `1m2.4s`. Resets are written as
# durations: `20ms`, `1.5s`, `6m0s`, `1h2m3.5s`. Your account's limits page shows the same numbers
# per model; the headers are what your code can read at run time.
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
# Overload arrives as a 503 (sometimes a 500 or 502), which the SDK raises as `InternalServerError`.
# The lesson's cascade went from its flagship through an older GPT-4o flagship to its small model;
# the course's cascade is the same idea on today's roles: the best model, another generation, the
# cheapest:

# %%
from labkit.course.ex04 import CASCADE_PARAMS, FALLBACK_MODELS, OVERLOAD_MESSAGES

print("the course's cascade:", " -> ".join(FALLBACK_MODELS))
busy = faults.client("503", "ex04")
try:
    busy.chat.completions.create(model=FALLBACK_MODELS[0], messages=OVERLOAD_MESSAGES)
except openai.InternalServerError as err:
    print(type(err).__name__, err.status_code, err.body)

# %% [markdown]
# The lesson's advice is to retry with backoff and then fall back to another model, down the cascade
# printed above. The catch is *which* errors justify moving on. A cascade that catches every
# exception also "recovers" from mistakes in your own request. Watch: we ask for reasoning effort
# "none" and a low temperature (`CASCADE_PARAMS`). The flagship has no effort "none" (and so takes no
# temperature): it answers 400. A catch-everything cascade shrugs, moves to the second model (which
# accepts both) and returns an answer. Every request now pays for a failed call, runs on the
# second-choice model, and nobody is told:

# %%
def naive_cascade(sdk, messages, models=FALLBACK_MODELS, **params):
    for model in models:
        try:
            return sdk.chat.completions.create(model=model, messages=messages, **params).choices[0].message.content, model
        except Exception:  # noqa: BLE001  (the bug: a 400 is treated like an outage)
            continue
    return None, None


sdk = faults.client("", "ex04")
text, model = naive_cascade(sdk, OVERLOAD_MESSAGES, **CASCADE_PARAMS)
print(f"answered by {model}: {text[:60]}...")
for a in sdk._labkit_transport.attempts:
    print("  sent to", a.body["model"])

# %% [markdown]
# The rule: **fall back only on transient errors** (timeouts, connection errors, 408, 409, 429, 5xx),
# the same set you would retry, written as data in `FALLBACK` (`labkit/course/ex04.py`). A 400, 401,
# 403, 404 or 422 fails on every model, and so does a 429 whose code is `insufficient_quota` (no
# credit left): raise it at once and fix the cause. Also keep in mind that a fallback model differs
# in price, quality and accepted parameters: log which model answered, and send only parameters
# every model in the cascade accepts (the linter from notebook 02 tells you):

# %%
for model in FALLBACK_MODELS:
    findings = labkit.lint_request(model=model, messages=OVERLOAD_MESSAGES, **CASCADE_PARAMS)
    print(f"{model:14}", [f.code for f in findings if f.severity == "error"] or "ok")

# %% [markdown]
# A 404 belongs on that list for a reason that matters this month. The models of the lesson's own
# cascade retire: the linter, judging on the course's date and on the day after their shutdown, says
# what they answer. A catch-everything cascade would turn that 404 into a silent, permanent detour
# through the next model; one that raises it tells you to move a role to a current model:

# %%
from datetime import date

from labkit.clock import course_date
from labkit.course.ex04 import LESSON_CASCADE

for day in (course_date(), date(2026, 12, 12)):
    for model in LESSON_CASCADE:
        findings = labkit.lint_request(model=model, messages=OVERLOAD_MESSAGES, today=day)
        print(day, f"{model:11}", [f"{f.severity}: {f.code}" for f in findings])

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
            mod.complete_with_fallback(faults.client("", "ex04"), OVERLOAD_MESSAGES, **CASCADE_PARAMS)
        except openai.BadRequestError as err:
            print(f"{CASCADE_PARAMS} ->", type(err).__name__, "at once:", err.body["message"])


part2(ex04)

# %% [markdown]
# ## 3 · "API costs higher than expected"
#
# The fix starts with data, not guesses. `data/ex04_usage_log.jsonl` is a week of a fictional
# product's API usage (synthetic, made by `make_usage_log` in `labkit/course/ex04.py`), one line per
# request with its feature, model, reasoning effort, the start of its prompt, and the `usage` the API
# returned, prompt-cache reads (`cached_tokens`) and writes (`cache_write_tokens`) included:

# %%
from labkit.course.ex04 import USAGE_LOG

rows = ex04.load_usage_log(labkit.notebook.data_path(USAGE_LOG))
print(len(rows), "requests; the first:")
print(rows[0])

# %% [markdown]
# Price every request from its usage (input, cache reads, cache writes and output each at their own
# price, as in notebook 01; `labkit.costs.cost` knows them all), then look at the bill two ways: by
# feature, and request by request.
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
# sends the most tokens, but on the cheapest model):

# %%
from labkit.catalog import get_model
from labkit.course.ex04 import FAQ_MODEL, REPORT_EFFORT, REPORT_MODEL

report = get_model(REPORT_MODEL)
print(f"weekly reports: {REPORT_MODEL} at effort {REPORT_EFFORT}, output (reasoning included) ${report.price_output:g} per 1M")
faq = [r for r in rows if r["feature"] == "faq-bot"]
reads = sum(1 for r in faq if r["usage"]["prompt_tokens_details"]["cached_tokens"])
writes = sum(1 for r in faq if r["usage"]["prompt_tokens_details"]["cache_write_tokens"])
print(f"FAQ bot: {len(faq)} calls on {FAQ_MODEL}; prompt cache read by {reads}, written by {writes}")
for r in faq[:3]:
    d = r["usage"]["prompt_tokens_details"]
    print(" ", r["prompt_prefix"][:48], f"...| cached {d['cached_tokens']:>5,} | written {d['cache_write_tokens']:>5,}")

# %% [markdown]
# * **The dearest single requests** are the weekly reports on the reasoning model at effort high:
#   most of their output is hidden reasoning, billed as output. Options: a lower effort, or a smaller
#   model for what is mostly a formatting job. Measure the quality before switching.
# * **The biggest line on the bill** is the FAQ bot: cheap per call, but about 800 calls a week, each
#   sending the 1,100-token playbook. Prompt caching should discount that, yet almost every row
#   *writes* its prompt to the cache and almost none *reads* it back. The log's `prompt_prefix`
#   shows why: the prompt **starts with the current time**. The cache matches prompts by their exact
#   beginning, so a prompt whose first line changes every minute only matches another one sent in the
#   same minute.
#
# ### Prompt caching, as it works today
#
# The lesson calls prompt caching a "beta" where you "pay once for caching, then get a 90% discount".
# Each part of that is out of date:
#
# * **It is not a beta, and needs no code.** Every prompt of 1,024 tokens or more is cached
#   automatically; a later request that starts with the same tokens reads that prefix (in steps of
#   128 tokens past 1,024) from the cache. Usage reports it: `usage.prompt_tokens_details.cached_tokens`
#   in Chat Completions, `usage.input_tokens_details.cached_tokens` in the Responses API.
# * **You do not pay once.** From GPT-5.6 on, *writing* a prefix to the cache is billed at 1.25x the
#   input price (2x for the optional 12-hour lifetime) and reported as `cache_write_tokens`; every
#   *read* is billed at the cached price; an entry that goes unused for a while expires and is written
#   (and billed) again.
# * **The discount is 90 to 95%, per read, depending on the model.** For the course's models:

# %%
from labkit.course.models import ROLES

print(f"{'role':10} {'model':14} {'input':>7} {'cached':>7} {'write':>7}   read saves  write costs")
for role, model in ROLES.items():
    m = get_model(model)
    print(f"{role:10} {model:14} {m.price_input:7.2f} {m.price_cached_input:7.3f} {m.price_cache_write:7.3f}"
          f"   {1 - m.price_cached_input / m.price_input:9.0%}  {m.price_cache_write / m.price_input:9.2f}x")

# %% [markdown]
# So a prompt that is written on every call and never read, like the deployed FAQ bot's, costs
# *more* than if caching did not exist. The week, priced three ways (as logged; as if nothing were
# ever cached; and with the playbook first, where a call within 30 minutes of the previous one reads
# the shared prefix and any other call writes its prompt):

# %% [markdown]
# %%
from labkit.costs import cost
from labkit.course.ex03 import SUPPORT_PLAYBOOK
from labkit.course.ex04 import CACHE_TTL_MINUTES, FAQ_QUESTION, FAQ_TIME, faq_with_cache, shared_prefix_tokens, stamp


def week(rows_) -> float:
    return sum(cost(r["usage"], r["model"]).total_usd for r in rows_)


def playbook_first(question: str, now) -> list[dict[str, str]]:
    return [{"role": "system", "content": SUPPORT_PLAYBOOK}, {"role": "user", "content": f"Current time: {stamp(now)}.\n{question}"}]


from labkit.course.ex04 import FAQ_ASKED

never = [{**r, "usage": {**r["usage"], "prompt_tokens_details": {"cached_tokens": 0}}} for r in faq]
(q1, t1), (q2, t2) = FAQ_ASKED[:2]  # two questions, asked hours apart
shared = shared_prefix_tokens(playbook_first(q1, t1), playbook_first(q2, t2), FAQ_MODEL)
fixed_week = faq_with_cache(faq, shared, CACHE_TTL_MINUTES)
print(f"the FAQ bot's week as logged (time first):     ${week(faq):.2f}")
print(f"... if nothing were ever cached:              ${week(never):.2f}")
print(f"... with the playbook first ({shared:,} tokens shared): ${week(fixed_week):.2f} ({1 - week(fixed_week) / week(faq):.0%} less)")

# %% [markdown]
# Two recorded answers show the same thing request by request. The deployed prompt (time first)
# writes its prompt to the cache; the fixed one, sent twice, writes the prefix once and then reads it.
# The fixed request also names a `prompt_cache_key`: requests that share a prefix and a key are
# routed to the same cache, which raises the hit rate (keep each key's traffic to a few requests per
# second; it does not change the answer, so replay ignores it):

# %%
from labkit.course.ex04 import faq_messages_v1

deployed = client.chat.completions.create(model=FAQ_MODEL, messages=faq_messages_v1(FAQ_QUESTION, FAQ_TIME))
print("time first:     ", cost(deployed.usage, deployed.model))
for which in ("first call", "second call"):
    fixed = client.chat.completions.create(model=FAQ_MODEL, messages=playbook_first(FAQ_QUESTION, FAQ_TIME),
                                           prompt_cache_key="faq-bot")
    details = fixed.usage.prompt_tokens_details
    print(f"playbook first, {which}: cached {details.cached_tokens:,}, written {details.cache_write_tokens:,} ->",
          f"${cost(fixed.usage, fixed.model).total_usd:.6f}")

# %% [markdown]
# (Hits are likely, not guaranteed: a quiet half hour lets the entry expire, and the next call writes
# it again. Read `cached_tokens` and `cache_write_tokens` in your own logs to know.) The lesson's
# other levers, checked against real prices: a smaller model is the biggest one (the lesson's
# "$0.002 vs $0.06, 97% savings" uses illustrative per-1K prices; the catalog's are per 1M and split
# by kind, printed below); `max_completion_tokens` (`max_output_tokens` in the Responses API; the old
# `max_tokens` is rejected by today's models) caps a runaway answer, reasoning included, but does not
# make answers shorter (ask for brevity in the prompt); and project budgets and usage alerts in the
# dashboard catch what your code misses.

# %%
from labkit.course.models import FAST, FLAGSHIP

big, small = get_model(FLAGSHIP), get_model(FAST)
print(f"{FLAGSHIP}: ${big.price_input:g} in / ${big.price_output:g} out per 1M; {FAST}: ${small.price_input:g} / ${small.price_output:g}"
      f" -> {1 - small.price_input / big.price_input:.1%} less")
#
# **Your turn (part 3b):** rewrite `faq_messages(question, now)` so requests asked at different
# times share a prefix of at least 1,024 tokens. Any layout that does so is right; the check measures
# the tokens two requests share (`shared_prefix_tokens`), not the shape of your messages:

# %%
def part3b(mod) -> None:
    (a_question, a_time), (b_question, b_time) = FAQ_ASKED[:2]
    a = attempt(mod.faq_messages, a_question, a_time)
    if a is not None:
        b = mod.faq_messages(b_question, b_time)
        print("deployed:", shared_prefix_tokens(faq_messages_v1(a_question, a_time), faq_messages_v1(b_question, b_time)),
              "tokens shared | yours:", shared_prefix_tokens(a, b), "tokens shared (the cache needs 1,024)")


part3b(ex04)

# %% [markdown]
# ## 4 · "Responses are inconsistent or not following instructions"
#
# A vague instruction at a high temperature gives a different *shape* of answer each time. Today's
# models are reasoning models that accept a temperature only at reasoning effort "none"
# (`SAMPLING_EFFORT`); the fast model used here has it. Three replies to the same email (authored
# variations of the same recorded request):

# %%
from labkit.course.ex04 import SAMPLING_EFFORT, VAGUE_MESSAGES, VAGUE_TEMPERATURE

print("system:", VAGUE_MESSAGES[0]["content"], f"| temperature {VAGUE_TEMPERATURE}")
for i in range(3):
    reply = client.chat.completions.create(model=MODEL, reasoning_effort=SAMPLING_EFFORT, temperature=VAGUE_TEMPERATURE,
                                           messages=VAGUE_MESSAGES)
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
    reply = client.chat.completions.create(model=MODEL, reasoning_effort=SAMPLING_EFFORT, temperature=JSON_MODE_TEMPERATURE,
                                           response_format={"type": "json_object"}, messages=JSON_MODE_MESSAGES)
    data = json.loads(reply.choices[0].message.content)  # parses every time...
    print(f"reply {i + 1}: keys {sorted(data)} -> urgency = {data.get('urgency', 'KeyError: no urgency key')}")

# %% [markdown]
# **Structured Outputs** guarantee the *schema*: you pass a pydantic model, the SDK sends it as a
# strict JSON schema, the model is constrained to it, and you get a validated object back
# (`client.chat.completions.parse(response_format=Ticket)` and `.choices[0].message.parsed`, or
# `client.responses.parse(text_format=Ticket)` and `.output_parsed`). With the allowed values as
# `Literal`s, "Negative", "urgent" and "HIGH" are impossible. Add a low temperature so the same email
# gets the same judgement (at effort "none", `CLASSIFY_EFFORT`: at any other effort the API answers
# 400), and a system message that defines the terms (when is something "critical"?). Temperature 0
# is stable, not perfectly deterministic; and the reasoning and flagship models have no effort
# "none", so they take no temperature at all: there the schema and clear instructions do the work.
# Then test on 20 or more varied emails, as the lesson says.
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
# **Recap:** read rate limits from the `x-ratelimit-*` headers, not from a tier table, and wait only
# for the budget that ran out; fall back to another model only for transient errors, never to hide a
# 400 or a retired model's 404; find cost by pricing real usage per feature and per request, cache
# reads and writes included, and keep prompts' fixed parts first so the automatic prompt cache reads
# more than it writes; make outputs consistent with Structured Outputs and a low temperature, which
# today's models accept only at effort "none" (JSON mode checks syntax only); and diagnose a 401 from
# the key's shape, never by printing it. Check your work:

# %%
labkit.check("ex04")
