"""Exercise 08, an alternative: dependencies and exception handlers, SQLite for webhook ids, a shielded relay.

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
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Annotated, Any

import httpx2
import openai
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, StringConstraints, ValidationError

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
from labkit.web import Mailer, RequestLog, client_key, log_requests, note_usage, page, percentile, sse

Clock = Callable[[], float]


# --------------------------------------------------------------------------- 1. streaming


def usage_dict(usage: Any) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "total_tokens"}`` from either API's usage object."""
    given = int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0)
    made = int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


async def stream_responses(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the answer to ``question`` with the Responses API; read its typed events into a Streamed."""
    out = Streamed()
    start = clock()
    stream = await client.responses.create(**answer_request(question), stream=True)
    async with stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                if out.first_token_s is None:
                    out.first_token_s = clock() - start
                out.text += event.delta
                out.chunks += 1
            elif event.type == "response.completed":
                out.usage = usage_dict(event.response.usage)
            elif event.type == "error":
                out.error = f"{event.code}: {event.message}"
                break
            elif event.type == "response.failed":
                failure = event.response.error
                out.error = f"{failure.code}: {failure.message}" if failure else "the response failed"
                break
    out.total_s = clock() - start
    return out


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the same answer with Chat Completions; read its chunks into a Streamed."""
    out = Streamed()
    start = clock()
    stream = await client.chat.completions.create(**answer_request(question, "chat"), stream=True,
                                                  stream_options={"include_usage": True})
    try:
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    out.usage = usage_dict(chunk.usage)
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    if out.first_token_s is None:
                        out.first_token_s = clock() - start
                    out.text += piece
                    out.chunks += 1
    except openai.APIError as err:
        out.error = f"{getattr(err, 'code', None) or 'stream_failed'} ({err.message})"
    out.total_s = clock() - start
    return out


# --------------------------------------------------------------------------- 2. the real-time endpoint


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class HeadlineRequest(BaseModel):
    """Constrained types instead of Field(...)."""

    product_name: Annotated[Text, StringConstraints(max_length=FIELD_LIMITS["product_name"])]
    key_benefit: Annotated[Text, StringConstraints(max_length=FIELD_LIMITS["key_benefit"])]
    target_audience: Annotated[Text, StringConstraints(max_length=FIELD_LIMITS["target_audience"])]


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
    """A table of (exception class, status), most specific first."""
    table: list[tuple[type[BaseException], int, bool]] = [
        (openai.APITimeoutError, 504, False),
        (openai.RateLimitError, 503, True),
        (openai.InternalServerError, 502, False),
    ]
    for kind, status, retry in table:
        if isinstance(err, kind):
            if isinstance(err, openai.InternalServerError) and err.status_code == 503:
                return 503, {"Retry-After": str(retry_after_of(err))}
            if retry and isinstance(err, openai.APIStatusError):
                return status, {"Retry-After": str(retry_after_of(err))}
            return status, {}
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
        self.seen: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> float | None:
        """None if ``client`` may send a request now (and count it), else the seconds until it may."""
        now = self.clock()
        times = self.seen.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            return None
        return times[0] + self.window_s - now


# --------------------------------------------------------------------------- 3. the SSE relay


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """A shielded read: a heartbeat timeout cancels only the wait, never the read itself."""
    events = aiter(stream)
    read: asyncio.Task[Any] | None = None
    try:
        while True:
            read = read or asyncio.ensure_future(anext(events))
            try:
                event = await asyncio.wait_for(asyncio.shield(read), heartbeat_s)
            except TimeoutError:
                yield "event: ping\ndata: {}\n\n"
                continue
            except StopAsyncIteration:
                break
            except openai.APIError:
                yield sse("error", {"code": "upstream", "message": "The model stopped answering. Try again."})
                break
            read = None
            kind = event.type
            if kind == "response.output_text.delta":
                state.first_token_at = getattr(state, "first_token_at", None) or clock()
                yield sse("delta", {"text": event.delta})
            elif kind == "response.completed":
                note_usage(state, event.response)
                yield sse("usage", {**usage_dict(event.response.usage), "model": event.response.model})
                yield sse("done", {})
            elif kind in {"error", "response.failed"}:
                yield sse("error", {"code": "upstream", "message": "The model stopped answering. Try again."})
                break
    finally:
        if read is not None:
            read.cancel()
        await stream.aclose() if hasattr(stream, "aclose") else await stream.close()


# --------------------------------------------------------------------------- 4. webhooks


class WebhookIds:
    """Webhook ids in SQLite: INSERT OR IGNORE is the atomic check-and-set (a file would survive restarts)."""

    def __init__(self, path: str = ":memory:") -> None:
        import sqlite3

        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS webhook_ids (id TEXT PRIMARY KEY)")

    def take(self, webhook_id: str) -> bool:
        with self.db:
            return self.db.execute("INSERT OR IGNORE INTO webhook_ids (id) VALUES (?)", (webhook_id,)).rowcount == 1

    def release(self, webhook_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM webhook_ids WHERE id = ?", (webhook_id,))


async def send_onboarding(client: openai.AsyncOpenAI, mailer: Mailer, customer: Customer) -> None:
    """Write the customer's onboarding email with the model and send it (raises if either fails)."""
    result = await client.responses.create(**onboarding_request(customer))
    message = EmailMessage()
    message["From"] = CONTRACT.mail_from
    message["To"] = customer.email
    message["Subject"] = onboarding_subject(customer)
    message.set_content(result.output_text)
    await mailer.send(message)


# --------------------------------------------------------------------------- 5. the chat application


class ChatManager:
    """The open chat connections, each with its own conversation at OpenAI."""

    def __init__(self) -> None:
        self.conversations: dict[WebSocket, str] = {}

    async def connect(self, ws: WebSocket, client: openai.AsyncOpenAI) -> str:
        """Accept the connection and give it a new conversation; returns the conversation's id."""
        await ws.accept()
        conversation = await client.conversations.create()
        self.conversations[ws] = conversation.id
        return conversation.id

    def disconnect(self, ws: WebSocket) -> None:
        """Forget a connection (safe to call twice, or for one that never finished connecting)."""
        self.conversations.pop(ws, None)

    @property
    def active(self) -> int:
        return len(self.conversations)


async def chat_reply(ws: WebSocket, client: openai.AsyncOpenAI, conversation: str, message: str) -> None:
    """Stream one answer to ``ws``: delta messages, then done (or one error message)."""
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


def chat_message(data: str) -> str | None:
    """The text of a client's message ``{"message": "..."}`` (trimmed), or None if it is not one."""
    import json

    try:
        payload = json.loads(data)
    except ValueError:
        return None
    text = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text.strip()) > CONTRACT.max_message_chars:
        return None
    return text.strip()


# --------------------------------------------------------------------------- 6. the dashboard


def summarize(entries: list[Any], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    """One pass over the window, then the percentiles."""
    count, latencies, firsts = 0, [], []
    status: dict[str, int] = {}
    models: dict[str, dict[str, float]] = {}
    for e in entries:
        if not (now - window_s < e.at <= now):
            continue
        count += 1
        latencies.append(e.latency_s * 1000)
        if e.ttft_s is not None:
            firsts.append(e.ttft_s * 1000)
        status[str(e.status)] = status.get(str(e.status), 0) + 1
        if e.model is not None and e.model != "":
            m = models.setdefault(e.model, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
            m["requests"] += 1
            m["input_tokens"] += e.input_tokens
            m["output_tokens"] += e.output_tokens
            m["cost_usd"] += e.cost_usd
    return {
        "window_s": window_s, "requests": count, "requests_per_minute": 60 * count / window_s,
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "ttft_ms": {"p50": percentile(firsts, 50), "p95": percentile(firsts, 95)},
        "status": status, "error_rate": {k: v / count for k, v in status.items() if int(k) >= 400}, "models": models,
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
    upstream = client.with_options(timeout=httpx2.Timeout(CONTRACT.upstream_timeout_s, connect=5.0))
    limiter = ClientRateLimit(clock=clock)
    webhook_ids = WebhookIds()
    manager = ChatManager()
    app.state.chat = manager
    background_results: dict[str, str | None] = {}

    from fastapi import Depends, HTTPException

    @app.exception_handler(openai.APIError)
    async def upstream_failed(request: Request, err: openai.APIError) -> JSONResponse:
        return failure_response(err)

    async def within_limit(request: Request) -> None:
        wait = limiter.retry_after(client_key(request, CONTRACT.client_header))
        if wait is not None:
            raise HTTPException(429, "Too many requests; slow down.", headers={"Retry-After": str(math.ceil(wait))})

    @app.post(paths.headlines, dependencies=[Depends(within_limit)])
    async def headlines(body: HeadlineRequest, request: Request) -> Any:
        """Three headlines for a product; upstream failures go to the exception handler."""
        result = await upstream.responses.parse(**headline_request(**body.model_dump()))
        if result.output_parsed is None:
            return failure_response(ValueError("no headlines"))
        note_usage(request.state, result)
        return result.output_parsed.model_dump()

    @app.post(paths.stream)
    async def chat_stream(body: ChatStreamRequest, request: Request) -> Any:
        """The answer as server-sent events."""
        try:
            stream = await upstream.responses.create(**stream_request(body.message, body.deep))
        except openai.APIError as err:
            return failure_response(err)
        return StreamingResponse(relay(stream, request.state, clock), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def onboard(webhook_id: str, customer: Customer) -> None:
        try:
            await send_onboarding(upstream, mailer, customer)
        except Exception:  # noqa: BLE001 - a failed job must not kill the server; the sender may deliver it again
            webhook_ids.release(webhook_id)

    @app.post(paths.signup)
    async def signup(request: Request, background: BackgroundTasks) -> Any:
        """A new customer: verify, deduplicate, answer at once, email in the background."""
        raw = await request.body()
        try:
            upstream.webhooks.verify_signature(raw, request.headers, secret=signup_secret)
        except ValueError:
            return JSONResponse({"error": {"code": "bad_signature", "message": "Signature missing, wrong or too old."}},
                                status_code=401)
        try:
            event = SignupEvent.model_validate_json(raw)
        except ValidationError:
            return JSONResponse({"error": {"code": "bad_event", "message": "Not a customer.created event."}}, status_code=400)
        webhook_id = request.headers["webhook-id"]
        if not webhook_ids.take(webhook_id):
            return JSONResponse({"status": "duplicate"}, status_code=200)
        background.add_task(onboard, webhook_id, event.data)
        return JSONResponse({"status": "accepted"}, status_code=202)

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
        try:
            event = upstream.webhooks.unwrap(await request.body(), request.headers, secret=openai_secret)
        except ValueError:
            return JSONResponse({"error": {"code": "bad_signature", "message": "Signature missing, wrong or too old."}},
                                status_code=401)
        if event.type == "response.completed":
            background.add_task(fetch, event.data.id)
        return {"status": "received"}

    @app.websocket(paths.chat)
    async def chat(ws: WebSocket) -> None:
        """One conversation per connection; each message is answered as a stream."""
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
