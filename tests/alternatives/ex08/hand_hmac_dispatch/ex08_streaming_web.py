"""Exercise 08, an alternative: handler tables for stream events, hand-written Standard Webhooks HMAC,
constr fields, a list-filter limiter, an id->state dict for webhooks, explicit-loop metrics.

Exercise 08: streaming, a real-time endpoint, an SSE relay, webhooks, a chat app and a dashboard.

One FastAPI app, ``create_app(client, mailer=...)``, holds the lesson's production shapes: the
real-time headline endpoint (the lesson's Example 2), the signup webhook that sends a personalised
onboarding email (Example 3), OpenAI's own webhook for a background response, a streaming
endpoint (server-sent events), a WebSocket chat with one conversation per connection, and a live
dashboard fed by the app's own request log. You also write two streaming readers. Edit the TODOs
(everything else is given), then run `labkit check ex08` or the last cell of
notebooks/08_streaming_and_web.ipynb.

The requests, schemas and the contract the checks test are in labkit/course/ex08.py (read its
docstring: statuses, limits, event names); the serving pieces (the request log, SSE frames, the
pages, the mailers) are in labkit/web.py. Code that reads the time uses the ``clock`` it is given
(the checks pass a virtual one, so a 60-second rate-limit window costs no real time); wait with
``asyncio.sleep`` / ``asyncio.wait``, never ``time.sleep``.
"""


import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import openai
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError, constr

from labkit.course.ex08 import (  # noqa: F401 - the lesson's requests, schemas and contract, given
    CONTRACT,
    FIELD_LIMITS,
    OPENAI_WEBHOOK_SECRET,
    SIGNUP_SECRET,
    BackgroundRequest,
    ChatStreamRequest,
    Customer,
    Headlines,
    SignupEvent,
    Streamed,
    answer_request,
    background_request,
    chat_turn_request,
    headline_request,
    onboarding_request,
    onboarding_subject,
    stream_request,
)
from labkit.web import HEARTBEAT, Mailer, RequestLog, client_key, log_requests, note_usage, page, percentile, sse

Clock = Callable[[], float]


def verify_standard_webhook(raw: bytes, headers: Any, secret: str, tolerance_s: int = CONTRACT.webhook_tolerance_s) -> None:
    """Check a Standard Webhooks signature by hand (HMAC-SHA256 of "id.timestamp.body"); ValueError if it is not good."""
    msg_id, stamp, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise ValueError("missing webhook headers")
    try:
        sent_at = int(stamp)
    except ValueError as err:
        raise ValueError("bad timestamp") from err
    if abs(time.time() - sent_at) > tolerance_s:
        raise ValueError("timestamp outside the tolerance")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{sent_at}.".encode() + raw, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise ValueError("no matching signature")


# --------------------------------------------------------------------------- 1. streaming


def usage_dict(usage: Any) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "total_tokens"}`` from either API's usage object."""
    given = int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0)
    made = int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


