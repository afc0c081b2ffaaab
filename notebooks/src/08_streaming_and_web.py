# %% [markdown]
# # 08 · Streaming and the web: a real-time endpoint, webhooks, a chat app and a live dashboard
#
# **What you will build:** the two production shapes of the lesson's Exercise 2 that notebook 05
# (batch) left out, plus the lesson's "pro technique", as one FastAPI app served by uvicorn on
# 127.0.0.1:
#
# * **streaming readers** for the Responses API's typed events and for Chat Completions chunks,
#   with the time to first token measured against the total;
# * the **real-time endpoint** of the lesson's Example 2 (marketing headlines), done properly:
#   validated input, Structured Outputs, a per-client rate limit, a timeout, honest statuses;
# * a **streaming endpoint** (server-sent events) with heartbeats, error events and an upstream
#   request that stops when the reader goes away;
# * the **webhook** of the lesson's Example 3 (a signup triggers a personalised onboarding email),
#   signed, idempotent, answered at once and delivered to a real SMTP server; and OpenAI's own
#   webhook for a `background=True` response;
# * a **chat application** over WebSockets with one conversation per connection, and a **live
#   dashboard** fed by the app's own request log, both opened in a real browser.

# %%
import labkit

labkit.notebook.intro("ex08")

# %% [markdown]
# ## 1. A stream is a sequence of typed events, in time
#
# With `stream=True` the API answers with server-sent events as the model writes. The Responses
# API sends **typed events**: `response.created` at once, then (after any hidden reasoning) one
# `response.output_text.delta` per few tokens, and finally `response.completed`, which carries the
# whole response and its `usage`. The recordings keep *when* each event arrives (derived from the
# course's latency model for this model and effort), and labkit plays them back at that pace. Here
# the pace runs on a virtual clock (`labkit.web.run_web_virtual`), so the times are exact and
# nothing waits for real:

# %%
import asyncio
from collections import Counter

from labkit.course.ex08 import QUESTION, answer_request
from labkit.streams import LoopPacer
from labkit.web import run_web_virtual, upstream_client


async def first_events(n: int = 6):
    client = upstream_client("ex08", pace=LoopPacer())
    loop = asyncio.get_running_loop()
    start, seen, kinds = loop.time(), [], Counter()
    stream = await client.responses.create(**answer_request(QUESTION), stream=True)
    async for event in stream:
        kinds[event.type] += 1
        if len(seen) < n:
            seen.append((round((loop.time() - start) * 1000), event.type))
    return seen, kinds


seen, kinds = run_web_virtual(first_events())
for ms, kind in seen:
    print(f"{ms:5d} ms  {kind}")
print("...\nevents by type:", dict(kinds))

# %% [markdown]
# The reader (`stream_responses` in `solutions/ex08_streaming_web.py`, which you write in the
# exercise) appends each `event.delta`, notes the time of the first one, and takes `usage` from
# `response.completed`. Chat Completions streams **chunks** instead: each has `choices[0].delta.content`,
# and usage arrives only if you ask for it with `stream_options={"include_usage": True}`, in a last
# chunk whose `choices` list is **empty**. The lesson's loop (`if chunk.choices[0].delta.content`)
# and seed 004's relay both index `choices[0]` unconditionally: ask for usage and they crash on that
# last chunk; don't ask and you cannot bill or monitor the stream. Both readers, on the same
# question, against the non-streamed answer:

# %%
ref = labkit.notebook.solution("ex08")
client = labkit.client("ex08")


async def both():
    loop = asyncio.get_running_loop()
    up = upstream_client("ex08", pace=LoopPacer())
    return (await ref.stream_responses(up, QUESTION, clock=loop.time),
            await ref.stream_chat(up, QUESTION, clock=loop.time))


by_events, by_chunks = run_web_virtual(both())
plain = client.responses.create(**answer_request(QUESTION)).output_text
print("Responses stream == non-streamed answer:", by_events.text == plain, f"({by_events.chunks} deltas)")
print("Chat stream      == non-streamed answer:", by_chunks.text == plain, f"({by_chunks.chunks} chunks with text)")
print("usage from the final event:", by_events.usage, "|", by_chunks.usage)
print()
print(plain)

