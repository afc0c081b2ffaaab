# %% [markdown]
# # 10 · Production templates: five jobs, each with a metric it must meet
#
# **What you will build:** the lesson's five production templates, rebuilt so that each one can be
# trusted with real traffic and graded on a success metric:
#
# 1. **Support auto-reply** (the full form is the lesson's customer-support-bot mini-project): a
#    structured `SupportResponse` drafted from a small knowledge base and the customer's history;
#    drafts that are unsure, policy-sensitive (refunds, legal) or that promise what no article
#    says go to a person's review queue instead of the customer, checked mechanically.
# 2. **Lead extraction** from unstructured text: nullable fields, and a value the text does not
#    state is null, never invented; measured on a labelled set with adversarial cases.
# 3. **Content at scale** through the Batch API's whole lifecycle: write the JSONL, upload it,
#    create the batch, poll it, read the results by `custom_id`, send the failures again; half
#    the price, measured from usage.
# 4. **Routing**: exercise 05's classifier reused as it is, with token logprobs as its
#    confidence; only uncertain emails go to the larger model. Cost and accuracy against always
#    using the larger model.
# 5. **Personalization at scale**: merge fields filled from each customer's record, a fact check
#    with a safe fallback, a layout the prompt cache can serve, and the cost per 1,000 messages.
#
# Everything runs offline on recorded answers, and the real local pieces are real: a SQLite review
# queue, an SMTP server on 127.0.0.1 that receives the replies you send, and the Batch API's state
# machine on a virtual clock.

# %%
import labkit

labkit.notebook.intro("ex10", "ex10_routing")

# %% [markdown]
# ## The lesson's templates, on today's API
#
# The lesson's templates were written for GPT-5-era models: `gpt-5-mini` with `temperature=0.3`
# and `max_tokens=300` for support, `gpt-5` at `temperature=0.8` with `max_tokens=2000` for
# articles, one request a second. On the course's date (1 December 2026) both models are days
# from their shutdown, and both are reasoning models, which reject `temperature` and `max_tokens`
# with a 400 before anything is generated. The course's linter reads all of this from the
# catalog; here is template 1 as written, and what the API answers:

# %%
import openai

from labkit.course import ex10 as course

client = labkit.client("ex10")
ref = labkit.notebook.solution("ex10")
ticket = course.TICKETS[0]
lesson = course.lesson_support_request(ticket, course.CUSTOMER[ticket.customer_id])
for finding in labkit.lint_request(**lesson):
    print(f"{finding.severity:7} {finding.code}")
try:
    client.chat.completions.create(**lesson)
except openai.BadRequestError as err:
    print("\n400 from the API:", err.body["message"][:110], "…")
print()
for finding in labkit.lint_request(**course.lesson_content_request(course.PRODUCTS[0])):
    print(f"template 3: {finding.severity:7} {finding.code}")

# %% [markdown]
# The course builds each template on its models by role (`labkit/course/models.py`) and keeps the
# lesson's other choices where they still make sense. Everything the templates share with the
# exercise and its checks (the knowledge base, the customers, the schemas, the prompts, the
# contract) is in `labkit/course/ex10.py`; the code in this notebook is the exercise's reference
# solution, and the last section runs yours.

# %% [markdown]
# ## 1 · Support auto-reply, with a review queue
#
# The lesson's template asks a model for a free-text draft, and its mini-project adds a
# structured analysis afterwards (confidence, needs a human, priority, suggested actions) from a
# *second* request. Here one Structured Outputs request returns the draft and its analysis
# together, as a `SupportResponse`, plus one field the lesson lacks: `sources`, the ids of the
# knowledge-base articles the answer relies on. The model gets three things: the knowledge base
# (eight short articles, small enough to send whole), the customer's record (plan and every past
# issue) and the ticket, fenced as data.

# %%
customer = course.CUSTOMER["cus-ben"]
messages = ref.support_input(ticket, customer)
print(messages[0]["content"][:360], "…\n")
print(course.history_text(customer), "\n")
print(messages[1]["content"])

