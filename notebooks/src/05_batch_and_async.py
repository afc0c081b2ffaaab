# %% [markdown]
# # 05 · Batch and async: 1,000 customer emails, classified and routed
#
# **What you will build:** a batch processor that classifies 1,000 customer emails (sentiment,
# urgency, category, one-line summary) with Structured Outputs, routes each one (critical to a
# human, negative to senior support, the rest to the standard queue), and does it as fast as the
# rate limit allows: `AsyncOpenAI`, a concurrency limit, a token-bucket rate limiter, per-email
# error isolation, retries of retryable failures only, and a JSONL results file that lets a
# crashed run resume. You will measure three designs (sequential, the lesson's thread pool, and
# yours) against the theoretical limit, score the answers against ground-truth labels, and price
# the run three ways: synchronous, the Batch API and Flex.
#
# The lesson classifies with `gpt-5-mini` at `temperature=0.2`, asks for JSON in words and reads
# it with `json.loads`. This notebook shows what the API answers to that today, and builds the
# classifier on the course's current fast model instead, at a reasoning effort chosen on purpose.

# %%
import labkit

labkit.notebook.intro("ex05", "ex05_inbox")

# %% [markdown]
# ## The inbox
#
# `data/emails.jsonl` holds 1,000 synthetic emails to a project-management SaaS, made by a seeded
# generator (`data/make_emails.py`), each with ground-truth labels. A few are deliberately hard:
# empty, very long (pasted logs, a two-year invoice dispute), not in English, and three that try
# to give the classifier orders (prompt injection).
#
# The lesson's content (the emails, the classification schema, the routing rules, the prompts,
# the requests and the exercise's contract) is in `labkit/course/ex05.py`, where the exercise,
# the recordings and the checks read it too. The reference code for this notebook is the
# exercise's solution; the last section runs yours.

# %%
import json
from collections import Counter

from labkit.course.ex05 import FIELDS, load_emails

ref = labkit.notebook.solution("ex05")
emails = load_emails()
print(len(emails), "emails")
for field in reversed(FIELDS):
    print(f"{field:9}", dict(Counter(e["label"][field] for e in emails).most_common()))
print("\nhard cases:")
for e in emails:
    if e["hard_case"]:
        print(f"  {e['id']}  {e['hard_case']:11}  {len(e['body']):6,} chars  {e['subject'][:48]!r}")

# %% [markdown]
# ## The lesson's request, and what the API answers
#
# The lesson sends its prompt to `gpt-5-mini` with `temperature=0.2` and `max_tokens=150`. Two
# things are wrong with that today, before any code runs:
#
# * GPT-5 models are reasoning models. They reject `temperature` and `max_tokens` with a 400
#   (the output cap of a reasoning model is `max_completion_tokens`, and it covers the hidden
#   reasoning too).
# * `gpt-5-mini` is deprecated: on the course's date (1 December 2026) it still answers, and it
#   shuts down on 11 December 2026. From then on the same request gets a `404 model_not_found`
#   whatever its parameters. The linter says all of this from the catalog:

# %%
import openai

from labkit.course.ex05 import LESSON_SYSTEM, demo_email, lesson_request

client = labkit.client("ex05")
email = demo_email(emails)  # a customer charged twice
print(LESSON_SYSTEM, end="\n\n")
request = lesson_request(email)
print({k: v for k, v in request.items() if k != "messages"}, end="\n\n")

for finding in labkit.lint_request(**request):
    print(f"{finding.severity}: {finding.code} -> {finding.message[:120]}…")
try:
    client.chat.completions.create(**request)
except openai.BadRequestError as err:
    print("\n400 from the API:", err.body["message"][:120], "…")
    print(labkit.provenance(client))

# %% [markdown]
# ## The model and the effort, chosen on purpose
#
# The course names its models by role (`labkit/course/models.py`); classification at volume is
# the `FAST` role's job, the cheapest current model. Every current model reasons before it
# answers, in hidden tokens billed as output, and how much is the **reasoning effort**. Sorting
# an email into three short lists against a written rubric is recognition, not a multi-step
# problem, so the classifier runs at effort `none`: no hidden reasoning, the lowest latency, and
# the only effort at which the model accepts `temperature` (set to 0: the most likely label).
#
# What a higher effort would cost, on the same email (the answers are authored, and their
# reasoning tokens and latencies follow the course's documented model per effort,
# `labkit.authoring.REASONING_PER_EFFORT`; live numbers will differ, the direction will not).
# Above `none` the request drops `temperature` (a 400 otherwise) and leaves room in the output
# limit, which counts the reasoning too:

# %%
from labkit.costs import cost
from labkit.course.ex05 import EFFORT, EFFORT_COMPARISON, MODEL, effort_request

print(f"MODEL: {MODEL} | EFFORT: {EFFORT}\n")
print(f"{'effort':7} {'input':>6} {'output':>7} {'of which reasoning':>19} {'server ms':>10} {'per 1,000 emails':>17}")
for effort in EFFORT_COMPARISON:
    raw = client.chat.completions.with_raw_response.parse(**effort_request(email, effort))
    usage = raw.parse().usage
    price = cost(usage, MODEL).total_usd * 1000
    print(f"{effort:7} {usage.prompt_tokens:6} {usage.completion_tokens:7} {usage.completion_tokens_details.reasoning_tokens:19} "
          f"{raw.headers['openai-processing-ms']:>10} {'$' + format(price, '.4f'):>17}")

# %% [markdown]
# At `medium` (the model's default, what you get by not choosing) each email would cost about
# 2.6 times as much and take over three times as long, for the same three words. The input
# dominates the bill at effort `none`; the reasoning would dominate it above.
#
# ## Free text is not data
#
# On the fast model at effort `none` the lesson's prompt goes through, but asked for JSON in
# words, models often wrap it in prose or a code fence, and `json.loads` fails on every such reply:

# %%
from labkit.course.ex05 import sampling_request

reply = client.chat.completions.create(**sampling_request(email))
text = reply.choices[0].message.content
print(text)
try:
    json.loads(text)
except json.JSONDecodeError as err:
    print("\njson.loads:", err)

# %% [markdown]
# **JSON mode** (`response_format={"type": "json_object"}`) is the lesson's next step, and the
# lesson says it guarantees valid JSON. It guarantees the *syntax*, not your *schema*: the reply
# below parses, but "urgent" is not one of your urgencies and "Billing" is not one of your
# categories, so a router would quietly send it nowhere. (JSON mode also needs the word "JSON"
# somewhere in the messages, or the API answers 400; the lesson's prompt has it.)

# %%
import pydantic

from labkit.course.ex05 import Classification

request = sampling_request(email, json_mode=True)
print("response_format:", request["response_format"])
reply = client.chat.completions.create(**request)
data = json.loads(reply.choices[0].message.content)
print(data)
try:
    Classification.model_validate(data)
except pydantic.ValidationError as err:
    print(f"\n{err.error_count()} schema errors:", [(e["loc"][0], e["input"]) for e in err.errors()])

# %% [markdown]
# ## Structured Outputs: the schema is the contract, in either API
#
# Structured Outputs constrain the model's output to a **strict JSON schema**; the SDK builds the
# schema from a pydantic model and parses the reply back into it. Enums make "urgent" impossible
# rather than unlikely. Both APIs have it, with a `parse` method each:
#
# | | Chat Completions | Responses API |
# |---|---|---|
# | call | `client.chat.completions.parse(...)` | `client.responses.parse(...)` |
# | conversation | `messages=[...]` | `input=[...]` (or `instructions=` and a string) |
# | schema | `response_format=Classification` | `text_format=Classification` |
# | on the wire | `response_format: {type: json_schema, json_schema: {strict: true, schema}}` | `text: {format: {type: json_schema, strict: true, schema}}` |
# | effort, output cap | `reasoning_effort=`, `max_completion_tokens=` | `reasoning={"effort": ...}`, `max_output_tokens=` |
# | the parsed answer | `completion.choices[0].message.parsed` | `response.output_parsed` |
#
# `request_for(email)` and `responses_request_for(email)` in `labkit/course/ex05.py` build the
# same classification for each; the exercise accepts either. New features land in the Responses
# API first; Chat Completions stays supported, and the lesson's code uses it. Both requests also
# fence the email in `<email>` tags and tell the model it is data, not instructions: the first
# defence against prompt injection.

# %%
from labkit.course.ex05 import request_for, responses_request_for

