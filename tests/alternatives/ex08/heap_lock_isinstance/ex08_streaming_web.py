"""Exercise 08, an alternative: SDK event classes with isinstance, a heapq rate log, a threading.Lock for
webhook ids, create_task for the relay, an ordered table of failures, groupby metrics.

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
import heapq
import itertools
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import openai
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from openai.types.responses import ResponseCompletedEvent, ResponseErrorEvent, ResponseFailedEvent, ResponseTextDeltaEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


# --------------------------------------------------------------------------- 1. streaming


def usage_dict(usage: Any) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "total_tokens"}`` from either API's usage object."""
    given = int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0)
    made = int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


async def stream_responses(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the answer to ``question`` with the Responses API; read its typed events into a Streamed."""
    began = clock()
    out = Streamed()
    async with await client.responses.create(**answer_request(question), stream=True) as stream:
        async for event in stream:
            if isinstance(event, ResponseTextDeltaEvent):
                out.first_token_s = out.first_token_s if out.first_token_s is not None else clock() - began
                out.text, out.chunks = out.text + event.delta, out.chunks + 1
            elif isinstance(event, ResponseCompletedEvent) and event.response.usage is not None:
                out.usage = usage_dict(event.response.usage)
            elif isinstance(event, ResponseErrorEvent):
                out.error = f"stream error [{event.code}]"
            elif isinstance(event, ResponseFailedEvent):
                out.error = f"response failed [{event.response.error.code if event.response.error else '?'}]"
    out.total_s = clock() - began
    return out


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the same answer with Chat Completions; read its chunks into a Streamed."""
    began = clock()
    out = Streamed()
    try:
        async with await client.chat.completions.create(**answer_request(question, "chat"), stream=True,
                                                        stream_options={"include_usage": True}) as stream:
            async for chunk in stream:
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    out.first_token_s = out.first_token_s if out.first_token_s is not None else clock() - began
                    out.text += piece
                    out.chunks += 1
                out.usage = usage_dict(chunk.usage) if chunk.usage else out.usage
    except openai.APIError as failure:
        out.error = f"[{failure.code}] stream interrupted"
    finally:
        out.total_s = clock() - began
    return out


# --------------------------------------------------------------------------- 2. the real-time endpoint


class HeadlineRequest(BaseModel):
    """The body of POST /api/headlines: three fields, each non-blank and at most FIELD_LIMITS[name] characters."""

    ### BEGIN SOLUTION
    ### TODO: three str fields (product_name, key_benefit, target_audience) with Field(min_length=1,
    ### max_length=FIELD_LIMITS[...]); trim surrounding spaces first (model_config = ConfigDict(
    ### str_strip_whitespace=True)), so "   " is blank. FastAPI then answers a bad body with a 422
    ### that names the field.
    ### STARTER: product_name: str
    ### STARTER: key_benefit: str
    ### STARTER: target_audience: str
    model_config = ConfigDict(str_strip_whitespace=True)

    product_name: str = Field(min_length=1, max_length=FIELD_LIMITS["product_name"])
    key_benefit: str = Field(min_length=1, max_length=FIELD_LIMITS["key_benefit"])
    target_audience: str = Field(min_length=1, max_length=FIELD_LIMITS["target_audience"])
    ### END SOLUTION


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
    table: list[tuple[type[BaseException], int | None, str]] = [
        (openai.APITimeoutError, None, "timeout"),
        (openai.RateLimitError, None, "rate_limited"),
        (openai.APIStatusError, 503, "overloaded"),
    ]
    for kind, status, name in table:
        if isinstance(err, kind) and (status is None or getattr(err, "status_code", None) == status):
            if name == "timeout":
                return CONTRACT.statuses[name], {}
            return CONTRACT.statuses[name], {"Retry-After": str(retry_after_of(err))}  # type: ignore[arg-type]
    return CONTRACT.statuses["server_error"], {}


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
        self.heaps: dict[str, list[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """None if ``client`` may send a request now (and count it), else the seconds until it may."""
        heap = self.heaps.setdefault(client, [])
        now = self.clock()
        while heap and now - heap[0] >= self.window_s:
            heapq.heappop(heap)
        if len(heap) >= self.limit:
            return heap[0] + self.window_s - now
        heapq.heappush(heap, now)
        return None


# --------------------------------------------------------------------------- 3. the SSE relay


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """Server-sent events from a Responses API stream: deltas, then usage and done; heartbeats; one
    error event if the stream fails; the upstream closed however this generator ends."""
    iterator = aiter(stream)
    nxt: asyncio.Task[Any] = asyncio.create_task(anext(iterator))  # type: ignore[arg-type]
    sorry = {"code": "stream_failed", "message": "Sorry, the answer stopped partway. Please ask again."}
    try:
        while True:
            finished, _ = await asyncio.wait([nxt], timeout=heartbeat_s)
            if nxt not in finished:
                yield HEARTBEAT
                continue
            if nxt.exception() is not None:
                if not isinstance(nxt.exception(), StopAsyncIteration):
                    yield sse("error", sorry)
                return
            event = nxt.result()
            nxt = asyncio.create_task(anext(iterator))  # type: ignore[arg-type]
            if isinstance(event, ResponseTextDeltaEvent):
                if getattr(state, "first_token_at", None) is None:
                    state.first_token_at = clock()
                yield sse("delta", {"text": event.delta})
            elif isinstance(event, ResponseCompletedEvent):
                note_usage(state, event.response)
                yield sse("usage", dict(usage_dict(event.response.usage), model=event.response.model))
                yield sse("done", {})
            elif isinstance(event, (ResponseErrorEvent, ResponseFailedEvent)):
                yield sse("error", sorry)
                return
    finally:
        nxt.cancel()
        await stream.close()


# --------------------------------------------------------------------------- 4. webhooks


class WebhookIds:
    """Webhook ids already taken: each is processed at most once (``release`` lets a failed one come back)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[str] = []

    def take(self, webhook_id: str) -> bool:
        """True the first time an id is seen (and from then on it is taken), False for a repeat."""
        with self.lock:
            fresh = webhook_id not in self.ids
            if fresh:
                self.ids.append(webhook_id)
            return fresh

    def release(self, webhook_id: str) -> None:
        """Forget an id whose work failed, so a later delivery of it is processed."""
        with self.lock:
            while webhook_id in self.ids:
                self.ids.remove(webhook_id)


async def send_onboarding(client: openai.AsyncOpenAI, mailer: Mailer, customer: Customer) -> None:
    """Write the customer's onboarding email with the model and send it (raises if either fails)."""
    ### BEGIN SOLUTION: write and send the onboarding email
    ### TODO: result = await client.responses.create(**onboarding_request(customer)); build an
    ### EmailMessage with From CONTRACT.mail_from, To customer.email, Subject onboarding_subject(customer)
    ### and result.output_text as its content; await mailer.send(message).
    result = await client.responses.create(**onboarding_request(customer))
    message = EmailMessage()
    message["From"] = CONTRACT.mail_from
    message["To"] = customer.email
    message["Subject"] = onboarding_subject(customer)
    message.set_content(result.output_text)
    await mailer.send(message)
    ### END SOLUTION


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
    ### BEGIN SOLUTION: read one client message
    ### TODO: json.loads the text; return its "message" if that is a non-blank string of at most
    ### CONTRACT.max_message_chars characters (trimmed); None for anything else (bad JSON included).
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    text = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text.strip()) > CONTRACT.max_message_chars:
        return None
    return text.strip()
    ### END SOLUTION


# --------------------------------------------------------------------------- 6. the dashboard


def summarize(entries: list[Any], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    """The dashboard's figures from the request log (see METRICS_KEYS in labkit/course/ex08.py)."""
    window = sorted((e for e in entries if now - window_s < e.at <= now), key=lambda e: e.model or "")
    n = len(window)
    status: dict[str, int] = {}
    for e in window:
        status[f"{e.status}"] = status.get(f"{e.status}", 0) + 1
    models = {}
    for model, group in itertools.groupby(window, key=lambda e: e.model):
        if not model:
            continue
        rows = list(group)
        models[model] = {"requests": len(rows), "input_tokens": sum(r.input_tokens for r in rows),
                         "output_tokens": sum(r.output_tokens for r in rows), "cost_usd": sum(r.cost_usd for r in rows)}

    def pct(values: list[float]) -> dict[str, float | None]:
        return {name: (None if (v := percentile(values, p)) is None else round(v * 1000, 9)) for name, p in (("p50", 50), ("p95", 95))}

    return {
        "window_s": window_s, "requests": n, "requests_per_minute": 60 * n / window_s,
        "latency_ms": pct([e.latency_s for e in window]),
        "ttft_ms": pct([e.ttft_s for e in window if e.ttft_s is not None]),
        "status": status,
        "error_rate": {k: v / n for k, v in status.items() if int(k) >= 400},
        "models": models,
    }


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
            upstream.webhooks.verify_signature(raw, request.headers, secret=signup_secret)
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
