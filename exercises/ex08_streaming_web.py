"""Exercise 08: streaming, a real-time endpoint, an SSE relay, webhooks, a chat app and a dashboard.

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
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import openai
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
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
    # TODO: stream = await client.responses.create(**answer_request(question), stream=True); then, inside
    # `async with stream:`, `async for event in stream:` and look at event.type:
    # "response.output_text.delta" (event.delta: append it; note the first one's time),
    # "response.completed" (event.response.usage: keep usage_dict(...) of it),
    # "error" (event.code, event.message) and "response.failed" (event.response.error): keep a
    # short error text with the error's code (the stream ends there). chunks counts the text deltas.
    # Times are clock() - start, in seconds.
    raise NotImplementedError("read a Responses API stream")


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Stream the same answer with Chat Completions; read its chunks into a Streamed."""
    # TODO: create(**answer_request(question, "chat"), stream=True, stream_options={"include_usage": True});
    # each chunk's choices[0].delta.content is a piece of text; the last chunk has no choices and
    # carries chunk.usage. A failure midway arrives as an exception while you iterate
    # (openai.APIError): keep a short error text with its code (err.code) instead of raising.
    raise NotImplementedError("read a Chat Completions stream")


# --------------------------------------------------------------------------- 2. the real-time endpoint


class HeadlineRequest(BaseModel):
    """The body of POST /api/headlines: three fields, each non-blank and at most FIELD_LIMITS[name] characters."""

    # TODO: three str fields (product_name, key_benefit, target_audience) with Field(min_length=1,
    # max_length=FIELD_LIMITS[...]); trim surrounding spaces first (model_config = ConfigDict(
    # str_strip_whitespace=True)), so "   " is blank. FastAPI then answers a bad body with a 422
    # that names the field.
    product_name: str
    key_benefit: str
    target_audience: str


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
    # TODO: openai.APITimeoutError -> 504; openai.RateLimitError, or any APIStatusError with status
    # 503 -> 503 with {"Retry-After": str(retry_after_of(err))}; every other failure (other
    # statuses, connection errors, an answer that did not parse) -> 502. Check the timeout first:
    # APITimeoutError is a kind of APIConnectionError.
    raise NotImplementedError("map an upstream failure to an honest status")


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
        # TODO: keep, per client, the times of its recent requests (a dict of deque).
        pass

    def retry_after(self, client: str) -> float | None:
        """None if ``client`` may send a request now (and count it), else the seconds until it may."""
        # TODO: drop the times older than window_s; if fewer than limit remain, note now and return
        # None; else return how long until the oldest leaves the window (oldest + window_s - now).
        raise NotImplementedError("count a client's requests in a rolling window")


# --------------------------------------------------------------------------- 3. the SSE relay


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """Server-sent events from a Responses API stream: deltas, then usage and done; heartbeats; one
    error event if the stream fails; the upstream closed however this generator ends."""
    # TODO: wait for the next upstream event without losing it when a heartbeat is due: keep one
    # pending `asyncio.ensure_future(anext(events))` and `await asyncio.wait({pending}, timeout=heartbeat_s)`;
    # when it is not done, yield HEARTBEAT and wait again. For each event yield sse(...):
    # "response.output_text.delta" -> sse("delta", {"text": event.delta}) (set state.first_token_at =
    # clock() at the first); "response.completed" -> sse("usage", {...usage, "model": ...}) then
    # sse("done", {}) (and note_usage(state, event.response)); "error" / "response.failed", or an
    # openai.APIError raised by the stream -> one sse("error", {"code", "message"}) with words of
    # your own (never the exception's text), then stop. In `finally:` cancel the pending wait and
    # `await stream.close()`, so a client that leaves also stops the upstream request.
    raise NotImplementedError("relay a stream as server-sent events")


# --------------------------------------------------------------------------- 4. webhooks


class WebhookIds:
    """Webhook ids already taken: each is processed at most once (``release`` lets a failed one come back)."""

    def __init__(self) -> None:
        pass

    def take(self, webhook_id: str) -> bool:
        """True the first time an id is seen (and from then on it is taken), False for a repeat."""
        # TODO: check and add in one step, with no `await` in between, so two concurrent deliveries
        # of one id cannot both pass.
        raise NotImplementedError("remember webhook ids")

    def release(self, webhook_id: str) -> None:
        """Forget an id whose work failed, so a later delivery of it is processed."""


async def send_onboarding(client: openai.AsyncOpenAI, mailer: Mailer, customer: Customer) -> None:
    """Write the customer's onboarding email with the model and send it (raises if either fails)."""
    # TODO: result = await client.responses.create(**onboarding_request(customer)); build an
    # EmailMessage with From CONTRACT.mail_from, To customer.email, Subject onboarding_subject(customer)
    # and result.output_text as its content; await mailer.send(message).
    raise NotImplementedError("write and send the onboarding email")


# --------------------------------------------------------------------------- 5. the chat application


class ChatManager:
    """The open chat connections, each with its own conversation at OpenAI."""

    def __init__(self) -> None:
        self.conversations: dict[WebSocket, str] = {}

    async def connect(self, ws: WebSocket, client: openai.AsyncOpenAI) -> str:
        """Accept the connection and give it a new conversation; returns the conversation's id."""
        # TODO: await ws.accept(); conversation = await client.conversations.create(); remember
        # conversation.id for this ws and return it.
        raise NotImplementedError("open a connection with its own conversation")

    def disconnect(self, ws: WebSocket) -> None:
        """Forget a connection (safe to call twice, or for one that never finished connecting)."""

    @property
    def active(self) -> int:
        return len(self.conversations)


