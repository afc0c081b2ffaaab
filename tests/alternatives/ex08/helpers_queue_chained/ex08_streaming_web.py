"""Exercise 08, an alternative: SDK stream helpers, Chat Completions headlines, a producer-queue relay, previous_response_id.

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
from labkit.web import Mailer, RequestLog, client_key, log_requests, note_usage, page, sse

Clock = Callable[[], float]


# --------------------------------------------------------------------------- 1. streaming


def usage_dict(usage: Any) -> dict[str, int]:
    """``{"input_tokens", "output_tokens", "total_tokens"}`` from either API's usage object."""
    given = int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0)
    made = int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0)
    return {"input_tokens": given, "output_tokens": made, "total_tokens": given + made}


async def stream_responses(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """The SDK's stream helper: typed events while they come, the final response at the end."""
    out = Streamed()
    start = clock()
    async with client.responses.stream(**answer_request(question)) as stream:
        async for event in stream:
            match event.type:
                case "response.output_text.delta":
                    out.first_token_s = out.first_token_s if out.first_token_s is not None else clock() - start
                    out.text, out.chunks = out.text + event.delta, out.chunks + 1
                case "response.completed":
                    u = event.response.usage
                    out.usage = {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens, "total_tokens": u.total_tokens}
                case "error":
                    out.error = f"[{event.code}] {event.message}"
                    break
                case "response.failed":
                    failure = event.response.error
                    out.error = f"[{failure.code}] {failure.message}" if failure else "[failed]"
                    break
    out.total_s = clock() - start
    return out


async def stream_chat(client: openai.AsyncOpenAI, question: str, *, clock: Clock = time.perf_counter) -> Streamed:
    """Chat Completions chunks, read by hand."""
    out = Streamed()
    start = clock()
    pieces: list[str] = []
    try:
        stream = await client.chat.completions.create(
            **answer_request(question, "chat"), stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    if not pieces:
                        out.first_token_s = clock() - start
                    pieces.append(choice.delta.content)
            if chunk.usage:
                out.usage = {"input_tokens": chunk.usage.prompt_tokens, "output_tokens": chunk.usage.completion_tokens,
                             "total_tokens": chunk.usage.total_tokens}
    except openai.APIError as err:
        out.error = f"[{err.code}] {err.message}"
    out.text, out.chunks = "".join(pieces), len(pieces)
    out.total_s = clock() - start
    return out


# --------------------------------------------------------------------------- 2. the real-time endpoint


class HeadlineRequest(BaseModel):
    """The body of POST /api/headlines: three fields, each non-blank and at most FIELD_LIMITS[name] characters."""

    model_config = ConfigDict(str_strip_whitespace=True)

    product_name: str = Field(min_length=1, max_length=FIELD_LIMITS["product_name"])
    key_benefit: str = Field(min_length=1, max_length=FIELD_LIMITS["key_benefit"])
    target_audience: str = Field(min_length=1, max_length=FIELD_LIMITS["target_audience"])


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
    if isinstance(err, openai.APITimeoutError):
        return CONTRACT.statuses["timeout"], {}
    if isinstance(err, openai.RateLimitError):
        return CONTRACT.statuses["rate_limited"], {"Retry-After": str(retry_after_of(err))}
    if isinstance(err, openai.APIStatusError) and err.status_code == 503:
        return CONTRACT.statuses["overloaded"], {"Retry-After": str(retry_after_of(err))}
    return CONTRACT.statuses["server_error"], {}


def failure_response(err: BaseException) -> JSONResponse:
    """A JSON error for the caller: the mapped status, and words that reveal nothing of the failure's text."""
    status, headers = upstream_status(err)
    message = {504: "The AI service took too long to answer; try again.",
               503: "The AI service is busy; try again shortly."}.get(status, "The AI service failed to answer; try again.")
    return JSONResponse({"error": {"code": f"upstream_{status}", "message": message}}, status_code=status, headers=headers)


class ClientRateLimit:
    """A sliding-window log kept as sorted lists, trimmed with bisect."""

    def __init__(self, limit: int = CONTRACT.rate_limit, window_s: float = CONTRACT.rate_window_s, clock: Clock = time.monotonic) -> None:
        import collections

        self.limit, self.window_s, self.clock = limit, window_s, clock
        self.log: collections.defaultdict[str, list[float]] = collections.defaultdict(list)

    def retry_after(self, client: str) -> float | None:
        import bisect

        now = self.clock()
        times = self.log[client]
        del times[: bisect.bisect_right(times, now - self.window_s)]
        if len(times) >= self.limit:
            return times[0] + self.window_s - now
        times.append(now)
        return None


# --------------------------------------------------------------------------- 3. the SSE relay


async def relay(stream: Any, state: Any, clock: Clock, heartbeat_s: float = CONTRACT.heartbeat_s) -> AsyncIterator[str]:
    """A producer task fills a queue; this generator drains it, with heartbeats; the task dies with it."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done_marker = object()

    async def produce() -> None:
        try:
            async for event in stream:
                await queue.put(event)
        except openai.APIError as err:
            await queue.put(err)
        finally:
            await queue.put(done_marker)

    producer = asyncio.create_task(produce())
    failed = sse("error", {"code": "stream_failed", "message": "Sorry, the answer broke off. Please ask again."})
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat_s)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if item is done_marker:
                break
            if isinstance(item, openai.APIError) or item.type in ("error", "response.failed"):
                yield failed
                break
            if item.type == "response.output_text.delta":
                if not hasattr(state, "first_token_at"):
                    state.first_token_at = clock()
                yield sse("delta", {"text": item.delta})
            elif item.type == "response.completed":
                usage = item.response.usage
                state.model = item.response.model
                state.usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
                yield sse("usage", {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                                    "total_tokens": usage.total_tokens, "model": item.response.model})
                yield sse("done", {})
    finally:
        producer.cancel()
        await stream.close()


# --------------------------------------------------------------------------- 4. webhooks


class WebhookIds:
    """Ids in a dict with their state, so a failed one can be taken again."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    def take(self, webhook_id: str) -> bool:
        mine = f"taken by delivery {len(self.state) + 1}"
        return self.state.setdefault(webhook_id, mine) is mine

    def release(self, webhook_id: str) -> None:
        self.state.pop(webhook_id, None)


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
    """Each connection keeps the id of its last answer: the conversation is chained with previous_response_id."""

    def __init__(self) -> None:
        self.last: dict[int, str | None] = {}

    async def connect(self, ws: WebSocket, client: openai.AsyncOpenAI) -> str:
        await ws.accept()
        self.last[id(ws)] = None
        return str(id(ws))

    def disconnect(self, ws: WebSocket) -> None:
        self.last.pop(id(ws), None)

    @property
    def active(self) -> int:
        return len(self.last)


async def chat_reply(ws: WebSocket, client: openai.AsyncOpenAI, manager: ChatManager, message: str) -> None:
    """Stream one answer; remember its id for the next turn."""
    previous = manager.last.get(id(ws))
    try:
        async with client.responses.stream(**{k: v for k, v in chat_turn_request(message, previous_response_id=previous).items()
                                               if k != "stream"}) as stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    await ws.send_json({"type": "delta", "text": event.delta})
                elif event.type == "response.completed":
                    manager.last[id(ws)] = event.response.id
                    u = event.response.usage
                    await ws.send_json({"type": "done", "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                                                                  "total_tokens": u.total_tokens}})
                elif event.type in ("error", "response.failed"):
                    await ws.send_json({"type": "error", "message": "Sorry, the answer broke off."})
                    return
    except openai.APIError:
        await ws.send_json({"type": "error", "message": "The assistant is unavailable; try again soon."})


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
    """The figures, with collections.Counter and a nearest-rank percentile of my own."""
    from collections import Counter, defaultdict

    def rank(values: list[float], p: int) -> float | None:
        ordered = sorted(values)
        return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)] * 1000 if ordered else None

    recent = [e for e in entries if e.at > now - window_s and e.at <= now]
    statuses = Counter(str(e.status) for e in recent)
    models: defaultdict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(("requests", "input_tokens", "output_tokens", "cost_usd"), 0))
    for e in (e for e in recent if e.model):
        row = models[e.model]
        row["requests"] += 1
        row["input_tokens"] += e.input_tokens
        row["output_tokens"] += e.output_tokens
        row["cost_usd"] += e.cost_usd
    lat = [e.latency_s for e in recent]
    first = [e.ttft_s for e in recent if e.ttft_s is not None]
    return {
        "window_s": window_s, "requests": len(recent), "requests_per_minute": len(recent) / window_s * 60,
        "latency_ms": {"p50": rank(lat, 50), "p95": rank(lat, 95)}, "ttft_ms": {"p50": rank(first, 50), "p95": rank(first, 95)},
        "status": dict(statuses), "error_rate": {k: v / len(recent) for k, v in statuses.items() if int(k) >= 400},
        "models": dict(models),
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
    upstream = client.with_options(timeout=15.0)
    limiter = ClientRateLimit(clock=clock)
    webhook_ids = WebhookIds()
    manager = ChatManager()
    app.state.chat = manager
    background_results: dict[str, str | None] = {}
    jobs: set[asyncio.Task[None]] = set()

    @app.post(paths.headlines)
    async def headlines(body: HeadlineRequest, request: Request) -> Any:
        """Three headlines for a product, or an honest status."""
        wait = limiter.retry_after(client_key(request, CONTRACT.client_header))
        if wait is not None:
            return JSONResponse({"error": {"code": "rate_limited", "message": "Too many requests; slow down."}},
                                status_code=429, headers={"Retry-After": str(math.ceil(wait))})
        try:
            result = await upstream.chat.completions.parse(
                **headline_request(body.product_name, body.key_benefit, body.target_audience, api="chat"))
            parsed = result.choices[0].message.parsed
            if parsed is None:
                raise ValueError("the model returned no headlines")
        except (openai.APIError, ValueError) as err:
            return failure_response(err)
        note_usage(request.state, result)
        return {"headlines": parsed.headlines}

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
        task = asyncio.create_task(onboard(webhook_id, event.data))
        jobs.add(task)
        task.add_done_callback(jobs.discard)
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
            await manager.connect(ws, upstream)
            while True:
                message = chat_message(await ws.receive_text())
                if message is None:
                    await ws.send_json({"type": "error", "message": 'Send {"message": "your question"}.'})
                    continue
                await chat_reply(ws, upstream, manager, message)
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