# %% [markdown]
# ### What decides whether a draft is sent
#
# A model's self-reported `confidence` is a weak signal: it is a number the model wrote, not a
# measured probability. So the decision to send does not rest on it alone. A draft goes to a
# person when any of these holds, and each is checked by code, not by asking the model again:
#
# * the model refused, set `needs_human`, or reported a confidence below the contract's minimum;
# * the ticket or the answer is **policy-sensitive**: money back, legal or privacy words (in the
#   languages the customers write), or an answer citing the refund or privacy article;
# * the answer cites an article that does not exist;
# * the answer **claims** something (an amount, a delay, a percentage, a refund, a credit, a
#   discount, something free) that no cited article, nor the customer's record, nor the ticket
#   states. What counts as a claim is data (`CLAIM_PATTERNS`), so the rule can be tested:

# %%
for article in course.KNOWLEDGE_BASE[:3]:
    print(f"{article.id:14} claims {sorted(course.claims(article.text))}")
print()
promise = "For the trouble, I have added a free month, and you'll hear back within 24 hours."
print("a draft saying:", promise)
print("  claims:", sorted(course.claims(promise)))

# %% [markdown]
# Replies that pass are sent through a real SMTP server on 127.0.0.1 (a stand-in for your mail
# provider) and recorded in the desk's SQLite outbox; the rest wait in its review queue with the
# reasons. Seven tickets:

# %%
import smtplib
from email.message import EmailMessage

from labkit.clock import Clock, course_clock
from labkit.web import SmtpSink

sink = SmtpSink().start()


def deliver(message: EmailMessage) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
        smtp.send_message(message)


desk = course.SupportDesk(clock=course_clock, deliver=deliver)
for t in course.TICKETS:
    route = ref.handle_ticket(client, desk, t, course.CUSTOMER[t.customer_id])
    print(f"{t.id}  {route:6}  {t.text[:72]}")

# %%
print("sent, as the SMTP server received them:")
for message in sink.wait_for(len(desk.outbox())):
    print(f"  to {message['To']:32} {message['Subject']}: {message.get_content()[:70].strip()}…")
print("\nheld for a person, with the reasons:")
for ticket_id, reasons in desk.queue():
    print(f"  {ticket_id}: {'; '.join(reasons)}")
sink.stop()

# %% [markdown]
# T-1005 shows why the claims check matters: the draft is confident (0.78), cites a real article,
# sets no flag, and promises a free month that no article offers. The lesson's prompt says
# "never promise refunds over $100"; a prompt is a request, not a guarantee. The check is what
# keeps the promise out of the customer's inbox.
#
# What a ticket costs, from the recorded usage (the lesson quotes $0.0003-0.0005 per ticket for
# `gpt-5-mini`, a model that is about to shut down):

# %%
import json

from labkit.costs import cost
from labkit.replay import load_cassette, resolve_cassette

drafts = [s for s in labkit.transport_of(client).served if s.path == "/v1/responses"]
print(f"{len(drafts)} drafts on {course.SUPPORT_MODEL} at effort {course.SUPPORT_EFFORT!r}")

recorded = load_cassette(resolve_cassette("ex10")).interactions
usd = [cost(json.loads(recorded[s.index].content)["usage"], course.SUPPORT_MODEL).total_usd for s in drafts]
tokens = [json.loads(recorded[s.index].content)["usage"]["input_tokens"] for s in drafts]
print(f"per ticket: ${min(usd):.5f} to ${max(usd):.5f}, {min(tokens)} to {max(tokens)} input tokens each")

# %% [markdown]
# Several times the lesson's figure, for two reasons the lesson's arithmetic leaves out: the
# context (eight articles and the customer's record make every prompt about 950 tokens before the
# ticket) and the hidden reasoning, billed as output even at effort `"low"`. Both are levers:
# send only the articles a ticket needs (retrieval), and keep the shared part of the prompt first
# so the prompt cache can serve it once prompts pass 1,024 tokens (section 5 does exactly that).

