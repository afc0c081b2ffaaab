# %% [markdown]
# # 05 · Batch and async: 1,000 customer emails, classified and routed
#
# **What you will build:** a batch processor that classifies 1,000 customer emails (sentiment,
# urgency, category, one-line summary) with Structured Outputs, routes each one (critical to a
# human, negative to senior support, the rest to the standard queue), and does it as fast as the
# rate limit allows: `AsyncOpenAI`, a concurrency limit, a token-bucket rate limiter, per-email
# error isolation, retries of retryable failures only, and a JSONL results file that lets a
# crashed run resume. You will measure three designs (sequential, the lesson's thread pool, and
# yours) against the theoretical limit, then score the answers against ground-truth labels.

# %%
import labkit

labkit.notebook.intro("ex05")

# %% [markdown]
# ## The inbox
#
# `data/emails.jsonl` holds 1,000 synthetic emails to a project-management SaaS, made by a seeded
# generator (`data/make_emails.py`), each with ground-truth labels. A few are deliberately hard:
# empty, very long (pasted logs, a two-year invoice dispute), not in English, and three that try
# to give the classifier orders (prompt injection).
#
# The lesson's content (the emails, the classification schema, the routing rules, the prompts
# and the requests) is in `labkit/course/ex05.py`, where the exercise, the recordings and the
# checks read it too. The reference code for this notebook is the exercise's solution; the last
# section runs yours.

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
# ## The lesson's request, and why it fails
#
# The lesson classifies each email with `gpt-5-mini`, `temperature=0.2` and `max_tokens=150`, asks
# for JSON in the prompt, and reads the reply with `json.loads`. Two problems before any code
# runs: GPT-5 models are reasoning models that reject `temperature` and `max_tokens` (the linter
# says so), and the real API answers this request with a 400:

# %%
import openai

from labkit.course.ex05 import LESSON_SYSTEM, demo_email, lesson_request

client = labkit.client("ex05")
email = demo_email(emails)  # a customer charged twice
print(LESSON_SYSTEM, end="\n\n")
request = lesson_request(email)
print({k: v for k, v in request.items() if k != "messages"}, end="\n\n")

for finding in labkit.lint_request(**request):
    print(finding.code, "->", finding.message[:110], "…")
try:
    client.chat.completions.create(**request)
except openai.BadRequestError as err:
    print("\n400 from the API:", err.body["message"])
    print(labkit.provenance(client))

# %% [markdown]
# On a sampling model the request goes through, but **free text is not data**. Asked for JSON in
# the prompt, models often wrap it in prose or a code fence, and `json.loads` fails on the whole
# batch's worth of such replies:

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
# **JSON mode** (`response_format={"type": "json_object"}`) guarantees the *syntax*, not your
# *schema*: the reply below is valid JSON, but "urgent" is not one of your urgencies and
# "Billing" is not one of your categories, so the router would quietly send it nowhere.

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
# ## Structured Outputs: the schema is the contract
#
# With `client.chat.completions.parse(response_format=Classification)` the SDK turns a pydantic
# model into a **strict JSON schema**; the API then constrains the model's output to it, and the
# SDK parses the reply back into the model. Enums make "urgent" impossible rather than unlikely.
# The request (`request_for` in `labkit/course/ex05.py`, given to you in the exercise) also
# fences the email in `<email>` tags and tells the model it is data, not instructions, which is
# the first defence against prompt injection. This is what goes over the wire:

# %%
from labkit.replay import load_cassette, resolve_cassette

wire = load_cassette(resolve_cassette("ex05")).interactions[0].body
print("response_format:", json.dumps(wire["response_format"])[:400], "…")
print("temperature:", wire["temperature"], "| max_completion_tokens:", wire["max_completion_tokens"])

# %%
from labkit.course.ex05 import request_for

completion = client.chat.completions.parse(**request_for(email))
c = completion.choices[0].message.parsed
print(repr(c))
print("route:", ref.route(c))
print(labkit.provenance(client))

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
# (the real API takes several hundred ms for this call: the ratios below hold, the wall times
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
# future, commented "10 requests/second". But every email was already submitted to the pool, so
# the five workers send requests as fast as they can (5 / 30 ms ≈ 166/s): the sleep does not
# limit the request rate at all. It only delays collecting results, so the batch takes
# 0.1 s × N however fast the API is. It is both too slow and unprotected against rate limits.

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
# tokens plus the `max_completion_tokens` it asks for.
#
# The SDK's own retries are off (`max_retries=0`) so that there is exactly one retry layer, ours:
# retry only what can succeed next time (429, timeouts, dropped connections, 5xx), after the
# server's `Retry-After` when it sends one, and never a 400. Each email's outcome is appended to a
# JSONL file the moment it is known, so a crash loses nothing that finished. In real time, with a
# progress bar: 300 emails, concurrency 8 (8 / 30 ms ≈ 266/s) and 6,000 rpm, so the rate limit
# sets the theoretical limit at 100/s:

# %%
# NBVAL_IGNORE_OUTPUT
import tempfile
from pathlib import Path

from labkit.ratelimit import lab_client

work = Path(tempfile.mkdtemp())
aclient = lab_client("ex05", latency=LATENCY)
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
# All 1,000 emails under the checks' latency model and limits (`virtual_latency()` and
# `FULL_RUN` in `labkit/course/ex05.py`):

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
vclient = lab_client("ex05", latency=virtual_latency())
counts, elapsed = run_virtual(timed(vclient, emails, work / "virtual.jsonl", **FULL_RUN))
limit = theoretical_rps(FULL_RUN["concurrency"], LATENCY_BASE, FULL_RUN["rpm"])
print(counts, f"{elapsed:.3f} virtual s -> {1000 / elapsed:.1f} emails/s = {1000 / elapsed / limit:.1%} of {limit:.0f}/s")
print("peak in flight:", vclient._labkit_transport.max_in_flight)

