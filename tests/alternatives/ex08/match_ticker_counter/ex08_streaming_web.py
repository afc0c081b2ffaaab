"""Exercise 08, an alternative: typed-event pattern matching, a heartbeat ticker merged into one queue,
Annotated constraints, a bisect rate log, Counter-based metrics with a hand-written nearest rank."""

import asyncio
import bisect
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Annotated, Any

import openai
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseTextDeltaEvent,
)
from pydantic import BaseModel, StringConstraints, TypeAdapter, ValidationError

from labkit.course.ex08 import (
    CONTRACT,
    FIELD_LIMITS,
    OPENAI_WEBHOOK_SECRET,
    SIGNUP_SECRET,
    BackgroundRequest,
    ChatStreamRequest,
    Customer,
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
from labkit.web import Mailer, RequestLog, client_key, log_requests, note_usage, page

Clock = Callable[[], float]


def usage_dict(usage: Any) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "total_tokens"}`` from either API's usage object."""
    given = int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0)
    made = int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


async def stream_responses(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Match on the SDK's typed event classes."""
    t0 = clock()
    pieces: list[str] = []
    first: float | None = None
    usage: dict[str, int] | None = None
    error: str | None = None
    stream = await client.responses.create(**answer_request(question), stream=True)
    try:
        async for event in stream:
            match event:
                case ResponseTextDeltaEvent(delta=delta):
                    if first is None:
                        first = clock() - t0
                    pieces.append(delta)
                case ResponseCompletedEvent(response=response):
                    usage = usage_dict(response.usage)
                case ResponseErrorEvent(code=code, message=message):
                    error = f"[{code}] {message}"
                case ResponseFailedEvent(response=response):
                    err = response.error
                    error = f"[{err.code}] {err.message}" if err is not None else "[failed]"
                case _:
                    pass
    finally:
        await stream.close()
    return Streamed(text="".join(pieces), chunks=len(pieces), usage=usage, first_token_s=first, total_s=clock() - t0, error=error)


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Chat chunks, collected in a list."""
    t0 = clock()
    result = Streamed()
    pieces: list[str] = []
    try:
        stream = await client.chat.completions.create(
            **answer_request(question, "chat"), stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            if not chunk.choices:
                if chunk.usage:
                    result.usage = usage_dict(chunk.usage)
                continue
            piece = chunk.choices[0].delta.content
            if piece:
                if result.first_token_s is None:
                    result.first_token_s = clock() - t0
                pieces.append(piece)
    except openai.APIError as exc:
        result.error = f"stream failed ({exc.code})"
    result.text = "".join(pieces)
    result.chunks = len(pieces)
    result.total_s = clock() - t0
    return result


def _field(name: str) -> Any:
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=FIELD_LIMITS[name])]


class HeadlineRequest(BaseModel):
    """The body of POST /api/headlines."""

    product_name: _field("product_name")  # type: ignore[valid-type]
    key_benefit: _field("key_benefit")  # type: ignore[valid-type]
    target_audience: _field("target_audience")  # type: ignore[valid-type]


def retry_after_of(err: openai.APIStatusError) -> int:
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
    """Structural matching on the exception classes (the timeout before the connection error)."""
    match err:
        case openai.APITimeoutError():
            return 504, {}
        case openai.APIStatusError(status_code=429 | 503):
            return 503, {"Retry-After": str(retry_after_of(err))}
        case _:
            return 502, {}


def failure_response(err: BaseException) -> JSONResponse:
    status, headers = upstream_status(err)
    message = {504: "The AI service took too long to answer; try again.",
               503: "The AI service is busy; try again shortly."}.get(status, "The AI service failed to answer; try again.")
    return JSONResponse({"error": {"code": f"upstream_{status}", "message": message}}, status_code=status, headers=headers)


class ClientRateLimit:
    """A sorted list of times per client, pruned with bisect."""

    def __init__(self, limit: int = CONTRACT.rate_limit, window_s: float = CONTRACT.rate_window_s, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.log: defaultdict[str, list[float]] = defaultdict(list)

    def retry_after(self, client: str) -> float | None:
        now = self.clock()
        times = self.log[client]
        del times[:bisect.bisect_right(times, now - self.window_s)]
        if len(times) >= self.limit:
            return times[0] + self.window_s - now
        times.append(now)
        return None


def _frame(name: str, payload: dict[str, Any]) -> str:
    return "event: " + name + "\ndata: " + json.dumps(payload) + "\n\n"


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """Two tasks feed one queue: the reader (events) and a ticker (a heartbeat after heartbeat_s of quiet)."""
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    last = [clock()]

    async def read() -> None:
        try:
            async for event in stream:
                await queue.put(("event", event))
        except openai.APIError:
            await queue.put(("failed", None))
        await queue.put(("end", None))

    async def tick() -> None:
        while True:
            await asyncio.sleep(max(0.0, last[0] + heartbeat_s - clock()))
            if clock() - last[0] >= heartbeat_s:
                await queue.put(("beat", None))
                last[0] = clock()

    tasks = [asyncio.create_task(read()), asyncio.create_task(tick())]
    sorry = _frame("error", {"code": "interrupted", "message": "Sorry, the answer stopped early. Please ask again."})
    try:
        while True:
            kind, event = await queue.get()
            last[0] = clock()
            if kind == "beat":
                yield ": keepalive\n\n"
            elif kind == "end":
                break
            elif kind == "failed" or event.type in ("error", "response.failed"):
                yield sorry
                break
            elif event.type == "response.output_text.delta":
                if getattr(state, "first_token_at", None) is None:
                    state.first_token_at = clock()
                yield _frame("delta", {"text": event.delta})
            elif event.type == "response.completed":
                response = event.response
                note_usage(state, response)
                yield _frame("usage", {"input_tokens": response.usage.input_tokens, "output_tokens": response.usage.output_tokens,
                                       "total_tokens": response.usage.input_tokens + response.usage.output_tokens,
                                       "model": response.model})
                yield _frame("done", {})
    finally:
        for task in tasks:
            task.cancel()
        await stream.close()


class WebhookIds:
    """A dict from id to the state of its work."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    def take(self, webhook_id: str) -> bool:
        if self.state.get(webhook_id) is not None:
            return False
        self.state[webhook_id] = "working"
        return True

    def release(self, webhook_id: str) -> None:
        self.state.pop(webhook_id, None)


async def send_onboarding(client: openai.AsyncOpenAI, mailer: Mailer, customer: Customer) -> None:
    response = await client.responses.create(**onboarding_request(customer))
    mail = EmailMessage()
    for header, value in (("From", CONTRACT.mail_from), ("To", customer.email), ("Subject", onboarding_subject(customer))):
        mail[header] = value
    mail.set_content(response.output_text)
    await mailer.send(mail)


class ChatManager:
    """The open chat connections, keyed by id(ws)."""

    def __init__(self) -> None:
        self.conversations: dict[int, str] = {}

    async def connect(self, ws: WebSocket, client: openai.AsyncOpenAI) -> str:
        await ws.accept()
        made = await client.conversations.create()
        self.conversations[id(ws)] = made.id
        return made.id

    def disconnect(self, ws: WebSocket) -> None:
        if id(ws) in self.conversations:
            del self.conversations[id(ws)]

    @property
    def active(self) -> int:
        return len(self.conversations)


async def chat_reply(ws: WebSocket, client: openai.AsyncOpenAI, conversation: str, message: str) -> None:
    oops = {"type": "error", "message": "Sorry, no answer this time. Try again?"}
    try:
        stream = await client.responses.create(**chat_turn_request(message, conversation=conversation))
    except openai.APIError:
        await ws.send_json(oops)
        return
    try:
        async for event in stream:
            match event:
                case ResponseTextDeltaEvent():
                    await ws.send_json({"type": "delta", "text": event.delta})
                case ResponseCompletedEvent():
                    await ws.send_json({"type": "done", "usage": usage_dict(event.response.usage)})
                case ResponseErrorEvent() | ResponseFailedEvent():
                    await ws.send_json(oops)
                    return
    except openai.APIError:
        await ws.send_json(oops)
    finally:
        await stream.close()


class _Incoming(BaseModel):
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CONTRACT.max_message_chars, strict=True)]