# %% [markdown]
# ## 2 · Lead extraction: absent means null
#
# The lesson's extraction template asks for JSON in words ("Output valid JSON only … If field not
# found, use null") and reads it with `json.loads`. JSON mode, or words, guarantee at best valid
# JSON, not your schema. Structured Outputs guarantee the schema: here a `LeadExtraction` with a
# list of leads (one per company: an email may mention two), each field `str | None`, so the
# model can say "absent" instead of inventing.
#
# A schema cannot stop a model from inventing a plausible email address, though. So every value
# is checked against the text (`appears_in`: as written, or for a phone number its digits), and a
# value the text does not state becomes null. The recorded answers do what models do on hard
# inputs: invent an address for a contact who gave none, make up a contact name for a bare
# signature, translate a German timeline.

# %%
for case in course.LEAD_CASES:
    print(f"{case.id:14} {case.note}")
    for lead in ref.extract_leads(client, case.text):
        print("   ", lead.model_dump(exclude_none=True))

# %% [markdown]
# Graded on the labelled set: how many fields agree with what a careful person extracted, and how
# many values were invented (a value the text does not state), before and after grounding:

# %%
raw = [json.loads(i.content)["choices"][0]["message"]["content"] for i in recorded
       if (i.body or {}).get("response_format", {}).get("json_schema", {}).get("name") == "LeadExtraction"]


def score(found_by_case: list[list[dict]]) -> tuple[int, int, int]:
    right = total = invented = 0
    for case, found in zip(course.LEAD_CASES, found_by_case):
        for lead in found:
            invented += sum(1 for k, v in lead.items() if v is not None and not course.appears_in(v, case.text, k))
        for label, lead in zip(case.leads, found):
            for k in course.LEAD_FIELDS:
                total += 1
                right += (label[k] is None and lead[k] is None) or (
                    label[k] is not None and lead[k] is not None and course.normalize(label[k]) == course.normalize(lead[k]))
    return right, total, invented


before = score([json.loads(text)["leads"] for text in raw])
after = score([[lead.model_dump() for lead in ref.extract_leads(client, case.text)] for case in course.LEAD_CASES])
for name, (right, total, invented) in (("model's answer", before), ("after grounding", after)):
    print(f"{name:16} fields right {right}/{total} ({right / total:.0%}), invented values: {invented}")

# %% [markdown]
# Grounding costs one field here: the model translated "im Mai" to "May", and the check cannot
# tell a translation from an invention, so it drops it. That is the trade the template makes on
# purpose: a missing value costs a follow-up question; an invented email address costs a lead.

# %% [markdown]
# ## 3 · Content at scale, through the Batch API
#
# The lesson writes articles in a loop, one request after another with `time.sleep(1)` between
# them. For work nobody waits for, the Batch API is the tool: one file of requests, processed
# within 24 hours, at **half the price** of the same requests sent one by one (the catalog's
# `batch_discount`). Its lifecycle has six steps, and each is a call you make:
#
# 1. **write** a JSON Lines file, one request per line, each with a `custom_id`;
# 2. **upload** it: `client.files.create(file=..., purpose="batch")`;
# 3. **create** the batch: `client.batches.create(input_file_id=..., endpoint=..., completion_window="24h")`;
# 4. **poll** it: `client.batches.retrieve(id)` until its status is terminal;
# 5. **download** the output and error files and match each line to its request by `custom_id`
#    (the output is in the order requests finished, not yours);
# 6. **retry** what failed for a reason that can pass (a 429 or 5xx, or a request the window
#    closed on) in a new batch.
#
# The job: descriptions for twelve new products of Trailhead (lesson 09's shop). Each line carries
# the per-item budget, `max_output_tokens`, which bounds what one item can cost:

# %%
import tempfile
from pathlib import Path