# %% [markdown]
# ### Time to first token is what a person feels
#
# Streaming does not make the answer arrive sooner: the last token comes when it would have come
# anyway. It makes the *first* token visible early. How early depends on the model and the effort:
# a reasoning model thinks (hidden reasoning tokens) before its first visible token, so its stream
# opens with seconds of silence. The same question on three set-ups, from the recordings' timing:

# %%
import matplotlib.pyplot as plt

from labkit.course.ex08 import DEEP_MODEL, LATENCY_SETUPS, setup_request

DEEP_QUESTION = "What slows a sprint down after new people join?"


async def timings():
    loop = asyncio.get_running_loop()
    up = upstream_client("ex08", pace=LoopPacer())
    rows = []
    for name, model, effort in LATENCY_SETUPS:
        start, first = loop.time(), None
        stream = await up.responses.create(**setup_request(model, effort, DEEP_QUESTION if model == DEEP_MODEL else QUESTION))
        async for event in stream:
            if event.type == "response.output_text.delta" and first is None:
                first = loop.time() - start
            if event.type == "response.completed":
                reasoning = event.response.usage.output_tokens_details.reasoning_tokens
        rows.append((name, first, loop.time() - start, reasoning))
    return rows


rows = run_web_virtual(timings())
for name, first, total, reasoning in rows:
    print(f"{name:30} first token {first:6.2f} s   last {total:6.2f} s   ({reasoning} reasoning tokens)")
fig, ax = plt.subplots(figsize=(7.5, 2.4))
labels = [r[0] for r in rows]
ax.barh(labels, [r[2] for r in rows], color="#c9d6ee", label="whole answer")
ax.barh(labels, [r[1] for r in rows], color="#2f6fdf", label="until the first token")
ax.invert_yaxis()
ax.set_xlabel("seconds after the request (recorded timing)")
ax.legend(loc="center right", fontsize=8)
plt.tight_layout()

# %% [markdown]
# ### A stream can fail halfway
#
# The status line said 200 long ago, so a failure midway cannot be an HTTP error. The Responses API
# sends an `error` event or a `response.failed` event; in Chat Completions the SDK raises
# `openai.APIError` from inside your `for` loop. A reader keeps what arrived and says what happened
# instead of crashing:

# %%
from labkit.course.ex08 import FAILING_QUESTIONS


async def failing():
    loop = asyncio.get_running_loop()
    up = upstream_client("ex08", pace=LoopPacer())
    return [await ref.stream_responses(up, FAILING_QUESTIONS["error"], clock=loop.time),
            await ref.stream_responses(up, FAILING_QUESTIONS["response.failed"], clock=loop.time),
            await ref.stream_chat(up, FAILING_QUESTIONS["chat"], clock=loop.time)]


for got in run_web_virtual(failing()):
    print(f"{len(got.text)} characters kept, usage {got.usage}, error: {got.error}")

# %% [markdown]
# ### Stop the upstream when nobody reads
#
# If the person closes the tab, the model keeps writing (and billing) until you close the stream.
# `async with stream:` (or `await stream.close()`) closes the HTTP response, and the API stops. The
# replay transport's ledger counts answers still being delivered:

# %%
async def stop_early():
    up = upstream_client("ex08", pace=LoopPacer())
    stream = await up.responses.create(**answer_request(QUESTION), stream=True)
    async with stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                break  # the reader went away
    return labkit.transport_of(up).ledger


ledger = run_web_virtual(stop_early())
print(f"streams started {ledger.opened}, read to the end {ledger.finished}, closed early {ledger.closed_early}, still open {ledger.in_flight}")

# %% [markdown]
# ## 2. The real-time endpoint (the lesson's Example 2), done properly
#
# The lesson's endpoint is a Flask route that calls a small GPT-5 model at `temperature=0.9` with
# `max_tokens=100`, splits the reply on newlines to get "headlines", answers every failure with
# a 500, and runs with `debug=True`. Four things are wrong before it sees traffic: the request
# itself is rejected by today's API (GPT-5 models are reasoning models: no temperature, no
# `max_tokens`), `split('\n')` turns a preamble or a blank line into a "headline", a blanket 500
# tells the caller nothing (was it their input? should they retry?), and Flask's debugger shows
# tracebacks, and with them your code and settings, to anyone.