completion = client.chat.completions.parse(**request_for(email))
response = client.responses.parse(**responses_request_for(email))
print("Chat Completions:", repr(completion.choices[0].message.parsed))
print("Responses API:   ", repr(response.output_parsed))
print("route:", ref.route(response.output_parsed))
print(labkit.provenance(client))

# %%
from labkit.course.ex05 import email_text
from labkit.ratelimit import user_text
from labkit.replay import load_cassette, resolve_cassette


def wire_body(path):
    """What the SDK sent for the demo email's classification (as recorded)."""
    for inter in load_cassette(resolve_cassette("ex05")).interactions:
        body = inter.body or {}
        if inter.path == path and user_text(body) == email_text(email) and ("response_format" in body or "text" in body):
            return body


chat_wire, resp_wire = wire_body("/v1/chat/completions"), wire_body("/v1/responses")
print("chat      response_format:", json.dumps(chat_wire["response_format"])[:150], "…")
print("responses text.format:    ", json.dumps(resp_wire["text"]["format"])[:150], "…")
print("schema identical:", chat_wire["response_format"]["json_schema"]["schema"] == resp_wire["text"]["format"]["schema"])

# %% [markdown]
# ## Routing is a pure function
#
# Routing reads a classification and returns a queue; it sends nothing and stores nothing, so
# it is trivial to test exhaustively (the check tries all 48 combinations). The rules are data
# (`ROUTES`), tried in order: an email that is both critical and negative must reach a human,
# not senior support.

# %%
from labkit.course.ex05 import DEFAULT_QUEUE, ROUTES

for field, value, queue in ROUTES:
    print(f"{field} is {value:8} -> {queue}")
print(f"{'otherwise':20} -> {DEFAULT_QUEUE}\n")
for sentiment, urgency in [("negative", "critical"), ("positive", "critical"), ("negative", "high"), ("neutral", "medium")]:
    case = Classification(sentiment=sentiment, urgency=urgency, category="technical", summary="-")
    print(f"{urgency:8} + {sentiment:8} -> {ref.route(case)}")

# %% [markdown]
# ## Three designs under one latency model
#
# To compare designs we need realistic timing without a network. `labkit.faults.Latency` makes
# every answer take `base ± jitter` seconds; here 30 ± 10 ms so the notebook runs in seconds
# (the real API takes a few hundred ms for this call: the ratios below hold, the wall times
# scale). The **theoretical limit** of a design is set by how many requests it keeps in flight
# and by the rate limit:
#
# $$\text{theoretical rps} = \min\left(\frac{\text{concurrency}}{\text{mean latency}},\ \frac{\text{rpm}}{60}\right)$$
#
# **1. Sequential.** One request at a time: concurrency 1, so at best 1 / 30 ms ≈ 33 emails/s.
# Measured on 40 emails (timings in this section vary from run to run and machine to machine):

# %%
# NBVAL_IGNORE_OUTPUT
import time

from labkit import faults
from labkit.ratelimit import theoretical_rps

LATENCY = faults.Latency(base=0.03, jitter=0.01)
measured = {}

seq_client = faults.client((), "ex05", latency=LATENCY)
t = time.perf_counter()
seq = ref.process_sequential(seq_client, emails[:40])
measured["sequential"] = (40 / (time.perf_counter() - t), theoretical_rps(1, 0.03))
print(f"sequential: {measured['sequential'][0]:.1f} emails/s (limit {measured['sequential'][1]:.0f}/s)")

# %% [markdown]
# **2. The lesson's thread pool.** Five threads, and `time.sleep(0.1)` after each *finished*
# future, commented as a way to stay under the rate limit. It does not limit anything: every
# email is submitted to the pool before the first sleep, so the five workers send requests as
# fast as they can (5 / 30 ms ≈ 166/s), and the sleep runs in the loop that *collects* results,
# after the requests are already done. It only delays collecting, so the batch takes at least
# 0.1 s × N however fast the API is: both too slow and unprotected against rate limits.