folder = Path(tempfile.mkdtemp(prefix="ex10-"))
products = list(course.PRODUCTS)
path = ref.write_batch_file(products, folder / "content-1.jsonl")
first = json.loads(path.read_text(encoding="utf-8").split("\n")[0])
print(f"{len(products)} lines, {path.stat().st_size:,} bytes; the first:")
print(json.dumps({**first, "body": {**first["body"], "input": "[…]"}}, indent=1, ensure_ascii=False))

# %% [markdown]
# Upload and create. The API checks the file first (`validating`), then runs it:

# %%
batch = ref.submit_batch(client, path)
print(batch.id, batch.status, "endpoint", batch.endpoint, "window", batch.completion_window)
print("expires", (batch.expires_at - batch.created_at) // 3600, "hours after it was created")

# %% [markdown]
# Poll, with a pause between polls, until the status is terminal. This is what `wait_for_batch`
# does, printed as it goes. The pause is a `sleep` the code is given: a real program passes
# `time.sleep` (and polls every minute or so; a `batch.completed` webhook can replace polling
# altogether), the notebook and the checks pass a virtual clock, so the wait takes no time at all:

# %%
clock = Clock(now=course_clock())
print(f"{'after':>7}  {'status':12} {'done':>4} {'failed':>6}")
while True:
    batch = client.batches.retrieve(batch.id)
    counts = batch.request_counts
    print(f"{sum(clock.sleeps):6.0f}s  {batch.status:12} {counts.completed:4} {counts.failed:6}")
    if batch.status in course.CONTRACT.terminal:
        break
    clock.sleep(course.CONTRACT.poll_seconds)
print(f"\nfinished {batch.completed_at - batch.created_at} s after it was created; output file {batch.output_file_id}, "
      f"error file {batch.error_file_id}")

# %% [markdown]
# Read both files and match by `custom_id`. Note the order of the output file: it is not the
# order of the input.

# %%
ok, failed = ref.read_results(client, batch)
print("output order:", list(ok))
print("input order: ", [p.sku for p in products])
print("\nfailed:", {k: (v["status"], (v["error"] or {}).get("message", "")[:50]) for k, v in failed.items()})
cut = [k for k, body in ok.items() if body["status"] != "completed"]
print("answered but incomplete:", {k: ok[k]["incomplete_details"] for k in cut})

# %% [markdown]
# Two kinds of failure, two decisions. `JK-310` failed with a 500, a server error: the same
# request may well pass, so it goes again in a new batch. `SB-015` *was* answered, but the
# description ran past its budget and came back `incomplete`: sent again it would stop at the same
# budget, so it is a final failure for a person to look at (or for a larger budget). Round two:

# %%
retry = [p for p in products if p.sku in failed and failed[p.sku]["status"] in course.CONTRACT.retry_statuses]
batch2 = ref.wait_for_batch(client, ref.submit_batch(client, ref.write_batch_file(retry, folder / "content-2.jsonl")).id,
                            sleep=clock.sleep)
ok2, failed2 = ref.read_results(client, batch2)
print(batch2.status, batch2.request_counts, "->", list(ok2))
print(course.output_text(ok2["JK-310"]))

# %% [markdown]
# `run_content_batch` does all of the above in one call, and keeps every answer's usage. From the
# usage, the cost: at Batch API prices and, for comparison, sent one by one.

# %%
run = ref.run_content_batch(labkit.client("ex10"), products, folder, sleep=Clock(now=course_clock()).sleep)
print(len(run.texts), "descriptions,", len(run.batch_ids), "batches, final failures:", run.failures)
batch_usd, standard_usd = ref.batch_cost(run)
print(f"batch ${batch_usd:.5f} vs ${standard_usd:.5f} one by one: {1 - batch_usd / standard_usd:.0%} saved,"
      f" ${batch_usd / len(run.usages):.5f} per item")

# %% [markdown]
# The lesson prices an article at "$0.10-0.20". From the catalog, the lesson's own setting (a
# 1,200-word article, about 1,600 output tokens, on `gpt-5` at its default medium effort, whose
# hidden reasoning the course models at 2.5 times the visible output) comes to a few cents, and
# half that in a batch:

# %%
from labkit.authoring import REASONING_PER_EFFORT
from labkit.costs import estimate

visible = 1_600
reasoning = int(REASONING_PER_EFFORT["medium"][0] * visible)
for tier in ("default", "batch"):
    article = estimate(150, visible + reasoning, course.LESSON_CONTENT["model"], reasoning_tokens=reasoning, tier=tier)
    print(f"{tier:8} ${article.total_usd:.4f} per article")

# %% [markdown]
# ## 4 · Routing: exercise 05's classifier, and a confidence it can measure
#
# Exercise 05 built a classifier: `request_for(email)` in `labkit/course/ex05.py` (the urgency
# rubric, the email fenced as data, the `Classification` schema of enums, the fast model at
# effort `"none"`), sent by your `classify`. Routing reuses it as it is. The one thing it adds is
# a confidence, and the honest way to get one is the **token logprobs**: `logprobs=True` returns,
# for each generated token, the log of the probability the model gave it. Effort `"none"` is the
# only effort at which GPT-6 models accept `logprobs`, and exercise 05's classifier already runs
# at it, so the request changes by one key.
#
# Your own exercise 05 `classify` is the same component; if you have written it, it answers here
# (the recordings are exercise 05's):

# %%
from labkit.course.ex05 import request_for

ex05 = labkit.notebook.exercise("ex05")
email = course.routing_emails()[6]
try:
    mine = await ex05.classify(labkit.client("ex05", async_=True), email)  # noqa: F704 - notebooks await at top level
    print("your exercise 05 classify:", ex05.parsed_of(mine))
except NotImplementedError as todo:
    print("exercise 05's classify is still a TODO:", todo)
print("the request it sends, plus logprobs:", sorted({**request_for(email), "logprobs": True}))

# %% [markdown]
# Each label's probability is the product of the probabilities of the tokens that spell it; in
# logs, a sum. `label_spans` says where each label sits in the JSON answer (in bytes), and each
# token's `bytes` say how far it reaches:

# %%
routing = labkit.client("ex10_routing")
small = routing.chat.completions.parse(**{**request_for(email), "logprobs": True})
content = small.choices[0].message.content
spans = course.label_spans(content)
print(content[:90], "…")
for token in small.choices[0].logprobs.content[:14]:
    print(f"  {token.token!r:14} logprob {token.logprob:9.5f}")
print("spans:", spans, "-> confidence", round(ref.confidence(small), 3), f"(escalate below {course.CONTRACT.escalate_below})")
print("label:", email["label"])

# %% [markdown]
# The small model got `urgency` wrong here ("medium" for a "low" email), and that is the label it
# was unsure of: its first token got a probability of under one half. Not
# every mistake is that polite: a model can be sure and wrong, and routing by confidence only
# catches the mistakes the model hesitates over. Measured on the 73 labelled emails of exercise
# 05's graded slice, against sending every email to the large model:

# %%
report = ref.evaluate_routing(labkit.client("ex10_routing"), course.routing_emails())
print(f"escalated {report.escalated} of {report.emails}")
print(f"accuracy: routed {report.routed_accuracy:.1%}, always large {report.large_accuracy:.1%}")
print(f"cost:     routed ${report.routed_usd:.5f}, always large ${report.large_usd:.5f} ({report.cost_share:.0%})")

# %%
routing = labkit.client("ex10_routing")
wrong = []
for e in course.routing_emails():
    r = ref.route_email(routing, e)
    if not course.correct(r.classification, e):
        wrong.append((e["id"], e["hard_case"] or "-", r.model, round(r.confidence, 3)))
print("still wrong after routing (email, hard case, model kept, small model's confidence):")
for row in wrong:
    print(" ", row)

# %% [markdown]
# The injection email (`em-0914`, "Invoice copy") is the lesson in one row: the instruction
# hidden in the email worked on the small model, and the small model was *sure*. Confidence
# routing saves most of the cost (the large model costs ten times more per token) and loses a
# little accuracy; the mistakes it keeps are the confident ones, which is why exercise 05 also
# fences the email as data and why a critical route still ends with a person.

# %% [markdown]
# ## 5 · Personalization at scale
#
# The lesson's template rewrites a whole email per prospect from their record, and trusts the
# result. Two things go wrong at scale: the model writes facts the record does not hold (a seat
# count, a date, "a customer since 2019"), and every request pays again for the same long
# instructions. The template here fixes both:
#
# * the model writes a draft with **merge fields** (`{first_name}`, `{company}`, `{seats}`…), and
#   code fills them from the record, once, literally;
# * a **fact check** compares every fact in the result (numbers, dates, addresses, and every name
#   the course knows) with what the record and the campaign brief state; a draft that fails, or
#   uses an unknown field, or was cut off, is replaced by the plain template, filled the same way;
# * the **layout** puts what every customer shares first (instructions and a 1,200-token style
#   guide with the campaign brief) and the customer's record last, so every request after the
#   first starts with the same 1,024+ tokens, which the prompt cache serves.

# %%
from labkit.tokens import count_tokens

first_request = ref.personal_request(course.CUSTOMERS[0])
shared, record = first_request["messages"]
print("shared prefix:", count_tokens([shared], course.PERSONAL_MODEL), "tokens; the customer's part:", record["content"][:90], "…")
messages = [ref.personalize(client, c) for c in course.CUSTOMERS]
for m in messages:
    usage = m.usage
    print(f"{m.customer_id:11} {m.source:8} prompt {usage.prompt_tokens:5} cached {usage.prompt_tokens_details.cached_tokens:5}"
          f" written {usage.prompt_tokens_details.cache_write_tokens:5} {'; '.join(m.problems)}")

# %%
print(messages[1].text, "\n")
print("Fatima's draft said 'since 2021', which no record holds, so she gets the fallback:\n")
print(messages[4].text)

# %% [markdown]
# The first request writes the prefix to the cache (on GPT-5.6 and later models a cache write is
# billed at 1.25 times the input price); the next ones read it at a tenth of it. The cost per
# 1,000 messages, from the usage, against the same messages with no cache at all:

# %%
per_1000 = ref.cost_per_1000(messages)
uncached = sum(estimate(m.usage.prompt_tokens, m.usage.completion_tokens, course.PERSONAL_MODEL).total_usd for m in messages)
print(f"${per_1000:.4f} per 1,000 messages with the cache; ${uncached / len(messages) * 1000:.4f} without")

# %% [markdown]
# ## Your turn
#
# Open `exercises/ex10_production.py` and fill in the TODOs, template by template (the contract is
# the docstring of `labkit/course/ex10.py`). The cell below runs your support desk on the seven
# tickets and your lead extraction on the labelled set, on the recordings; the checks go further:
# adversarial tickets and records, the Batch API's failures and expiry, routing's boundaries, and
# generated drafts and usages.

# %%
ex10 = labkit.notebook.exercise("ex10")
try:
    mine_desk = course.SupportDesk(clock=course_clock)
    for t in course.TICKETS:
        print(t.id, ex10.handle_ticket(labkit.client("ex10"), mine_desk, t, course.CUSTOMER[t.customer_id]))
    print(ex10.extract_leads(labkit.client("ex10"), course.LEAD_CASES[2].text))
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** build each template on today's models by role, and make every promise checkable.
# Support: one Structured Outputs request with the knowledge base and the history; code, not the
# model's self-confidence, decides what reaches the customer, and a reply never claims what no
# article states. Extraction: nullable fields, and ground every value in the text. Content: the
# Batch API's six steps, results matched by `custom_id`, retryable failures sent again, half the
# price. Routing: reuse the classifier, read its confidence from logprobs, escalate only the
# uncertain, and measure cost and accuracy against the simple policy. Personalization: merge
# fields from the record, a fact check with a fallback, the shared prefix first. Check your work:

# %%
labkit.check("ex10")