# %%
import openai

from labkit.course.ex08 import PRODUCTS, lesson_headline_request

request = lesson_headline_request(PRODUCTS[0])
for finding in labkit.lint_request(**request):
    if finding.severity == "error":
        print(finding.code, "->", finding.message[:100])
try:
    client.chat.completions.create(**request)
except openai.BadRequestError as err:
    print("\n400 from the API:", err.body["message"])

# %% [markdown]
# The course's version is part of one FastAPI app, `create_app(client, mailer=...)` in the
# exercise. `POST /api/headlines` takes a pydantic model as its body, so a missing, blank or
# overlong field gets a **422 that names the field** before any model call; calls
# `responses.parse(text_format=Headlines)` so the headlines are a **list the API guarantees**;
# uses the client **with a 20 s timeout** (the SDK's default is 600 s); allows each client
# (`X-Client-Id`) **5 requests a minute**, then 429 with `Retry-After`; and maps upstream failures
# to statuses the caller can act on. Here it runs on uvicorn at 127.0.0.1, answering from the
# recordings at a quarter of their real pace:

# %%
import contextlib

import httpx2

from labkit.course.ex08 import CUSTOMERS, SIGNUP_SECRET, OPENAI_WEBHOOK_SECRET
from labkit.web import RequestLog, SmtpMailer, SmtpSink, serve

stack = contextlib.ExitStack()
sink = stack.enter_context(SmtpSink())
upstream = upstream_client("ex08", pace=LoopPacer(0.25), max_retries=0)
log = RequestLog()
app = ref.create_app(upstream, mailer=SmtpMailer(port=sink.port), log=log)
base = stack.enter_context(serve(app))
http = httpx2.Client(base_url=base, timeout=30)

got = http.post("/api/headlines", json=PRODUCTS[0], headers={"x-client-id": "notebook"})
print(got.status_code, got.json())
got = http.post("/api/headlines", json={"product_name": "TaskFlow Pro", "key_benefit": "   "}, headers={"x-client-id": "notebook"})
print(got.status_code, [(e["loc"][-1], e["msg"]) for e in got.json()["detail"]])

# %% [markdown]
# Form fields are data. The recorded products include quotes, SQL, markup, other scripts and a
# prompt injection; the system prompt fences them in `<product>` tags and says never to follow
# instructions inside them, and Structured Outputs keeps the answer to three strings whatever the
# form says:

# %%
for i, product in enumerate(PRODUCTS[3:]):
    got = http.post("/api/headlines", json=product, headers={"x-client-id": f"form-{i}"})
    print(got.status_code, product["product_name"][:40], "->", got.json()["headlines"][0])

# %% [markdown]
# The rate limit is a sliding window per client, read from the app's clock; the sixth request in
# a minute is refused before it costs anything, and says when to come back:

# %%
for i in range(6):
    got = http.post("/api/headlines", json=PRODUCTS[1], headers={"x-client-id": "eager-client"})
print("6th request:", got.status_code, "Retry-After:", "present" if got.headers.get("retry-after", "").isdigit() else "missing")
print("another client:", http.post("/api/headlines", json=PRODUCTS[2], headers={"x-client-id": "calm-client"}).status_code)

# %% [markdown]
# **Honest statuses.** When the model call fails, the caller should learn whose problem it is and
# whether to retry, and nothing else: a 504 when the API did not answer in time, a 503 with
# `Retry-After` when the API is rate-limiting or overloaded (come back later), a 502 for any other
# upstream failure. Never a 500 (that means *our* code broke), and never the exception's text,
# which carries the API's message and sometimes request details:

# %%
request = httpx2.Request("POST", "https://api.openai.com/v1/responses")


def failure(status, **headers):
    return httpx2.Response(status, headers=headers, request=request)


cases = {
    "timeout": openai.APITimeoutError(request=request),
    "connection reset": openai.APIConnectionError(request=request),
    "429 retry-after 7": openai.RateLimitError("rate limited", response=failure(429, **{"retry-after": "7"}), body=None),
    "503 overloaded": openai.InternalServerError("overloaded", response=failure(503), body=None),
    "500 server error": openai.InternalServerError("boom", response=failure(500), body=None),
    "401 bad key": openai.AuthenticationError("bad key", response=failure(401), body=None),
}
for what, err in cases.items():
    print(f"{what:18} -> {ref.upstream_status(err)}")

