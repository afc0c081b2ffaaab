# %% [markdown]
# # 07 · SaaS patterns: tenant billing, tiers and a content pipeline
#
# **What you will build:** the three use cases that close the lesson's advanced exercise.
#
# 1. **Usage-based billing per tenant**: every AI request is a row in a real SQL database (SQLite,
#    which ships with Python), tenants have credits, and an invoice is one `GROUP BY` away.
# 2. **Feature gating by tier**: free, pro and enterprise users get different models, output
#    limits, reasoning efforts and daily allowances (the lesson's numbers), counted in Redis.
# 3. **A content pipeline**: research, outline, write, SEO, each stage on the model it deserves,
#    with the SEO fields returned as *structured output* and a cost total across the stages.

# %%
import labkit

labkit.notebook.intro("ex07")

# %% [markdown]
# ## The lesson's use cases, reviewed
#
# | in the lesson's code | what happens | what we do instead |
# | --- | --- | --- |
# | `TenantGPTService` writes to a `db` that is never created, with Postgres-style `%s` and `NOW()` | `NameError` | a real schema and parameterized SQL (`?` in SQLite) |
# | credits are decremented after the call, with no check first | a tenant with 0 credits keeps generating | take the credit first, in one conditional `UPDATE`; give it back if the call fails |
# | `FeatureGateGPTService` calls `self.gpt`, which it never sets | `AttributeError` | pass the client in |
# | daily usage read, API called, then incremented | 8 concurrent requests all see the same count | `INCR` first, decide on the value it returns |
# | `gpt-5` with `max_tokens=1000` | HTTP 400 today; HTTP 404 from 11 December 2026, when `gpt-5` shuts down | `max_completion_tokens` (and a reasoning effort) on a current model |
# | tiers and stages on `gpt-5` and `gpt-5-mini` | both shut down on 11 December 2026 | lesson 06's `PREMIUM` (the course's flagship) and `CHEAP` (its cheapest model), named by role |
# | `smart_completion(..., model="gpt-5-mini")` | `TypeError`: the method has no `model` parameter | the model is a parameter of every stage |
# | `seo["title"]`, `seo["meta"]`, `seo["keywords"]` | `KeyError`: the SEO call returns free text, nothing produces these keys | Structured Outputs parsed into a pydantic model |
#
# Everything below uses the reference solution (`labkit.notebook.solution("ex07")`); your version
# goes in `exercises/ex07_saas_patterns.py`. The requests, prompts, tiers, models and the exercise's
# contract (the awkward tenant ids and the failures the checks use) are in `labkit/course/ex07.py`.

# %%
sol = labkit.notebook.solution("ex07")

# %% [markdown]
# ## 1 · Usage-based billing in SQLite
#
# SQLite is a full SQL database in a file, built into Python (`import sqlite3`): no server, real
# transactions, real constraints. Two tables: tenants with their credits, and one row per billable
# request with what it cost *us* (so margins per tenant and feature are a query away).

# %%
print(sol.SCHEMA)

# %% [markdown]
# The heart of it is how a credit is taken. "Read the remaining credits, call the API, then
# subtract" lets two workers spend the last credit twice. One conditional statement cannot:
#
# ```sql
# UPDATE tenants SET credits_used = credits_used + :units
#  WHERE tenant_id = :tenant AND credits_used + :units <= credits_included
# ```
#
# If it changed a row (`rowcount == 1`), the credit is ours; if not, the tenant is out of credits
# and the API is never called. If the call then fails, the credit goes back. Each web worker opens
# its own connection (as here: `connect()` per use), and SQLite serializes the writes.

# %%
import tempfile
from pathlib import Path

from labkit.clock import Clock, course_clock
from labkit.course.ex07 import MARKETING, SUMMARY

folder = Path(tempfile.mkdtemp(prefix="nb07-"))
clock = Clock(now=course_clock())  # starts at the course's pinned date; the cells below move it on
billing = sol.TenantBilling(labkit.client("ex07"), str(folder / "billing.sqlite3"), clock=clock)
billing.setup()
billing.add_tenant("acme_corp", "pro", 3)
billing.add_tenant("globex", "free", 1)

result = billing.process_request("acme_corp", MARKETING, feature="ai_content_generation")
print(result["result"][:200], "...")
print({k: round(v, 6) if isinstance(v, float) else v for k, v in result.items() if k != "result"})

# %%
clock.advance(3600)
print(billing.process_request("acme_corp", SUMMARY, feature="ai_summary")["result"])
billing.process_request("globex", MARKETING)
try:
    billing.process_request("globex", SUMMARY, feature="ai_summary")
except sol.OutOfCredits as err:
    print("\nglobex:", err, "(no API call was made)")

# %% [markdown]
# The records are ordinary rows; an invoice is a `GROUP BY` over one month:

# %%
import sqlite3
from datetime import datetime, timezone

db = sqlite3.connect(folder / "billing.sqlite3")
for row in db.execute("SELECT tenant_id, feature, model, units, prompt_tokens, completion_tokens, "
                      "ROUND(cost_usd, 6), created_at FROM usage_records ORDER BY id"):
    print(row)