# %%
# NBVAL_IGNORE_OUTPUT
pool_client = faults.client((), "ex05", latency=LATENCY)
t0 = time.monotonic()
pool = ref.process_lesson_pool(pool_client, emails[:40], max_workers=5, pause=0.1)
took = time.monotonic() - t0
sent = [a.at - t0 for a in pool_client._labkit_transport.attempts]
measured["lesson's pool"] = (40 / took, min(5 / 0.03, 1 / 0.1))  # its sleep caps it at 10/s
print(f"lesson's pool: {40 / took:.1f} emails/s; all 40 requests were sent within {max(sent):.2f} s "
      f"({40 / max(sent):.0f}/s), the function returned after {took:.2f} s")

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(7, 3))
ax.step(sorted(sent), range(1, 41), where="post", label="requests sent (measured)")
ax.plot([0, 4], [0, 40], "--", label="'10 requests/second' (the comment's intent)")
ax.axvline(took, color="grey", lw=1, label="function returns")
ax.set_xlabel("seconds"), ax.set_ylabel("requests"), ax.legend(fontsize=8), ax.set_title("The lesson's sleep(0.1) paces results, not requests")
plt.tight_layout()

# %% [markdown]
# **3. Async with limits.** One `AsyncOpenAI` client and one event loop: a coroutine per email, an
# `asyncio.Semaphore(concurrency)` so at most that many are in flight, and a `RateLimiter`
# (`labkit.ratelimit`) that every attempt waits on. The limiter is two **token buckets**, one for
# requests and one for tokens: each refills at its per-minute limit / 60 per second and holds at
# most a tenth of a second's worth, so bursts stay small (providers enforce per-minute limits
# over much shorter windows). A request's token cost is what the API counts against TPM: prompt
# tokens plus the output limit it asks for (`tokens_for`).
#
# The SDK's own retries are off (`max_retries=0`) so that there is exactly one retry layer, ours:
# retry only what can succeed next time (429, timeouts, dropped connections, 5xx), after the
# server's `Retry-After` when it sends one, and never a 400, 401 or 404. Each email's outcome is
# appended to a JSONL file the moment it is known, so a crash loses nothing that finished. In
# real time, with a progress bar: 300 emails, concurrency 8 (8 / 30 ms ≈ 266/s) and 6,000 rpm, so
# the rate limit sets the theoretical limit at 100/s:

# %%
# NBVAL_IGNORE_OUTPUT
import tempfile
from pathlib import Path

from labkit.ratelimit import lab_client

INBOX = ["ex05", "ex05_inbox"]  # the recordings of all 1,000 emails
work = Path(tempfile.mkdtemp())
aclient = lab_client(INBOX, latency=LATENCY)
t = time.perf_counter()
counts = await ref.process_batch(aclient, emails[:300], work / "results.jsonl", concurrency=8, rpm=6_000, tpm=10_000_000)
took = time.perf_counter() - t
measured["async"] = (300 / took, theoretical_rps(8, 0.03, 6_000))
print(counts, f"in {took:.2f} s = {measured['async'][0]:.0f} emails/s; peak in flight {aclient._labkit_transport.max_in_flight}")

# %%
# NBVAL_IGNORE_OUTPUT
names = list(measured)
rps = [measured[n][0] for n in names]
limits = [measured[n][1] for n in names]
for n, r, lim in zip(names, rps, limits):
    print(f"{n:14} {r:7.1f} emails/s   limit {lim:6.1f}/s   share {r / lim:5.0%}   1,000 emails in {1000 / r:6.1f} s")
fig, ax = plt.subplots(figsize=(7, 2.6))
ax.barh(names, limits, color="#ddd", label="theoretical limit")
ax.barh(names, rps, color="#4a7", label="measured")
ax.set_xlabel("emails per second"), ax.legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# The async design runs at about its limit; raise `rpm` and it climbs until the CPU is the limit:
# the SDK spends a few milliseconds of CPU per request (building and validating the request,
# parsing the reply), so one Python process tops out at a few hundred requests per second.
# `bench/batch.py` measures the three designs over real HTTP against `labkit.serve`, a local
# server that replays the recordings with 200 ms of latency and enforces a rate limit with real
# 429s; run `python bench/batch.py` (about two minutes).
#
# ## Measuring on a virtual clock
#
# Wall-clock measurements depend on the machine. The checks instead run your code on
# `labkit.ratelimit.VirtualTimeLoop`, an event loop whose clock jumps to the next timer whenever
# every task is waiting, so latency and backoff cost no real time and every run gives the same
# timestamps. That is also why the limiter reads `loop.time()`: the clock `asyncio.sleep` uses.
# All 1,000 emails under the checks' latency model (`virtual_latency()` in
# `labkit/course/ex05.py`) and `FULL_RUN`'s limits:

# %%
import asyncio

from labkit.course.ex05 import FULL_RUN, LATENCY_BASE, LATENCY_JITTER, virtual_latency
from labkit.ratelimit import run_virtual, window_peak


async def timed(client, batch, path, **params):
    loop = asyncio.get_running_loop()
    start = loop.time()
    counts = await ref.process_batch(client, batch, path, progress=False, **params)
    return counts, loop.time() - start


print(f"latency {LATENCY_BASE * 1000:.0f} ± {LATENCY_JITTER * 1000:.0f} ms, limits {FULL_RUN}")
vclient = lab_client(INBOX, latency=virtual_latency())
counts, elapsed = run_virtual(timed(vclient, emails, work / "virtual.jsonl", **FULL_RUN))
limit = theoretical_rps(FULL_RUN["concurrency"], LATENCY_BASE, FULL_RUN["rpm"])
print(counts, f"{elapsed:.3f} virtual s -> {1000 / elapsed:.1f} emails/s = {1000 / elapsed / limit:.1%} of {limit:.0f}/s")
print("peak in flight:", vclient._labkit_transport.max_in_flight)

# %% [markdown]
# ### Does the rate limit hold in every window?
#
# From the attempt timestamps we can find the busiest window of any length. At 6,000 rpm
# (100/s) with room for 32 in flight, 300 emails: no window may start more than the rate times
# its length plus the small burst.

# %%
vclient = lab_client(INBOX, latency=virtual_latency())
counts, elapsed = run_virtual(timed(vclient, emails[:300], work / "rpm.jsonl", concurrency=32, rpm=6_000, tpm=50_000_000))
starts = [a.at for a in vclient._labkit_transport.attempts]
for w in (0.1, 0.5, 1.0, 2.0):
    print(f"busiest {w:>3} s window: {window_peak(starts, w):4.0f} requests (rate x window = {100 * w:4.0f})")
print(f"{len(starts)} requests in {elapsed:.2f} s = {len(starts) / elapsed:.1f}/s")

# %% [markdown]
# ## The contract, and when emails fail
#
# The exercise's contract is written once, as data, in `labkit/course/ex05.py`: which failures
# are worth another try, what is final, which headers say how long to wait, how the rate limit
# is measured, what separates the results file's lines. The checks draw their scenarios from it
# (every status it names, mixed sequences, the `max_attempts` boundary).

# %%
from labkit.course.ex05 import CONTRACT

for name, value in vars(CONTRACT).items():
    print(f"{name:20} {value!r}")

# %% [markdown]
# A batch of 1,000 will meet failures. Here three emails meet scripted faults (`labkit.faults`
# steps, per email; `FAULTS` in `labkit/course/ex05.py`): a 429 that says how long to wait, a
# 404 no retry can fix, and a timeout followed by a 503. A fourth email's answer was cut off at
# the output limit (`TRUNCATED_EMAIL`): the SDK's `parse` raises rather than hand you half a
# JSON object, and sending it again would end the same way, so it is final too. The batch
# carries on; each failure stays with its email.

# %%
from labkit.course.ex05 import FAULTS, TRUNCATED_EMAIL, faults_for

batch = emails[:30] + [TRUNCATED_EMAIL]
for name, (position, steps) in FAULTS.items():
    print(f"{batch[position]['id']} ({name}): {' -> '.join(steps)}")
vclient = lab_client("ex05", latency=virtual_latency(), per_item=faults_for(batch))
counts, elapsed = run_virtual(timed(vclient, batch, work / "faults.jsonl", concurrency=4, rpm=60_000, tpm=50_000_000))
print(counts)
for item in sorted((json.loads(line) for line in (work / "faults.jsonl").read_text().splitlines()), key=lambda i: i["id"]):
    if item["attempts"] > 1 or item["status"] != "ok":
        print(f"{item['id']}: {item['status']:5} after {item['attempts']} attempt(s)  {item.get('error', '')[:60]}")

# %% [markdown]
# ## Crash and resume
#
# Now the process dies mid-batch (`crash_after=25` raises a `BaseException` from the 26th
# request, like a kill or an out-of-memory error: no `except Exception` catches it). The lines
# already appended survive; a second run reads them, skips those emails and sends only the rest.
# Lines are separated by `"\n"` only: `json.dumps(..., ensure_ascii=False)` keeps characters such
# as U+2028 raw inside strings, and `str.splitlines()` would split a line there.