# %% [markdown]
# ## 3. The streaming endpoint: server-sent events (seed 004)
#
# Seed 004's `/chat/stream` wraps a **synchronous** client in a generator (it blocks the server's
# event loop for every other user while it waits), writes each delta raw after `data:` (a newline
# in the answer breaks the event), sends no usage, no heartbeat and no error, and its comment
# suggests `EventSource`, which can only send GET requests to a POST route. Ours relays the
# Responses stream as `event: delta` / `data: {"text": ...}` JSON, then `usage` and `done`; reads
# it with a streaming HTTP client (`fetch` with a reader in a browser):

# %%
from labkit.course.ex08 import RELAY_MESSAGES
from labkit.web import parse_sse

with http.stream("POST", "/api/chat/stream", json={"message": RELAY_MESSAGES["short"]}) as answer:
    print(answer.status_code, answer.headers["content-type"])
    events = parse_sse(answer.read().decode())
for name, data in events[:3] + events[-2:]:
    print(f"event: {name:6} data: {data}")

# %% [markdown]
# **Heartbeats.** The "think harder" option (`deep: true`) uses the reasoning model at high effort:
# ten seconds pass before its first token. Proxies and load balancers close connections that stay
# silent (often after 30 to 60 s), and a person stares at nothing, so the relay sends a comment
# line (`: ping`, ignored by every SSE parser) after each 5 s of silence. The relay must not cancel
# the read it is waiting on to send one: it waits on a pending task with `asyncio.wait(timeout=...)`.
# The same request through the app in-process, on the virtual clock:

# %%
from labkit.web import AsgiClient, MemoryMailer


async def deep_answer():
    loop = asyncio.get_running_loop()
    up = upstream_client("ex08", pace=LoopPacer())
    async with AsgiClient(ref.create_app(up, mailer=MemoryMailer(), clock=loop.time)) as web:
        return await web.request("POST", "/api/chat/stream", json_body={"message": RELAY_MESSAGES["deep"], "deep": True})


deep = run_web_virtual(deep_answer())
timeline = [(round(at - deep.sent_at, 2), name) for at, name, _ in deep.events()]
print(timeline[:4], "...", timeline[-2:])

# %% [markdown]
# **A reader who leaves.** When the client hangs up, uvicorn tells the app, Starlette cancels the
# response, and the relay's `finally:` closes the upstream request, so the model stops writing. On
# the real server: read three deltas, hang up, and count the upstream streams still open:

# %%
import time

ledger = labkit.transport_of(upstream).ledger
before = (ledger.finished, ledger.closed_early)
with http.stream("POST", "/api/chat/stream", json={"message": RELAY_MESSAGES["long"]}) as answer:
    deltas = 0
    for line in answer.iter_lines():
        deltas += line.startswith("event: delta")
        if deltas == 3:
            break
deadline = time.monotonic() + 5
while ledger.in_flight and time.monotonic() < deadline:
    time.sleep(0.02)
print(f"upstream streams still open: {ledger.in_flight}; closed early since: {ledger.closed_early - before[1]}; "
      f"read to the end since: {ledger.finished - before[0]}")

# %% [markdown]
# ## 4. Webhooks (the lesson's Example 3)
#
# The lesson's webhook route trusts any POST, writes the email *before* answering (the sender
# waits for the model, times out and retries, and the customer gets two emails), and has no answer
# for a repeated delivery. A webhook receiver must:
#
# 1. **verify the signature**: here the Standard Webhooks scheme, which OpenAI uses for its own
#    webhooks and the SDK implements: `client.webhooks.verify_signature(body, headers, secret=...)`
#    checks an HMAC-SHA256 of `webhook-id.webhook-timestamp.body` and rejects timestamps more than
#    5 minutes off (replays);
# 2. **process each `webhook-id` at most once** (senders retry; at-least-once delivery is the norm);
# 3. **answer within a deadline** (202 at once) and do the slow work in the background.
#
# The onboarding email goes to a real SMTP server on 127.0.0.1 (aiosmtpd), which keeps what it
# receives:

# %%
import json

from labkit.course.ex08 import onboarding_subject, signup_event
from labkit.web import sign_webhook

customer = CUSTOMERS[0]
body = json.dumps(signup_event(customer))
headers = sign_webhook(body, SIGNUP_SECRET, msg_id="msg_signup_0001")
print("signed with the headers:", ", ".join(headers))

first = http.post("/webhooks/signup", content=body, headers=headers)
again = http.post("/webhooks/signup", content=body, headers=headers)
forged = http.post("/webhooks/signup", content=body, headers=sign_webhook(body, "whsec_" + "QUJD" * 11, msg_id="msg_x"))
stale = http.post("/webhooks/signup", content=body,
                  headers=sign_webhook(body, SIGNUP_SECRET, msg_id="msg_y", timestamp=int(time.time()) - 600))
print("first:", first.status_code, first.json(), "| again:", again.status_code, again.json())
print("forged:", forged.status_code, "| ten minutes old:", stale.status_code)

mail = sink.wait_for(1)[0]
print(f"\nFrom: {mail['From']}\nTo: {mail['To']}\nSubject: {mail['Subject']}\n")
print(mail.get_content())

# %% [markdown]
# ### OpenAI's own webhooks: a background response
#
# Some jobs are too slow for a request: a long report on the reasoning model at high effort.
# `responses.create(background=True)` answers at once with `status: "queued"`; when the work is
# done, OpenAI calls the webhook endpoint you registered (dashboard, or `client.webhooks.create`)
# with a signed `response.completed` event that carries only the response's id. The app verifies
# it with `client.webhooks.unwrap(...)` (the same scheme, OpenAI's secret), then retrieves the
# response. Here OpenAI's delivery is played by signing the event with the course's secret:

# %%
from labkit.course.ex08 import BACKGROUND_PROMPT

job = http.post("/api/background", json={"prompt": BACKGROUND_PROMPT}).json()
print("started:", job["status"], "| now:", http.get(f"/api/background/{job['id']}").json()["status"])
event = json.dumps({"id": "evt_0001", "object": "event", "created_at": 1796370000, "type": "response.completed",
                    "data": {"id": job["id"]}})
hook = http.post("/webhooks/openai", content=event, headers=sign_webhook(event, OPENAI_WEBHOOK_SECRET, msg_id="wh_0001"))
print("webhook:", hook.status_code, hook.json())
deadline = time.monotonic() + 10
while http.get(f"/api/background/{job['id']}").json()["status"] != "completed" and time.monotonic() < deadline:
    time.sleep(0.25)
result = http.get(f"/api/background/{job['id']}").json()
print("then:", result["status"], "|", result["text"].splitlines()[0])

# %% [markdown]
# ## 5. The chat application (seed 002, Exercise 3)
#
# Seed 002's chat keeps connections in a list (`remove` raises when a socket disconnects twice),
# answers in one piece, keeps no history, and connects to `ws://localhost:8000` whatever host
# served the page. Ours gives each WebSocket its own **conversation at OpenAI**
# (`client.conversations.create()`, then `responses.create(conversation=...)`: the API keeps the
# turns; `previous_response_id` works too), streams each answer as `delta` messages, and closes
# the upstream stream when the socket goes away. A client in Python first:

# %%
from websockets.sync.client import connect

from labkit.course.ex08 import CHAT_SCRIPT

with connect(base.replace("http://", "ws://") + "/ws/chat") as ws:
    for message in CHAT_SCRIPT:
        ws.send(json.dumps({"message": message}))
        parts = []
        while True:
            reply = json.loads(ws.recv(timeout=30))
            if reply["type"] != "delta":
                break
            parts.append(reply["text"])
        print(f"you: {message}\nassistant ({len(parts)} deltas): {''.join(parts)}\n")

# %% [markdown]
# The page at `/` (`labkit/web_pages/chat.html`: plain HTML, CSS and JavaScript, nothing fetched
# from anywhere else) is the same chat for a person. Headless Chromium opens it, types, and
# waits for the answer to finish streaming (a screenshot; your browser shows the same at the
# address the server runs on):