_INCOMING = TypeAdapter(_Incoming)


def chat_message(data: str) -> str | None:
    """A pydantic model does the checking."""
    try:
        return _INCOMING.validate_json(data).message
    except ValidationError:
        return None


def _rank(values: list[float], p: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = math.ceil(len(ordered) * p / 100)
    return ordered[max(k, 1) - 1]


def summarize(entries: list[Any], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    inside = [e for e in entries if e.at <= now and e.at > now - window_s]
    n = len(inside)
    codes = Counter(str(e.status) for e in inside)
    latencies = [e.latency_s * 1000 for e in inside]
    ttfts = [e.ttft_s * 1000 for e in inside if e.ttft_s is not None]
    models: dict[str, dict[str, float]] = {}
    for e in filter(lambda e: e.model, inside):
        row = models.get(e.model) or {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
        row = {"requests": row["requests"] + 1, "input_tokens": row["input_tokens"] + e.input_tokens,
               "output_tokens": row["output_tokens"] + e.output_tokens, "cost_usd": row["cost_usd"] + e.cost_usd}
        models[e.model] = row
    return {
        "window_s": window_s,
        "requests": n,
        "requests_per_minute": n / (window_s / 60),
        "latency_ms": {"p50": _rank(latencies, 50), "p95": _rank(latencies, 95)},
        "ttft_ms": {"p50": _rank(ttfts, 50), "p95": _rank(ttfts, 95)},
        "status": dict(codes),
        "error_rate": {code: count / n for code, count in codes.items() if int(code) >= 400},
        "models": models,
    }


def create_app(
    client: openai.AsyncOpenAI,
    *,
    mailer: Mailer,
    clock: Clock = time.monotonic,
    log: RequestLog | None = None,
    signup_secret: str = SIGNUP_SECRET,
    openai_secret: str = OPENAI_WEBHOOK_SECRET,
) -> FastAPI:
    app = FastAPI(title="Taskflow AI", docs_url=None, redoc_url=None)
    log = log if log is not None else RequestLog()
    app.state.log = log
    paths = CONTRACT.paths
    log_requests(app, log, clock, skip=(paths.metrics, paths.dashboard, paths.page))
    upstream = client.with_options(timeout=15.0, max_retries=1)
    limiter = ClientRateLimit(clock=clock)
    webhook_ids = WebhookIds()
    manager = ChatManager()
    app.state.chat = manager
    background_results: dict[str, str | None] = {}

    @app.post(paths.headlines)
    async def headlines(body: HeadlineRequest, request: Request) -> Any:
        wait = limiter.retry_after(client_key(request))
        if wait is not None:
            return JSONResponse({"detail": "rate limited"}, status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        try:
            result = await upstream.responses.parse(**headline_request(body.product_name, body.key_benefit, body.target_audience))
        except openai.APIError as err:
            return failure_response(err)
        if result.output_parsed is None:
            return failure_response(RuntimeError("no parsed output"))
        note_usage(request.state, result)
        return {"headlines": result.output_parsed.headlines}

    @app.post(paths.stream)
    async def chat_stream(body: ChatStreamRequest, request: Request) -> Any:
        try:
            stream = await upstream.responses.create(**stream_request(body.message, body.deep))
        except openai.APIError as err:
            return failure_response(err)
        return StreamingResponse(relay(stream, request.state, clock), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def onboard(webhook_id: str, customer: Customer) -> None:
        try:
            await send_onboarding(upstream, mailer, customer)
        except Exception:  # noqa: BLE001
            webhook_ids.release(webhook_id)

    @app.post(paths.signup)
    async def signup(request: Request, background: BackgroundTasks) -> Any:
        raw = await request.body()
        try:
            upstream.webhooks.verify_signature(raw, request.headers, secret=signup_secret)
        except ValueError:
            return JSONResponse({"detail": "invalid signature"}, status_code=403)
        try:
            event = SignupEvent.model_validate_json(raw)
        except ValidationError:
            return JSONResponse({"detail": "invalid event"}, status_code=400)
        webhook_id = request.headers["webhook-id"]
        if not webhook_ids.take(webhook_id):
            return {"status": "duplicate"}
        background.add_task(onboard, webhook_id, event.data)
        return JSONResponse({"status": "accepted"}, status_code=202)

    @app.post(paths.background)
    async def start_background(body: BackgroundRequest) -> Any:
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
        raw = await request.body()
        try:
            event = upstream.webhooks.unwrap(raw, request.headers, secret=openai_secret)
        except ValueError:
            return JSONResponse({"detail": "invalid signature"}, status_code=400)
        match event.type:
            case "response.completed":
                background.add_task(fetch, event.data.id)
        return {"ok": True}

    @app.websocket(paths.chat)
    async def chat(ws: WebSocket) -> None:
        conversation = await manager.connect(ws, upstream)
        try:
            async for text in ws.iter_text():
                message = chat_message(text)
                if message is None:
                    await ws.send_json({"type": "error", "message": "Please send {\"message\": \"...\"}."})
                else:
                    await chat_reply(ws, upstream, conversation, message)
        except WebSocketDisconnect:
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
