# %% [markdown]
# # 07 · SaaS patterns: tenant billing, tiers and a content pipeline
#
# **What you will build:** the three use cases that close the lesson's advanced exercise.
#
# 1. **Usage-based billing per tenant**: every AI request is a row in a real SQL database (SQLite,
#    which ships with Python), tenants have credits, and an invoice is one `GROUP BY` away.
# 2. **Feature gating by tier**: free, pro and enterprise users get different models, output
#    limits and daily allowances (the lesson's numbers), counted in Redis.
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
# | `gpt-5` with `max_tokens=1000` | HTTP 400 on the real API | `max_completion_tokens` (and a reasoning effort) |
# | `smart_completion(..., model="gpt-5-mini")` | `TypeError`: the method has no `model` parameter | the model is a parameter of every stage |
# | `seo["title"]`, `seo["meta"]`, `seo["keywords"]` | `KeyError`: the SEO call returns free text, nothing produces these keys | Structured Outputs parsed into a pydantic model |
#
# Everything below uses the reference solution (`labkit.notebook.solution("ex07")`); your version
# goes in `exercises/ex07_saas_patterns.py`. The requests, prompts, tiers and models are in
# `labkit/course/ex07.py`.

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

db = sqlite3.connect(folder / "billing.sqlite3")
for row in db.execute("SELECT tenant_id, feature, model, units, prompt_tokens, completion_tokens, "
                      "ROUND(cost_usd, 6), created_at FROM usage_records ORDER BY id"):
    print(row)
print("\nremaining credits:", {t: billing.remaining_credits(t) for t in ("acme_corp", "globex")})
print("invoice acme_corp 2026-11:")
for line in billing.invoice("acme_corp", "2026-11"):
    print(f"   {line['feature']:22} {line['requests']} request(s), {line['units']} credit(s), ${line['cost_usd']:.6f}")
db.close()

# %% [markdown]
# A credit is what the customer pays for; `cost_usd` is what the generation cost us, priced from
# its real `usage`. The marketing email costs more than its length suggests: the billing model is a
# reasoning model, and its hidden reasoning tokens are billed as output. Both are in the usage:

# %%
from labkit.course.ex07 import BILLING_MODEL

raw = labkit.client("ex07").chat.completions.create(model=BILLING_MODEL, messages=MARKETING)
print(raw.usage.completion_tokens, "completion tokens, of which", raw.usage.completion_tokens_details.reasoning_tokens, "reasoning")
print(labkit.costs.cost(raw.usage, raw.model))

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
# That is also why each tier carries a `reasoning_effort`: a 200-token limit with the default
# (medium) effort can be spent entirely on reasoning, leaving an empty answer with
# `finish_reason="length"`. `"minimal"` keeps the free tier's answers inside its budget.
#
# The daily allowance is a Redis counter per user and day, counted *before* the call: `INCR`
# returns the new count atomically, so of 16 simultaneous requests exactly 10 get numbers 1 to 10.
# The counter expires a little after midnight UTC. (Expiry uses a relative TTL: Redis expires keys
# on its own clock, which is not the injectable clock our code and checks use.)

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
# Four stages, each fed the previous one's output: research, outline and SEO on a fast reasoning
# model, the article on the flagship (`STAGE_MODELS`). The lesson's SEO stage asks for "SEO
# elements" in free text, then reads `seo["title"]`, a key nothing ever produced. Asking for JSON
# is not enough either: JSON mode guarantees syntax, not *your* fields. **Structured Outputs** do:
# pass a pydantic model to `client.chat.completions.parse(...)`, the SDK sends its JSON schema with
# `strict: true`, and `message.parsed` is an instance of your model. Ours:

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
# The strict schema guarantees the fields exist and have the right types; it does not enforce our
# length rules (60 and 160 characters), so check those in code before publishing. And the cost of a
# post is the sum of all four stages, each priced from its own usage:

# %%
for stage, usd in post["stage_costs"].items():
    print(f"{stage:9} ${usd:.6f}  ({STAGE_MODELS[stage]})")
print(f"{'total':9} ${post['total_cost']:.6f}  -> 100 posts overnight: ${100 * post['total_cost']:.2f}")

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
# `process_with_tier_limits` and `generate_blog_post`.

# %%
ex07 = labkit.notebook.exercise("ex07")
try:
    mine = ex07.ContentPipeline(labkit.client("ex07"))
    print(mine.generate_blog_post(TOPIC)["seo_title"])
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** bill from rows in a real database and take credits with one conditional `UPDATE`;
# gate tiers with data (model, output limit, reasoning effort, daily allowance) and count before
# you call; send reasoning models `max_completion_tokens`; get machine-readable fields from
# Structured Outputs, not from free text; price every stage from its own usage. Check your work
# (8 concurrent requests against your credits and your daily limits):

# %%
redisd.drop_prefix(r, PREFIX)
labkit.check("ex07")
