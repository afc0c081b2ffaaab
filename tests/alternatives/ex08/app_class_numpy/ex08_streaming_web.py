"""Exercise 08, an alternative: an application class with APIRouter, event dicts, a before-validator,
an asyncio.timeout-guarded shielded read, a bounded OrderedDict of webhook ids, numpy percentiles."""

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import numpy as np
import openai
from fastapi import APIRouter, BackgroundTasks, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError, field_validator

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
from labkit.web import Mailer, RequestLog, client_key, log_requests, note_usage, page, sse

Clock = Callable[[], float]


def usage_dict(usage: Any) -> dict[str, int]:
    given = int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0)
    made = int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


async def stream_responses(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Each event as a plain dict."""
    begun = clock()
    out = Streamed()
    async with await client.responses.create(**answer_request(question), stream=True) as stream:
        async for raw in stream:
            event = raw.model_dump()
            kind = event["type"]
            if kind == "response.output_text.delta":
                out.first_token_s = out.first_token_s if out.first_token_s is not None else clock() - begun
                out.text = out.text + event["delta"]
                out.chunks = out.chunks + 1
            elif kind == "response.completed":
                u = event["response"]["usage"]
                out.usage = {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"],
                             "total_tokens": u["input_tokens"] + u["output_tokens"]}
            elif kind == "error":
                out.error = "error event: " + str(event.get("code"))
            elif kind == "response.failed":
                out.error = "response failed: " + str((event["response"].get("error") or {}).get("code"))
    out.total_s = clock() - begun
    return out


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    begun = clock()
    out = Streamed()
    try:
        async with await client.chat.completions.create(**answer_request(question, "chat"), stream=True,
                                                        stream_options={"include_usage": True}) as stream:
            async for chunk in stream:
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    if not out.chunks:
                        out.first_token_s = clock() - begun
                    out.chunks += 1
                    out.text += text
                if chunk.usage:
                    out.usage = usage_dict(chunk.usage)
    except openai.APIError as err:
        out.error = f"code={err.code}"
    out.total_s = clock() - begun
    return out


class HeadlineRequest(BaseModel):
    """Strips in a before-validator, then Field limits apply."""

    product_name: str = Field(min_length=1, max_length=FIELD_LIMITS["product_name"])
    key_benefit: str = Field(min_length=1, max_length=FIELD_LIMITS["key_benefit"])
    target_audience: str = Field(min_length=1, max_length=FIELD_LIMITS["target_audience"])

    @field_validator("product_name", "key_benefit", "target_audience", mode="before")
    @classmethod
    def _trim(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


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


_BUSY = {429, 503}


def upstream_status(err: BaseException) -> tuple[int, dict[str, str]]:
    if isinstance(err, openai.APITimeoutError):
        return CONTRACT.statuses["timeout"], {}
    status = getattr(err, "status_code", None)
    if isinstance(err, openai.APIStatusError) and status in _BUSY:
        return 503, {"Retry-After": str(retry_after_of(err))}
    return 502, {}


def failure_response(err: BaseException) -> JSONResponse:
    status, headers = upstream_status(err)
    message = {504: "The AI service took too long to answer; try again.",
               503: "The AI service is busy; try again shortly."}.get(status, "The AI service failed to answer; try again.")
    return JSONResponse({"error": {"code": f"upstream_{status}", "message": message}}, status_code=status, headers=headers)


class ClientRateLimit:
    """Lists rebuilt by a comprehension on each call."""

    def __init__(self, limit: int = CONTRACT.rate_limit, window_s: float = CONTRACT.rate_window_s, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.calls: dict[str, list[float]] = {}

    def retry_after(self, client: str) -> float | None:
        now = self.clock()
        recent = [t for t in self.calls.get(client, []) if now - t < self.window_s]
        self.calls[client] = recent
        if len(recent) < self.limit:
            recent.append(now)
            return None
        return min(recent) + self.window_s - now


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """asyncio.timeout around a shielded task, so a heartbeat never cancels the read."""
    iterator = aiter(stream)
    nxt: asyncio.Future[Any] | None = None
    try:
        while True:
            if nxt is None:
                nxt = asyncio.ensure_future(anext(iterator))
            try:
                async with asyncio.timeout(heartbeat_s):
                    event = await asyncio.shield(nxt)
            except TimeoutError:
                yield "event: heartbeat\ndata: {}\n\n"
                continue
            except StopAsyncIteration:
                return
            except openai.APIError:
                yield sse("error", {"code": "stream_error", "message": "Lost the answer halfway, sorry. Please retry."})
                return
            finally:
                if nxt is not None and nxt.done():
                    nxt = None
            data = event.model_dump()
            if data["type"] == "response.output_text.delta":
                if not hasattr(state, "first_token_at"):
                    state.first_token_at = clock()
                yield sse("delta", {"text": data["delta"]})
            elif data["type"] == "response.completed":
                note_usage(state, event.response)
                u = data["response"]["usage"]
                yield sse("usage", {"model": data["response"]["model"], "input_tokens": u["input_tokens"],
                                    "output_tokens": u["output_tokens"], "total_tokens": u["total_tokens"]})
                yield sse("done", {})
            elif data["type"] in ("error", "response.failed"):
                yield sse("error", {"code": "stream_error", "message": "Lost the answer halfway, sorry. Please retry."})
                return
    finally:
        if nxt is not None:
            nxt.cancel()
        await stream.close()


class WebhookIds:
    """The most recent 10,000 ids, oldest forgotten first."""

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self.ids: OrderedDict[str, None] = OrderedDict()

    def take(self, webhook_id: str) -> bool:
        if webhook_id in self.ids:
            return False
        self.ids[webhook_id] = None
        while len(self.ids) > self.keep:
            self.ids.popitem(last=False)
        return True

    def release(self, webhook_id: str) -> None:
        self.ids.pop(webhook_id, None)


async def send_onboarding(client: openai.AsyncOpenAI, mailer: Mailer, customer: Customer) -> None:
    written = await client.responses.create(**onboarding_request(customer))
    email = EmailMessage()
    email.add_header("From", CONTRACT.mail_from)
    email.add_header("To", customer.email)
    email.add_header("Subject", onboarding_subject(customer))
    email.set_content(written.output_text)
    await mailer.send(email)


class ChatManager:
    def __init__(self) -> None:
        self.conversations: dict[WebSocket, str] = {}

    async def connect(self, ws: WebSocket, client: openai.AsyncOpenAI) -> str:
        await ws.accept()
        self.conversations[ws] = (await client.conversations.create()).id
        return self.conversations[ws]

    def disconnect(self, ws: WebSocket) -> None:
        self.conversations.pop(ws, None)

    @property
    def active(self) -> int:
        return len(self.conversations)


async def chat_reply(ws: WebSocket, client: openai.AsyncOpenAI, conversation: str, message: str) -> None:
    failed = {"type": "error", "message": "Something went wrong on our side."}
    try:
        async with await client.responses.create(**chat_turn_request(message, conversation=conversation)) as stream:
            async for event in stream:
                kind = event.type
                if kind == "response.output_text.delta":
                    await ws.send_text(json.dumps({"type": "delta", "text": event.delta}))
                elif kind == "response.completed":
                    await ws.send_text(json.dumps({"type": "done", "usage": usage_dict(event.response.usage)}))
                elif kind in ("error", "response.failed"):
                    await ws.send_text(json.dumps(failed))
                    break
    except openai.APIError:
        await ws.send_text(json.dumps(failed))


def chat_message(data: str) -> str | None:
    try:
        match json.loads(data):
            case {"message": str(text)} if 0 < len(text.strip()) <= CONTRACT.max_message_chars:
                return text.strip()
            case _:
                return None
    except json.JSONDecodeError:
        return None


def _pcts(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(np.array(values) * 1000, [50, 95], method="inverted_cdf")
    return {"p50": float(p50), "p95": float(p95)}


def summarize(entries: list[Any], now: float, window_s: float = CONTRACT.metrics_window_s) -> dict[str, Any]:
    kept = [e for e in entries if now - window_s < e.at <= now]
    status: dict[str, int] = {}
    for e in kept:
        status[str(e.status)] = status.get(str(e.status), 0) + 1
    models: dict[str, dict[str, float]] = {}
    for e in kept:
        if e.model is None:
            continue
        m = models.setdefault(e.model, dict.fromkeys(("requests", "input_tokens", "output_tokens"), 0) | {"cost_usd": 0.0})
        m["requests"] += 1
        m["input_tokens"] += e.input_tokens
        m["output_tokens"] += e.output_tokens
        m["cost_usd"] += e.cost_usd
    return {
        "window_s": window_s,
        "requests": len(kept),
        "requests_per_minute": len(kept) * 60 / window_s,
        "latency_ms": _pcts([e.latency_s for e in kept]),
        "ttft_ms": _pcts([e.ttft_s for e in kept if e.ttft_s is not None]),
        "status": status,
        "error_rate": {s: c / len(kept) for s, c in status.items() if int(s) >= 400},
        "models": models,
    }


class TaskflowApp:
    """The routes as methods on one object that holds the app's state."""

    def __init__(self, client: openai.AsyncOpenAI, mailer: Mailer, clock: Clock, log: RequestLog,
                 signup_secret: str, openai_secret: str) -> None:
        self.upstream = client.with_options(timeout=CONTRACT.upstream_timeout_s)
        self.mailer, self.clock, self.log = mailer, clock, log
        self.signup_secret, self.openai_secret = signup_secret, openai_secret
        self.limiter = ClientRateLimit(clock=clock)
        self.ids = WebhookIds()
        self.manager = ChatManager()
        self.jobs: dict[str, str | None] = {}
        paths = CONTRACT.paths
        router = APIRouter()
        router.add_api_route(paths.headlines, self.headlines, methods=["POST"])
        router.add_api_route(paths.stream, self.chat_stream, methods=["POST"])
        router.add_api_route(paths.signup, self.signup, methods=["POST"])
        router.add_api_route(paths.background, self.start_background, methods=["POST"])
        router.add_api_route(paths.background + "/{response_id}", self.background_result, methods=["GET"])
        router.add_api_route(paths.openai_hook, self.openai_webhook, methods=["POST"])
        router.add_api_websocket_route(paths.chat, self.chat)
        router.add_api_route(paths.metrics, self.metrics, methods=["GET"])
        router.add_api_route(paths.dashboard, self.dashboard, methods=["GET"], response_class=HTMLResponse)
        router.add_api_route(paths.page, self.chat_page, methods=["GET"], response_class=HTMLResponse)
        self.app = FastAPI(title="Taskflow AI", docs_url=None, redoc_url=None)
        self.app.state.log = log
        self.app.state.chat = self.manager
        log_requests(self.app, log, clock, skip=(paths.metrics, paths.dashboard, paths.page))
        self.app.include_router(router)

    async def headlines(self, body: HeadlineRequest, request: Request) -> Any:
        wait = self.limiter.retry_after(client_key(request))
        if wait is not None:
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        try:
            result = await self.upstream.responses.parse(**headline_request(body.product_name, body.key_benefit, body.target_audience))
            if result.output_parsed is None:
                return failure_response(ValueError("unparsed"))
        except openai.APIError as err:
            return failure_response(err)
        note_usage(request.state, result)
        return {"headlines": list(result.output_parsed.headlines)}

    async def chat_stream(self, body: ChatStreamRequest, request: Request) -> Any:
        try:
            stream = await self.upstream.responses.create(**stream_request(body.message, body.deep))
        except openai.APIError as err:
            return failure_response(err)
        return StreamingResponse(relay(stream, request.state, self.clock), media_type="text/event-stream")

    async def _onboard(self, webhook_id: str, customer: Customer) -> None:
        try:
            await send_onboarding(self.upstream, self.mailer, customer)
        except Exception:  # noqa: BLE001
            self.ids.release(webhook_id)

    async def signup(self, request: Request, background: BackgroundTasks) -> Any:
        raw = await request.body()
        try:
            self.upstream.webhooks.verify_signature(raw, request.headers, secret=self.signup_secret)
            event = SignupEvent.model_validate_json(raw)
        except ValidationError:
            return JSONResponse({"error": "bad event"}, status_code=400)
        except ValueError:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        webhook_id = request.headers["webhook-id"]
        if not self.ids.take(webhook_id):
            return JSONResponse({"status": "duplicate"})
        background.add_task(self._onboard, webhook_id, event.data)
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def start_background(self, body: BackgroundRequest) -> Any:
        try:
            response = await self.upstream.responses.create(**background_request(body.prompt))
        except openai.APIError as err:
            return failure_response(err)
        self.jobs[response.id] = None
        return JSONResponse({"id": response.id, "status": response.status}, status_code=202)

    async def background_result(self, response_id: str) -> Any:
        if response_id not in self.jobs:
            return JSONResponse({"error": {"code": "unknown", "message": "No such job."}}, status_code=404)
        text = self.jobs[response_id]
        return {"id": response_id, "status": "queued" if text is None else "completed", "text": text}

    async def _fetch(self, response_id: str) -> None:
        try:
            self.jobs[response_id] = (await self.upstream.responses.retrieve(response_id)).output_text
        except openai.APIError:
            pass

    async def openai_webhook(self, request: Request, background: BackgroundTasks) -> Any:
        try:
            event = self.upstream.webhooks.unwrap(await request.body(), request.headers, secret=self.openai_secret)
        except ValueError:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        if event.type == "response.completed":
            background.add_task(self._fetch, event.data.id)
        return JSONResponse({}, status_code=200)

    async def chat(self, ws: WebSocket) -> None:
        conversation = await self.manager.connect(ws, self.upstream)
        try:
            while True:
                message = chat_message(await ws.receive_text())
                if message:
                    await chat_reply(ws, self.upstream, conversation, message)
                else:
                    await ws.send_json({"type": "error", "message": "Expected {\"message\": \"...\"}."})
        except WebSocketDisconnect:
            return
        finally:
            self.manager.disconnect(ws)

    async def metrics(self) -> Any:
        return summarize(self.log.entries, self.clock())

    async def dashboard(self) -> str:
        return page("dashboard")

    async def chat_page(self) -> str:
        return page("chat")


def create_app(
    client: openai.AsyncOpenAI,
    *,
    mailer: Mailer,
    clock: Clock = time.monotonic,
    log: RequestLog | None = None,
    signup_secret: str = SIGNUP_SECRET,
    openai_secret: str = OPENAI_WEBHOOK_SECRET,
) -> FastAPI:
    return TaskflowApp(client, mailer, clock, log if log is not None else RequestLog(), signup_secret, openai_secret).app