# %% [markdown]
# ### Does the rate limit hold in every window?
#
# From the attempt timestamps we can find the busiest window of any length. At 6,000 rpm
# (100/s) with room for 32 in flight, 300 emails: no 1-second window may start more than the
# rate plus the small burst.

# %%
vclient = lab_client("ex05", latency=virtual_latency())
counts, elapsed = run_virtual(timed(vclient, emails[:300], work / "rpm.jsonl", concurrency=32, rpm=6_000, tpm=50_000_000))
starts = [a.at for a in vclient._labkit_transport.attempts]
for w in (0.1, 0.5, 1.0, 2.0):
    print(f"busiest {w:>3} s window: {window_peak(starts, w):4.0f} requests (rate x window = {100 * w:4.0f})")
print(f"{len(starts)} requests in {elapsed:.2f} s = {len(starts) / elapsed:.1f}/s")

# %% [markdown]
# ## When emails fail
#
# A batch of 1,000 will meet failures. Here three emails meet scripted faults (`labkit.faults`
# steps, per email; `FAULTS` in `labkit/course/ex05.py`, the same the retries check uses): a 429
# that says how long to wait, a 400 that no retry can fix, and a timeout followed by a 503.
# The batch carries on; each failure stays with its email.

# %%
from labkit.course.ex05 import FAULTS, faults_for

batch = emails[:30]
for name, (position, steps) in FAULTS.items():
    print(f"{batch[position]['id']} ({name}): {' -> '.join(steps)}")
vclient = lab_client("ex05", latency=virtual_latency(), per_item=faults_for(batch))
counts, elapsed = run_virtual(timed(vclient, batch, work / "faults.jsonl", concurrency=4, rpm=60_000, tpm=50_000_000))
print(counts)
for item in sorted((json.loads(line) for line in (work / "faults.jsonl").read_text().splitlines()), key=lambda i: i["id"]):
    if item["attempts"] > 1 or item["status"] != "ok":
        print(f"{item['id']}: {item['status']:5} after {item['attempts']} attempt(s)  {item.get('error', '')[:70]}")

# %% [markdown]
# ## Crash and resume
#
# Now the process dies mid-batch (`crash_after=25` raises a `BaseException` from the 26th
# request, like a kill or an out-of-memory error: no `except Exception` catches it). The lines
# already appended survive; a second run reads them, skips those emails and sends only the rest.

# %%
from labkit.ratelimit import Crash

path = work / "crash.jsonl"
batch = emails[:100]
crashing = lab_client("ex05", latency=virtual_latency(), crash_after=25)
try:
    run_virtual(timed(crashing, batch, path, concurrency=8, rpm=60_000, tpm=50_000_000))
except Crash as err:
    print("crashed:", err)
print("finished before the crash:", len(ref.finished_ids(path)))
resumed = lab_client("ex05", latency=virtual_latency())
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
# ### What the batch costs
#
# From each answer's `usage`, priced with the catalog. The same requests through the
# **Batch API** cost half (see the end of the notebook).

# %%
from labkit.costs import cost

ok = [r for r in results.values() if r["status"] == "ok"]
total = sum(cost(r, r["model"]).total_usd for r in ok)
batch_total = sum(cost(r, r["model"], batch=True).total_usd for r in ok)
tokens_in, tokens_out = sum(r["prompt_tokens"] for r in ok), sum(r["completion_tokens"] for r in ok)
print(f"{len(ok)} emails, {tokens_in:,} input + {tokens_out:,} output tokens")
print(f"synchronous: ${total:.4f}  (${total / len(ok):.6f} per email)")
print(f"Batch API:   ${batch_total:.4f}")

# %% [markdown]
# ## Your turn: exercise 05
#
# Open `exercises/ex05_batch.py`. The data, the `Classification` model and `request_for` (from
# `labkit/course/ex05.py`), the records and the two baseline designs are given. Write `route`, `classify`, `is_retryable`,
# `finished_ids` and `process_batch`. This cell runs your processor on 50 emails on the
# virtual clock:

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
# * **Nobody is waiting.** For overnight jobs, the **Batch API** takes a JSONL file of requests
#   (each line `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`:
#   the bodies `request_for` builds, with the schema written out as a `json_schema`
#   response_format), runs them within 24 hours at **50% off**, under its own
#   much larger limits, and returns a results file keyed by `custom_id`: upload with
#   `client.files.create(purpose="batch")`, start with `client.batches.create(input_file_id=...,
#   endpoint="/v1/chat/completions", completion_window="24h")`, poll `client.batches.retrieve`.
#   Your resume logic carries over: `custom_id` plays the role of the email id.
# * **Many workers.** Several processes or machines each with their own limiter would together
#   exceed the account's limit. The bucket must then live in a shared store, typically **Redis**
#   (an atomic Lua script or `INCR` + `EXPIRE` per window; a get-then-set races), and the work
#   queue too (a Redis list or stream, so a crashed worker's emails are picked up by another).
#   The finished-ids set moves there as well. Notebook 06 runs this kind of shared state on a real Redis.
#
# **Recap:** classify with Structured Outputs (a schema the API enforces), not `json.loads` on
# prose; keep routing a pure function; the lesson's `sleep` after each completed future paces
# results, not requests; a semaphore bounds concurrency and a token bucket bounds the rate, and
# together they set a theoretical limit you can measure against; isolate failures per item,
# retry only what can succeed, append results as they finish and resume from them. Check your
# work (about five seconds):

# %%
labkit.check("ex05")