# %%
from labkit.ratelimit import Crash

path = work / "crash.jsonl"
batch = emails[:100]
crashing = lab_client(INBOX, latency=virtual_latency(), crash_after=25)
try:
    run_virtual(timed(crashing, batch, path, concurrency=8, rpm=60_000, tpm=50_000_000))
except Crash as err:
    print("crashed:", err)
print("finished before the crash:", len(ref.finished_ids(path)))
resumed = lab_client(INBOX, latency=virtual_latency())
counts, _ = run_virtual(timed(resumed, batch, path, concurrency=8, rpm=60_000, tpm=50_000_000))
print("resumed run:", counts, "| requests sent:", len(resumed._labkit_transport.attempts))
print("ok lines now:", len(ref.finished_ids(path)), "of", len(batch))

# %% [markdown]
# ## How good are the answers?
#
# Accuracy against the labels, from the full virtual run's results file. The recordings are
# **authored**: each answer is the email's label except for a seeded ~6% of emails where it
# departs on one field to a plausible neighbour (high vs critical, neutral vs negative), plus a
# few chosen hard cases. So about 94% of emails get all three fields right, near the lesson's
# "90-95% correct routing"; routing itself depends only on urgency and sentiment, so it is right
# more often. A live run would give you your model's own numbers.

# %%
results = {json.loads(line)["id"]: json.loads(line) for line in (work / "virtual.jsonl").read_text().splitlines()}
truth = {e["id"]: e["label"] for e in emails}
for field in FIELDS:
    right = sum(results[i][field] == truth[i][field] for i in truth)
    print(f"{field:9} accuracy {right / len(truth):.1%}")


def queue(fields):
    return ref.route(Classification(**{k: fields[k] for k in FIELDS}, summary="-"))


from labkit.course.ex05 import Queue

routed = Counter((queue(truth[i]), queue(results[i])) for i in truth)
print(f"all three accuracy {sum(all(results[i][f] == truth[i][f] for f in truth[i]) for i in truth) / len(truth):.1%}")
print(f"routing   accuracy {sum(n for (a, b), n in routed.items() if a == b) / len(truth):.1%}")
print("critical emails that did not reach a human:", routed[(Queue.HUMAN, Queue.SENIOR)] + routed[(Queue.HUMAN, Queue.STANDARD)])
print("emails sent to a human that did not need one:", routed[(Queue.SENIOR, Queue.HUMAN)] + routed[(Queue.STANDARD, Queue.HUMAN)])

# %%
levels = ["low", "medium", "high", "critical"]
matrix = [[sum(truth[i]["urgency"] == t and results[i]["urgency"] == p for i in truth) for p in levels] for t in levels]
print("urgency confusion (rows: label, columns: model)")
print(" " * 9 + "".join(f"{p:>9}" for p in levels))
for t, row in zip(levels, matrix):
    print(f"{t:>9}" + "".join(f"{n:9d}" for n in row))
fig, ax = plt.subplots(figsize=(3.6, 3.2))
ax.imshow(matrix, cmap="Greens")
ax.set_xticks(range(4), levels), ax.set_yticks(range(4), levels)
ax.set_xlabel("model"), ax.set_ylabel("label"), ax.set_title("Urgency")
for r in range(4):
    for col in range(4):
        ax.text(col, r, matrix[r][col], ha="center", va="center", fontsize=8, color="white" if matrix[r][col] > 150 else "black")
plt.tight_layout()

# %% [markdown]
# The hard cases, label against answer. One prompt injection worked: it could only move its
# email to the human queue, because the classifier's output is data that selects a queue and
# nothing more. Keep it that way: never let a classification trigger actions (refunds, account
# changes) without a human or a rule in between.

# %%
for e in emails:
    if e["hard_case"]:
        got = results[e["id"]]
        diff = [f"{k}: {got[k]} (label {e['label'][k]})" for k in FIELDS if got[k] != e["label"][k]]
        print(f"{e['id']} {e['hard_case']:11} {'; '.join(diff) or 'matches the label'}")