async def stream_responses(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the answer to ``question`` with the Responses API; read its typed events into a Streamed."""
    result = Streamed()
    t0 = clock()

    def on_delta(event: Any) -> None:
        if result.first_token_s is None:
            result.first_token_s = clock() - t0
        result.text += event.delta
        result.chunks += 1

    def on_completed(event: Any) -> None:
        result.usage = usage_dict(event.response.usage)

    def on_error(event: Any) -> None:
        result.error = f"error {event.code}: {event.message}"

    def on_failed(event: Any) -> None:
        problem = event.response.error
        result.error = f"failed {problem.code if problem else 'unknown'}"

    handlers: dict[str, Callable[[Any], None]] = {
        "response.output_text.delta": on_delta, "response.completed": on_completed,
        "error": on_error, "response.failed": on_failed,
    }
    events = await client.responses.create(**answer_request(question), stream=True)
    async with events:
        async for event in events:
            handlers.get(event.type, lambda _e: None)(event)
    result.total_s = clock() - t0
    return result


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the same answer with Chat Completions; read its chunks into a Streamed."""
    t0 = clock()
    pieces: list[str] = []
    first: float | None = None
    usage: dict[str, int] | None = None
    error: str | None = None
    chunks = await client.chat.completions.create(**answer_request(question, "chat"), stream=True,
                                                  stream_options={"include_usage": True})
    async with chunks:
        iterator = chunks.__aiter__()
        while True:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                break
            except openai.APIError as problem:
                error = f"chat stream stopped ({problem.code})"
                break
            if chunk.choices and chunk.choices[0].delta.content:
                if first is None:
                    first = clock() - t0
                pieces.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = usage_dict(chunk.usage)
    return Streamed(text="".join(pieces), chunks=len(pieces), usage=usage, first_token_s=first, total_s=clock() - t0, error=error)


# --------------------------------------------------------------------------- 2. the real-time endpoint


class HeadlineRequest(BaseModel):
    """The body of POST /api/headlines: three fields, each non-blank and at most FIELD_LIMITS[name] characters."""

    product_name: constr(strip_whitespace=True, min_length=1, max_length=FIELD_LIMITS["product_name"])  # type: ignore[valid-type]
    key_benefit: constr(strip_whitespace=True, min_length=1, max_length=FIELD_LIMITS["key_benefit"])  # type: ignore[valid-type]
    target_audience: constr(strip_whitespace=True, min_length=1, max_length=FIELD_LIMITS["target_audience"])  # type: ignore[valid-type]


def retry_after_of(err: openai.APIStatusError) -> int:
    """Whole seconds the API asked us to wait (``retry-after-ms`` or ``retry-after``), else the contract's default."""
    headers = err.response.headers
    try:
        if "retry-after-ms" in headers:
            return max(1, math.ceil(float(headers["retry-after-ms"]) / 1000))
        if "retry-after" in headers:
            return max(1, math.ceil(float(headers["retry-after"])))
    except ValueError:
        pass
    return CONTRACT.default_retry_after_s


def upstream_status(err: BaseException) -> tuple[int, dict[str, str]]:
    """The status and headers to answer with when the call to the API failed (CONTRACT.statuses)."""
    match err:
        case openai.APITimeoutError():
            return 504, {}
        case openai.APIStatusError(status_code=429 | 503):
            return 503, {"Retry-After": str(retry_after_of(err))}
        case _:
            return 502, {}


def failure_response(err: BaseException) -> JSONResponse:
    """A JSON error for the caller: the mapped status, and words that reveal nothing of the failure's text."""
    status, headers = upstream_status(err)
    message = {504: "The AI service took too long to answer; try again.",
               503: "The AI service is busy; try again shortly."}.get(status, "The AI service failed to answer; try again.")
    return JSONResponse({"error": {"code": f"upstream_{status}", "message": message}}, status_code=status, headers=headers)


class ClientRateLimit:
    """At most ``limit`` requests per rolling ``window_s`` seconds for each client (a sliding-window log)."""

    def __init__(self, limit: int = CONTRACT.rate_limit, window_s: float = CONTRACT.rate_window_s, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.log: dict[str, list[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """None if ``client`` may send a request now (and count it), else the seconds until it may."""
        now = self.clock()
        recent = [at for at in self.log.get(client, []) if now - at < self.window_s]
        self.log[client] = recent
        if len(recent) >= self.limit:
            return min(recent) + self.window_s - now
        recent.append(now)
        return None


# --------------------------------------------------------------------------- 3. the SSE relay


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """Server-sent events from a Responses API stream: deltas, then usage and done; heartbeats; one
    error event if the stream fails; the upstream closed however this generator ends."""
    ### BEGIN SOLUTION: relay a stream as server-sent events
    ### TODO: wait for the next upstream event without losing it when a heartbeat is due: keep one
    ### pending `asyncio.ensure_future(anext(events))` and `await asyncio.wait({pending}, timeout=heartbeat_s)`;
    ### when it is not done, yield HEARTBEAT and wait again. For each event yield sse(...):
    ### "response.output_text.delta" -> sse("delta", {"text": event.delta}) (set state.first_token_at =
    ### clock() at the first); "response.completed" -> sse("usage", {...usage, "model": ...}) then
    ### sse("done", {}) (and note_usage(state, event.response)); "error" / "response.failed", or an
    ### openai.APIError raised by the stream -> one sse("error", {"code", "message"}) with words of
    ### your own (never the exception's text), then stop. In `finally:` cancel the pending wait and
    ### `await stream.close()`, so a client that leaves also stops the upstream request.
    events = stream.__aiter__()
    pending = asyncio.ensure_future(anext(events))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_s)
            if not done:
                yield HEARTBEAT
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            except openai.APIError:
                yield sse("error", {"code": "upstream_error", "message": "The answer was interrupted; please try again."})
                return
            pending = asyncio.ensure_future(anext(events))
            if event.type == "response.output_text.delta":
                if getattr(state, "first_token_at", None) is None:
                    state.first_token_at = clock()
                yield sse("delta", {"text": event.delta})
            elif event.type == "response.completed":
                note_usage(state, event.response)
                yield sse("usage", {**usage_dict(event.response.usage), "model": event.response.model})
                yield sse("done", {})
            elif event.type in ("error", "response.failed"):
                yield sse("error", {"code": "upstream_error", "message": "The answer was interrupted; please try again."})
                return
    finally:
        pending.cancel()
        await stream.close()
    ### END SOLUTION


# --------------------------------------------------------------------------- 4. webhooks


class WebhookIds:
    """Webhook ids already taken: each is processed at most once (``release`` lets a failed one come back)."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    def take(self, webhook_id: str) -> bool:
        """True the first time an id is seen (and from then on it is taken), False for a repeat."""
        if self.state.get(webhook_id) == "taken":
            return False
        self.state[webhook_id] = "taken"
        return True

    def release(self, webhook_id: str) -> None:
        """Forget an id whose work failed, so a later delivery of it is processed."""
        self.state[webhook_id] = "released"


async def send_onboarding(client: openai.AsyncOpenAI, mailer: Mailer, customer: Customer) -> None:
    """Write the customer's onboarding email with the model and send it (raises if either fails)."""
    reply = await client.responses.create(**onboarding_request(customer))
    email = EmailMessage()
    for header, value in (("From", CONTRACT.mail_from), ("To", customer.email), ("Subject", onboarding_subject(customer))):
        email[header] = value
    email.set_content(reply.output_text)
    await mailer.send(email)


# --------------------------------------------------------------------------- 5. the chat application


class ChatManager:
    """The open chat connections, each with its own conversation at OpenAI."""

    def __init__(self) -> None:
        self.conversations: dict[WebSocket, str] = {}

    async def connect(self, ws: WebSocket, client: openai.AsyncOpenAI) -> str:
        """Accept the connection and give it a new conversation; returns the conversation's id."""
        ### BEGIN SOLUTION: open a connection with its own conversation
        ### TODO: await ws.accept(); conversation = await client.conversations.create(); remember
        ### conversation.id for this ws and return it.
        await ws.accept()
        conversation = await client.conversations.create()
        self.conversations[ws] = conversation.id
        return conversation.id
        ### END SOLUTION

    def disconnect(self, ws: WebSocket) -> None:
        """Forget a connection (safe to call twice, or for one that never finished connecting)."""
        ### BEGIN SOLUTION
        self.conversations.pop(ws, None)
        ### END SOLUTION

    @property
    def active(self) -> int:
        return len(self.conversations)


async def chat_reply(ws: WebSocket, client: openai.AsyncOpenAI, conversation: str, message: str) -> None:
    """Stream one answer to ``ws``: delta messages, then done (or one error message)."""
    ### BEGIN SOLUTION: stream one chat answer over the WebSocket
    ### TODO: stream = await client.responses.create(**chat_turn_request(message, conversation=conversation));
    ### inside `async with stream:` send {"type": "delta", "text": ...} for each text delta and
    ### {"type": "done", "usage": usage_dict(...)} at response.completed; an error event, a failed
    ### response or an openai.APIError -> {"type": "error", "message": words of your own}.
    ### If the client has gone, ws.send_json raises WebSocketDisconnect: let it leave the
    ### `async with`, which closes the upstream request.
    try:
        stream = await client.responses.create(**chat_turn_request(message, conversation=conversation))
        async with stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    await ws.send_json({"type": "delta", "text": event.delta})
                elif event.type == "response.completed":
                    await ws.send_json({"type": "done", "usage": usage_dict(event.response.usage)})
                elif event.type in ("error", "response.failed"):
                    await ws.send_json({"type": "error", "message": "The answer was interrupted; please try again."})
                    return
    except openai.APIError:
        await ws.send_json({"type": "error", "message": "The assistant is unavailable right now; please try again."})
    ### END SOLUTION


def chat_message(data: str) -> str | None:
    """The text of a client's message ``{"message": "..."}`` (trimmed), or None if it is not one."""
    try:
        payload = json.loads(data)
    except json.JSONDecodeError:
        return None
    match payload:
        case {"message": str(text)} if 0 < len(text.strip()) <= CONTRACT.max_message_chars:
            return text.strip()
        case _:
            return None


# --------------------------------------------------------------------------- 6. the dashboard


def summarize(entries: list[Any], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    """The dashboard's figures from the request log (see METRICS_KEYS in labkit/course/ex08.py)."""
    lo = now - window_s
    status: dict[str, int] = {}
    models: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    firsts: list[float] = []
    for entry in entries:
        if not lo < entry.at <= now:
            continue
        latencies.append(entry.latency_s)
        if entry.ttft_s is not None:
            firsts.append(entry.ttft_s)
        key = str(entry.status)
        status[key] = status.get(key, 0) + 1
        if entry.model is None:
            continue
        if entry.model not in models:
            models[entry.model] = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        row = models[entry.model]
        row["requests"] += 1
        row["input_tokens"] += entry.input_tokens
        row["output_tokens"] += entry.output_tokens
        row["cost_usd"] += entry.cost_usd
    total = len(latencies)

    def in_ms(values: list[float]) -> dict[str, float | None]:
        p50, p95 = percentile(values, 50), percentile(values, 95)
        return {"p50": None if p50 is None else 1000 * p50, "p95": None if p95 is None else 1000 * p95}

    errors = {code: count / total for code, count in status.items() if int(code) >= 400}
    return {"window_s": window_s, "requests": total, "requests_per_minute": total / (window_s / 60),
            "latency_ms": in_ms(latencies), "ttft_ms": in_ms(firsts), "status": status, "error_rate": errors, "models": models}


# --------------------------------------------------------------------------- the app


def create_app(
    client: openai.AsyncOpenAI,
    *,
    mailer: Mailer,
    clock: Clock = time.monotonic,
    log: RequestLog | None = None,
    signup_secret: str = SIGNUP_SECRET,
    openai_secret: str = OPENAI_WEBHOOK_SECRET,
) -> FastAPI:
    """The whole app. ``client`` talks to the API; ``mailer`` sends email; ``clock`` is read for every
    time (rate limits, the request log, the dashboard); ``log`` receives one entry per HTTP request."""
    app = FastAPI(title="Taskflow AI", docs_url=None, redoc_url=None)
    log = log if log is not None else RequestLog()
    app.state.log = log
    paths = CONTRACT.paths
    log_requests(app, log, clock, skip=(paths.metrics, paths.dashboard, paths.page))
    ### BEGIN SOLUTION
    ### TODO: the client every route uses: client.with_options(timeout=CONTRACT.upstream_timeout_s)
    ### (the SDK's default is 600 s: nobody waits that long for a headline).
    ### STARTER: upstream = client
    upstream = client.with_options(timeout=CONTRACT.upstream_timeout_s)
    ### END SOLUTION
    limiter = ClientRateLimit(clock=clock)
    webhook_ids = WebhookIds()
    manager = ChatManager()
    app.state.chat = manager
    background_results: dict[str, str | None] = {}

    @app.post(paths.headlines)
    async def headlines(body: HeadlineRequest, request: Request) -> Any:
        """Three headlines for a product, or an honest status."""
        ### BEGIN SOLUTION: the real-time endpoint
        ### TODO: 1. wait = limiter.retry_after(client_key(request)); if it is not None, answer 429
        ### with {"Retry-After": str(math.ceil(wait))}. 2. result = await upstream.responses.parse(
        ### **headline_request(body.product_name, body.key_benefit, body.target_audience)); on
        ### openai.APIError (or an answer without a parsed value) return failure_response(err).
        ### 3. note_usage(request.state, result); return {"headlines": result.output_parsed.headlines}.
        wait = limiter.retry_after(client_key(request, CONTRACT.client_header))
        if wait is not None:
            return JSONResponse({"error": {"code": "rate_limited", "message": "Too many requests; slow down."}},
                                status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        try:
            result = await upstream.responses.parse(**headline_request(body.product_name, body.key_benefit, body.target_audience))
            parsed = result.output_parsed
            if parsed is None:
                raise ValueError("the model returned no headlines")
        except (openai.APIError, ValueError) as err:
            return failure_response(err)
        note_usage(request.state, result)
        return {"headlines": parsed.headlines}
        ### END SOLUTION

    @app.post(paths.stream)
    async def chat_stream(body: ChatStreamRequest, request: Request) -> Any:
        """The answer as server-sent events."""
        ### BEGIN SOLUTION: the SSE endpoint
        ### TODO: stream = await upstream.responses.create(**stream_request(body.message, body.deep)) (on
        ### openai.APIError: return failure_response(err), before any byte is sent); then return
        ### StreamingResponse(relay(stream, request.state, clock), media_type="text/event-stream",
        ### headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}).
        try:
            stream = await upstream.responses.create(**stream_request(body.message, body.deep))
        except openai.APIError as err:
            return failure_response(err)
        return StreamingResponse(relay(stream, request.state, clock), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        ### END SOLUTION

    async def onboard(webhook_id: str, customer: Customer) -> None:
        try:
            await send_onboarding(upstream, mailer, customer)
        except Exception:  # noqa: BLE001 - a failed job must not kill the server; the sender may deliver it again
            webhook_ids.release(webhook_id)

    @app.post(paths.signup)
    async def signup(request: Request, background: BackgroundTasks) -> Any:
        """A new customer: verify, deduplicate, answer at once, email in the background."""
        ### BEGIN SOLUTION: the signup webhook
        ### TODO: 1. raw = await request.body(); upstream.webhooks.verify_signature(raw, request.headers,
        ### secret=signup_secret): on ValueError (a bad or stale signature, a missing header) answer 401.
        ### 2. event = SignupEvent.model_validate_json(raw): on ValidationError answer 400.
        ### 3. if not webhook_ids.take(request.headers["webhook-id"]): answer 200 {"status": "duplicate"}.
        ### 4. background.add_task(onboard, webhook_id, event.data); answer 202 {"status": "accepted"}.
        raw = await request.body()
        try:
            verify_standard_webhook(raw, request.headers, signup_secret)
        except ValueError:
            return JSONResponse({"error": {"code": "bad_signature", "message": "Signature missing, wrong or too old."}},
                                status_code=CONTRACT.signature_status)
        try:
            event = SignupEvent.model_validate_json(raw)
        except ValidationError:
            return JSONResponse({"error": {"code": "bad_event", "message": "Not a customer.created event."}}, status_code=400)
        webhook_id = request.headers["webhook-id"]
        if not webhook_ids.take(webhook_id):
            return JSONResponse({"status": "duplicate"}, status_code=200)
        background.add_task(onboard, webhook_id, event.data)
        return JSONResponse({"status": "accepted"}, status_code=202)
        ### END SOLUTION

    @app.post(paths.background)
    async def start_background(body: BackgroundRequest) -> Any:
        """Start a background response at OpenAI; its result arrives by webhook."""
        try:
            response = await upstream.responses.create(**background_request(body.prompt))
        except openai.APIError as err:
            return failure_response(err)
        background_results[response.id] = None
        return JSONResponse({"id": response.id, "status": response.status}, status_code=202)

    @app.get(paths.background + "/{response_id}")
    async def background_result(response_id: str) -> Any:
        if response_id not in background_results:
            return JSONResponse({"error": {"code": "unknown", "message": "No such job."}}, status_code=404)
        text = background_results[response_id]
        return {"id": response_id, "status": "queued" if text is None else "completed", "text": text}

    async def fetch(response_id: str) -> None:
        try:
            response = await upstream.responses.retrieve(response_id)
        except openai.APIError:
            return
        background_results[response_id] = response.output_text

    @app.post(paths.openai_hook)
    async def openai_webhook(request: Request, background: BackgroundTasks) -> Any:
        """OpenAI says a background response is done: verify it came from OpenAI, then fetch the result."""
        ### BEGIN SOLUTION: OpenAI's webhook
        ### TODO: event = upstream.webhooks.unwrap(await request.body(), request.headers, secret=openai_secret)
        ### (ValueError: answer 401); for event.type == "response.completed" schedule
        ### fetch(event.data.id) in the background; answer 200.
        try:
            event = upstream.webhooks.unwrap(await request.body(), request.headers, secret=openai_secret)
        except ValueError:
            return JSONResponse({"error": {"code": "bad_signature", "message": "Signature missing, wrong or too old."}},
                                status_code=CONTRACT.signature_status)
        if event.type == "response.completed":
            background.add_task(fetch, event.data.id)
        return {"status": "received"}
        ### END SOLUTION

    @app.websocket(paths.chat)
    async def chat(ws: WebSocket) -> None:
        """One conversation per connection; each message is answered as a stream."""
        ### BEGIN SOLUTION: the chat WebSocket
        ### TODO: conversation = await manager.connect(ws, upstream); then loop: text = await
        ### ws.receive_text(); message = chat_message(text); None -> send {"type": "error", ...} and go
        ### on; else await chat_reply(ws, upstream, conversation, message). A WebSocketDisconnect ends
        ### the loop; in `finally:` manager.disconnect(ws).
        try:
            conversation = await manager.connect(ws, upstream)
            while True:
                message = chat_message(await ws.receive_text())
                if message is None:
                    await ws.send_json({"type": "error", "message": 'Send {"message": "your question"}.'})
                    continue
                await chat_reply(ws, upstream, conversation, message)
        except (WebSocketDisconnect, openai.APIError):
            pass
        finally:
            manager.disconnect(ws)
        ### END SOLUTION

    @app.get(paths.metrics)
    async def metrics() -> Any:
        return summarize(log.entries, clock())

    @app.get(paths.dashboard, response_class=HTMLResponse)
    async def dashboard() -> str:
        return page("dashboard")

    @app.get(paths.page, response_class=HTMLResponse)
    async def chat_page() -> str:
        return page("chat")

    return app