async def chat_reply(ws: WebSocket, client: openai.AsyncOpenAI, conversation: str, message: str) -> None:
    """Stream one answer to ``ws``: delta messages, then done (or one error message)."""
    # TODO: stream = await client.responses.create(**chat_turn_request(message, conversation=conversation));
    # inside `async with stream:` send {"type": "delta", "text": ...} for each text delta and
    # {"type": "done", "usage": usage_dict(...)} at response.completed; an error event, a failed
    # response or an openai.APIError -> {"type": "error", "message": words of your own}.
    # If the client has gone, ws.send_json raises WebSocketDisconnect: let it leave the
    # `async with`, which closes the upstream request.
    raise NotImplementedError("stream one chat answer over the WebSocket")


def chat_message(data: str) -> str | None:
    """The text of a client's message ``{"message": "..."}`` (trimmed), or None if it is not one."""
    # TODO: json.loads the text; return its "message" if that is a non-blank string of at most
    # CONTRACT.max_message_chars characters (trimmed); None for anything else (bad JSON included).
    raise NotImplementedError("read one client message")


# --------------------------------------------------------------------------- 6. the dashboard


def summarize(entries: list[Any], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    """The dashboard's figures from the request log (see METRICS_KEYS in labkit/course/ex08.py)."""
    # TODO: keep the entries with now - window_s < entry.at <= now; count them; latency_ms and
    # ttft_ms hold percentile(values, 50) and percentile(values, 95) in milliseconds (None when
    # there are no values; ttft only over entries whose ttft_s is not None); status counts by
    # str(status); error_rate is count / requests for each status >= 400; models sums requests,
    # tokens and cost_usd per entry.model (entries without a model are left out).
    raise NotImplementedError("summarise the request log")


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
    # TODO: the client every route uses: client.with_options(timeout=CONTRACT.upstream_timeout_s)
    # (the SDK's default is 600 s: nobody waits that long for a headline).
    upstream = client
    limiter = ClientRateLimit(clock=clock)
    webhook_ids = WebhookIds()
    manager = ChatManager()
    app.state.chat = manager
    background_results: dict[str, str | None] = {}

    @app.post(paths.headlines)
    async def headlines(body: HeadlineRequest, request: Request) -> Any:
        """Three headlines for a product, or an honest status."""
        # TODO: 1. wait = limiter.retry_after(client_key(request)); if it is not None, answer 429
        # with {"Retry-After": str(math.ceil(wait))}. 2. result = await upstream.responses.parse(
        # **headline_request(body.product_name, body.key_benefit, body.target_audience)); on
        # openai.APIError (or an answer without a parsed value) return failure_response(err).
        # 3. note_usage(request.state, result); return {"headlines": result.output_parsed.headlines}.
        raise NotImplementedError("the real-time endpoint")

    @app.post(paths.stream)
    async def chat_stream(body: ChatStreamRequest, request: Request) -> Any:
        """The answer as server-sent events."""
        # TODO: stream = await upstream.responses.create(**stream_request(body.message, body.deep)) (on
        # openai.APIError: return failure_response(err), before any byte is sent); then return
        # StreamingResponse(relay(stream, request.state, clock), media_type="text/event-stream",
        # headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}).
        raise NotImplementedError("the SSE endpoint")

    async def onboard(webhook_id: str, customer: Customer) -> None:
        try:
            await send_onboarding(upstream, mailer, customer)
        except Exception:  # noqa: BLE001 - a failed job must not kill the server; the sender may deliver it again
            webhook_ids.release(webhook_id)

    @app.post(paths.signup)
    async def signup(request: Request, background: BackgroundTasks) -> Any:
        """A new customer: verify, deduplicate, answer at once, email in the background."""
        # TODO: 1. raw = await request.body(); upstream.webhooks.verify_signature(raw, request.headers,
        # secret=signup_secret): on ValueError (a bad or stale signature, a missing header) answer 401.
        # 2. event = SignupEvent.model_validate_json(raw): on ValidationError answer 400.
        # 3. if not webhook_ids.take(request.headers["webhook-id"]): answer 200 {"status": "duplicate"}.
        # 4. background.add_task(onboard, webhook_id, event.data); answer 202 {"status": "accepted"}.
        raise NotImplementedError("the signup webhook")

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
        # TODO: event = upstream.webhooks.unwrap(await request.body(), request.headers, secret=openai_secret)
        # (ValueError: answer 401); for event.type == "response.completed" schedule
        # fetch(event.data.id) in the background; answer 200.
        raise NotImplementedError("OpenAI's webhook")

    @app.websocket(paths.chat)
    async def chat(ws: WebSocket) -> None:
        """One conversation per connection; each message is answered as a stream."""
        # TODO: conversation = await manager.connect(ws, upstream); then loop: text = await
        # ws.receive_text(); message = chat_message(text); None -> send {"type": "error", ...} and go
        # on; else await chat_reply(ws, upstream, conversation, message). A WebSocketDisconnect ends
        # the loop; in `finally:` manager.disconnect(ws).
        raise NotImplementedError("the chat WebSocket")

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

# labkit starter 03e8fbc14668 (made from solutions/ex08_streaming_web.py by `labkit exercises build`)