# %% [markdown]
# ## What the batch costs: now, through the Batch API, or with Flex
#
# From each answer's `usage`, priced with the catalog by `labkit.costs.cost`. Nobody waits for
# an overnight triage run, so it need not be synchronous:
#
# * The **Batch API** runs the same requests within 24 hours at **50%** of the standard price,
#   in a rate-limit pool of its own (`tier="batch"` below).
# * **Flex processing** (`service_tier="flex"` on an ordinary request) bills at the Batch rates
#   with slower, best-effort answers. It is being wound down: it is not offered on the gpt-6.2
#   models and will not be added to new ones. The catalog says which model offers it.

# %%
from labkit.catalog import get_model
from labkit.course.models import ROLES

ok = [r for r in results.values() if r["status"] == "ok"]
tokens_in, tokens_out = sum(r["prompt_tokens"] for r in ok), sum(r["completion_tokens"] for r in ok)
print(f"{len(ok)} emails on {MODEL} at effort {EFFORT}: {tokens_in:,} input + {tokens_out:,} output tokens")
for tier in ("default", "batch", "flex"):
    total = sum(cost(r, r["model"], tier=tier).total_usd for r in ok)
    print(f"  {tier:8} ${total:.4f}  (${total / len(ok) * 1000:.4f} per 1,000 emails)")
print("\nflex offered:", ", ".join(f"{role} ({model}): {'yes' if get_model(model).flex else 'no'}" for role, model in ROLES.items()))

# %% [markdown]
# ## Your turn: exercise 05
#
# Open `exercises/ex05_batch.py`. The data, the `Classification` model, both request builders and
# the contract (from `labkit/course/ex05.py`), the records and the two baseline designs are
# given. Write `route`, `classify` (either API), `is_retryable`, `finished_ids` and
# `process_batch`. This cell runs your processor on 50 emails on the virtual clock:

# %%
ex05 = labkit.notebook.exercise("ex05")
try:
    mine = lab_client("ex05", latency=virtual_latency())
    path = work / "yours.jsonl"
    path.unlink(missing_ok=True)

    async def yours():
        loop = asyncio.get_running_loop()
        start = loop.time()
        counts = await ex05.process_batch(mine, emails[:50], path, concurrency=8, rpm=60_000, tpm=50_000_000, progress=False)
        return counts, loop.time() - start

    counts, elapsed = run_virtual(yours())
    print(counts, f"{50 / elapsed:.0f} emails/s of a possible {theoretical_rps(8, LATENCY_BASE):.0f}")
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# ## Where one process stops
#
# One asyncio process with a good limiter saturates a rate limit of a few hundred requests per
# second, and holds 1,000 emails in memory without effort. Two things push past it:
#
# * **Nobody is waiting.** The **Batch API** takes a JSONL file of requests, one per line:
#   `{"custom_id", "method": "POST", "url": "/v1/chat/completions" or "/v1/responses", "body": {...}}`,
#   where the body is what `parse` sends (the schema written out as a strict `json_schema`, as
#   printed above). Upload it with `client.files.create(purpose="batch")`, start it with
#   `client.batches.create(input_file_id=..., endpoint=..., completion_window="24h")`, poll
#   `client.batches.retrieve`, and read a results file keyed by `custom_id`. Your resume logic
#   carries over: `custom_id` plays the role of the email id.
# * **Many workers.** Several processes or machines each with their own limiter would together
#   exceed the account's limit. The bucket must then live in a shared store, typically **Redis**
#   (an atomic Lua script or `INCR` + `EXPIRE` per window; a get-then-set races), and the work
#   queue too (a Redis list or stream, so a crashed worker's emails are picked up by another).
#   The finished-ids set moves there as well. Notebook 06 runs this kind of shared state on a real Redis.

# %%
line = {"custom_id": email["id"], "method": "POST", "url": "/v1/chat/completions", "body": chat_wire}
print(json.dumps(line)[:200], "…")

# %% [markdown]
# **Recap:** classify on the fast model at the effort the task needs (here `none`), with
# Structured Outputs (a schema the API enforces, in either API), not `json.loads` on prose, and
# not JSON mode, which checks syntax only; keep routing a pure function; the lesson's `sleep`
# after each completed future paces results, not requests; a semaphore bounds concurrency and a
# token bucket bounds the rate, and together they set a theoretical limit you can measure
# against; isolate failures per item, retry only what can succeed, append results as they finish
# and resume from them; and when nobody waits, the Batch API halves the bill. Check your work
# (about two seconds):

# %%
labkit.check("ex05")