# %%
# NBVAL_IGNORE_OUTPUT
import tempfile
from pathlib import Path

from IPython.display import Image, display

from labkit.web import screenshot

shots = Path(tempfile.mkdtemp(prefix="labkit-08-"))


def chat_steps(page):
    page.wait_for_selector("#status.on")
    page.fill("#message", CHAT_SCRIPT[0])
    page.click("#send")
    page.wait_for_selector(".meta", timeout=30_000)


made = screenshot(base + "/", shots / "chat.png", steps=chat_steps, size=(900, 480))
display(Image(filename=made) if made else "Chromium is not installed here (apt-get install -y chromium): no screenshot.")

# %% [markdown]
# ## 6. The live dashboard (seed 002, Exercise 4)
#
# Seed 002's monitoring keeps a list of metrics *objects* in the client and reports an average
# response time. Averages hide the slow tail, and counters kept apart from the requests drift
# from what the server really answered. Here a middleware writes one entry per HTTP request to
# the app's request log (status, latency to the last byte, time to first token, model, tokens,
# cost from `usage` at catalog prices), and `GET /api/metrics` summarises the last minute of it
# with `summarize`: requests per minute, latency p50 and p95, time to first token, error rate by
# status, tokens and cost by model. The page at `/dashboard` polls it every second. Over the
# whole hour (so that this notebook's output does not depend on how fast it ran), what this
# session's POST requests add up to:

# %%
print("the endpoint's figures:", ", ".join(http.get("/api/metrics").json()))
posts = [entry for entry in log.entries if entry.method == "POST"]  # not the page's polling
metrics = ref.summarize(posts, time.monotonic(), window_s=3600)
print("requests:", metrics["requests"], "| by status:", dict(sorted(metrics["status"].items())))
print("error rates:", {k: round(v, 3) for k, v in metrics["error_rate"].items()})
for model, row in metrics["models"].items():
    print(f"{model:14} {row['requests']:2d} requests  {row['input_tokens']:5d} in  {row['output_tokens']:5d} out  ${row['cost_usd']:.6f}")

# %%
# NBVAL_IGNORE_OUTPUT
def dashboard_steps(page):
    page.wait_for_function("Number(document.body.dataset.updates || 0) >= 3", timeout=10_000)


made = screenshot(base + "/dashboard?every=300", shots / "dashboard.png", steps=dashboard_steps, size=(1100, 560))
display(Image(filename=made) if made else "Chromium is not installed here (apt-get install -y chromium): no screenshot.")

# %%
http.close()
stack.close()  # stops uvicorn and the SMTP server

# %% [markdown]
# ## Your turn: exercise 08
#
# Open `exercises/ex08_streaming_web.py`. The requests, schemas and the contract are in
# `labkit/course/ex08.py`; the serving pieces (request log, SSE frames, pages, mailers) in
# `labkit/web.py`. Write the streaming readers, the headline endpoint's pieces (body model,
# status mapping, rate limit), the relay, the webhook pieces, the chat and `summarize`. This cell
# runs your readers on the virtual clock:

# %%
ex08 = labkit.notebook.exercise("ex08")


async def yours():
    loop = asyncio.get_running_loop()
    return await ex08.stream_responses(upstream_client("ex08", pace=LoopPacer()), QUESTION, clock=loop.time)


try:
    mine = run_web_virtual(yours())
    print(f"{len(mine.text)} characters, first token after {mine.first_token_s} s, usage {mine.usage}")
except NotImplementedError as todo:
    print("Still to do:", todo)

# %% [markdown]
# **Recap:** stream for people, not for programs; read the Responses API's typed events (and ask
# Chat Completions for `include_usage`, then mind the empty last chunk); measure time to first
# token, which is what streaming improves, against total time, which it does not; a stream can
# fail after its 200, so handle error events; close the upstream when the reader leaves. An
# endpoint validates before it spends (422 naming the field), uses Structured Outputs instead of
# splitting text, limits each client, sets a timeout, and answers failures with 502, 503 or 504
# and words of its own. A webhook verifies its signature, processes each id once and answers
# before the slow work. A chat keeps its conversation at the API and streams; a dashboard reads
# the app's own request log. Check your work (about two seconds):

# %%
labkit.check("ex08")