print("\nremaining credits:", {t: billing.remaining_credits(t) for t in ("acme_corp", "globex")})
month = datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y-%m")  # the month of the notebook's clock
print(f"invoice acme_corp {month}:")
for line in billing.invoice("acme_corp", month):
    print(f"   {line['feature']:22} {line['requests']} request(s), {line['units']} credit(s), ${line['cost_usd']:.6f}")
db.close()

# %% [markdown]
# A credit is what the customer pays for; `cost_usd` is what the generation cost us, priced from
# its real `usage`. The marketing email costs more than its length suggests: the billing model
# (`CHEAP`) is a reasoning model running at its default effort (`"medium"`), and its hidden
# reasoning tokens are billed as output. Both are in the usage:

# %%
from labkit.course.ex07 import BILLING_MODEL

raw = labkit.client("ex07").chat.completions.create(model=BILLING_MODEL, messages=MARKETING)
print(raw.usage.completion_tokens, "completion tokens, of which", raw.usage.completion_tokens_details.reasoning_tokens, "reasoning")
print(labkit.costs.cost(raw.usage, raw.model))

# %% [markdown]
# Whatever a credit sells for, these rows let you check, per tenant and feature, that it covers
# what the generations cost us. Names are data, never SQL: tenants called `o'reilly media` or
# `acme%` are billed like any other because every value goes in as a `?` parameter (an f-string
# would break on the quote, and `LIKE` would put every tenant whose id starts with `acme` on
# `acme%`'s invoice). The checks use such names.

# %% [markdown]
# ## 2 · Feature gating by subscription tier
#
# The lesson's tiers, kept as data:

# %%
for tier, limits in sol.TIER_LIMITS.items():
    print(f"{tier:10}", limits)

# %% [markdown]
# The lesson sends these limits as `max_tokens` to `gpt-5`. The real API refuses that: reasoning
# models take `max_completion_tokens`, and the limit covers their reasoning tokens too. Here is the
# lesson's pro-tier request and the error it gets (recorded in the API's format):

# %%
import openai

from labkit.course.ex07 import LESSON_PRO_REQUEST, STATUS

try:
    labkit.client("ex07").chat.completions.create(**LESSON_PRO_REQUEST)
except openai.BadRequestError as err:
    print(err.status_code, err.code, "-", err.body["message"])

# %% [markdown]
# That is also why each tier carries a `reasoning_effort`: on a reasoning model the output limit
# covers the hidden reasoning too, so a small limit at the default effort (`"medium"`) can be spent
# before any visible answer, leaving an empty reply with `finish_reason="length"`. The free tier
# runs `CHEAP` at effort `"none"` (no reasoning tokens: its 200 tokens are all answer); pro thinks
# a little (`"low"`) and enterprise more (`"medium"`) on `PREMIUM`. Effort is also the biggest
# lever on cost after the model: reasoning tokens grow with it and are billed as output. Here is
# what each tier's answer to the same request cost (recorded answers, priced from their usage):

# %%
for tier, limits in sol.TIER_LIMITS.items():
    answer = labkit.client("ex07").chat.completions.create(
        model=limits["model"], messages=STATUS, max_completion_tokens=limits["max_completion_tokens"],
        reasoning_effort=limits["reasoning_effort"])
    usage = answer.usage
    usd = labkit.costs.cost(usage, answer.model).total_usd
    print(f"{tier:10} {limits['model']:14} effort {limits['reasoning_effort']:6} {usage.completion_tokens:4} output tokens "
          f"({usage.completion_tokens_details.reasoning_tokens:3} reasoning)  ${usd:.6f}  a full day's allowance "
          f"({limits['requests_per_day']:,}): ${usd * limits['requests_per_day']:,.4f}")

# %% [markdown]
# A free user who uses their whole allowance costs a fraction of a cent a day; an enterprise user
# who does costs real money, mostly in reasoning tokens. That is what the tiers' prices must cover.
#
# The daily allowance is a Redis counter per user and day, counted *before* the call: `INCR`
# returns the new count atomically, so of 16 simultaneous requests exactly 10 get numbers 1 to 10.
# A call that fails gives its count back. The counter expires a little after midnight UTC.
# (Expiry uses a relative TTL: Redis expires keys on its own clock, in real seconds, which is not
# the injectable clock our code and checks use.)

# %%
# NBVAL_IGNORE_OUTPUT
# (the server's version depends on which server you use)
from labkit import redisd

r = redisd.connect()
PREFIX = redisd.fresh_prefix("nb07")
print(redisd.describe(r, address=False))

# %%
gate = sol.FeatureGate(labkit.client("ex07"), r, prefix=PREFIX, clock=clock)
for tier in ("free", "pro", "enterprise"):
    out = gate.process_with_tier_limits(f"user-{tier}", tier, STATUS)
    print(f"{tier:10} {out['daily_usage']}/{out['daily_limit']}: {out['content']}")

answers = [gate.process_with_tier_limits("user-free", "free", STATUS) for _ in range(10)]
print("\nthe free user's 11th request today:", answers[-1])
clock.advance(86400)
print("tomorrow:", gate.process_with_tier_limits("user-free", "free", STATUS)["daily_usage"], "request(s) used")

# %% [markdown]
# ## 3 · The content pipeline
#
# Four stages, each fed the previous one's output: research, outline and SEO on `CHEAP`, the
# article on `PREMIUM` (`STAGE_MODELS`), each at its model's default effort. The lesson's SEO
# stage asks for "SEO elements" in free text, then reads `seo["title"]`, a key nothing ever
# produced. Asking for JSON is not enough either: JSON mode guarantees syntax, not *your* fields.
# **Structured Outputs** do: pass a pydantic model to `client.chat.completions.parse(...)` (or
# `client.responses.parse(..., text_format=...)` on the Responses API), the SDK sends its JSON
# schema with `strict: true`, and the parsed object is an instance of your model. Ours:

# %%
import inspect

from labkit.course.ex07 import STAGE_MODELS, TOPIC, SEOFields

print(inspect.getsource(SEOFields))
print("stage models:", STAGE_MODELS)

# %% [markdown]
# The schema it becomes (the SDK adds `"additionalProperties": false` and marks every field
# required, as strict mode demands):

# %%
import json

print(json.dumps(SEOFields.model_json_schema()["properties"], indent=1))

# %%
pipeline = sol.ContentPipeline(labkit.client("ex07"))
post = pipeline.generate_blog_post(TOPIC)
print(post["article"][:400], "...\n")
print("title:      ", post["seo_title"], f"({len(post['seo_title'])} chars)")
print("description:", post["meta_description"], f"({len(post['meta_description'])} chars)")
print("keywords:   ", ", ".join(post["keywords"]))

# %% [markdown]
# The same stage on the Responses API: the SDK's `responses.parse` sends the schema as
# `text.format` and returns the parsed object as `output_parsed`:

# %%
from labkit.course.ex07 import stage_messages

seo_call = labkit.client("ex07").responses.parse(
    model=STAGE_MODELS["seo"], input=stage_messages("seo", TOPIC, post["article"]), text_format=SEOFields)
print(type(seo_call.output_parsed).__name__, "-", seo_call.output_parsed.title)

# %% [markdown]
# The strict schema guarantees the fields exist and have the right types; it does not enforce our
# length rules (60 and 160 characters), so check those in code before publishing. And the cost of a
# post is the sum of all four stages, each priced from its own usage:

# %%
for stage, usd in post["stage_costs"].items():
    print(f"{stage:9} ${usd:.6f}  {usd / post['total_cost']:6.1%}  ({STAGE_MODELS[stage]})")
print(f"{'total':9} ${post['total_cost']:.6f}  -> 100 posts overnight: ${100 * post['total_cost']:.2f}")
write = labkit.catalog.get_model(STAGE_MODELS["write"]).price_output
light = labkit.catalog.get_model(STAGE_MODELS["research"]).price_output
print(f"output price per 1M tokens: write stage ${write:.2f}, the other stages ${light:.2f} ({write / light:.0f}x)")

# %% [markdown]
# Almost all of a post's cost is the writing stage: the flagship's output costs many times the
# cheapest model's, and at its default effort most of what it bills as output is hidden reasoning.
# Making the cheap stages cheaper changes nothing; the levers are the writing stage's model, its
# effort and its length. The lesson's "100 posts overnight" is also exactly what the Batch API is
# for: the same requests, answered within 24 hours, at half the price.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 2.8))
ax.barh(list(post["stage_costs"])[::-1], [v * 100 for v in list(post["stage_costs"].values())[::-1]], color="#4c72b0")
ax.set_xlabel("US cents per post")
ax.set_title("Where a blog post's cost goes")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Your turn: exercise 07
#
# Open `exercises/ex07_saas_patterns.py`. The SQL schema is in the file; the tiers, the prompts and
# `SEOFields` come from `labkit/course/ex07.py`. You write the billing methods,
# `process_with_tier_limits` and `generate_blog_post`, on Chat Completions or the Responses API
# (the checks read what your requests mean, either way).

# %%
ex07 = labkit.notebook.exercise("ex07")
try:
    mine = ex07.ContentPipeline(labkit.client("ex07"))
    print(mine.generate_blog_post(TOPIC)["seo_title"])
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** bill from rows in a real database, take credits with one conditional `UPDATE` and give
# them back when the call fails; pass every value as a parameter, never in the SQL text; gate tiers
# with data (model, output limit, reasoning effort, daily allowance) and count before you call;
# send `max_completion_tokens`, never `max_tokens`; get machine-readable fields from Structured
# Outputs, not from free text; price every stage from its own usage, reasoning tokens included.
# Check your work (8 concurrent requests against your credits and your daily limits, awkward tenant
# ids, failed calls, month and day boundaries):

# %%
redisd.drop_prefix(r, PREFIX)
labkit.check("ex07")
