"""Web pieces for lesson 08: serving an app on 127.0.0.1, an SMTP sink, signed webhooks, a request log.

What the learner's FastAPI app (``exercises/ex08_streaming_web.py``) is given, and what the
notebook, the checks, the tests and ``bench/streaming.py`` run it with:

* :func:`serve`: the app on uvicorn at ``http://127.0.0.1:PORT`` in a background thread.
* :class:`SmtpSink` (aiosmtpd on 127.0.0.1, keeps every message it receives) and
  :class:`SmtpMailer` (sends through it with :mod:`smtplib`); :class:`MemoryMailer` keeps
  messages in a list, for graded runs, which may not open sockets.
* :func:`sign_webhook`: the Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``) that OpenAI's SDK verifies in ``client.webhooks.verify_signature``.
* :func:`sse` and :func:`parse_sse`: server-sent event frames, written and read.
* :class:`RequestLog` and :func:`log_requests`: one :class:`LogEntry` per HTTP request the app
  answers (status, latency, time to first token, model, tokens, cost): the dashboard's only source.
* :class:`AsgiClient`: drives an ASGI app in-process (HTTP, server-sent events, WebSockets, a
  client that goes away), on whatever event loop runs it; on
  :class:`labkit.ratelimit.VirtualTimeLoop` every wait is virtual.
* :func:`upstream_client` and :func:`upstream_app`: the recordings played back at their recorded
  pace, as an ``AsyncOpenAI`` or as an HTTP server (a local stand-in for the API).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import math
import selectors
import smtplib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, TypeVar, TypeVarTuple

import httpx2
import openai

from .ratelimit import VirtualTimeLoop, _Selector
from .streams import LoopPacer, Pacer

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

__all__ = [
    "HEARTBEAT",
    "AsgiClient",
    "Exchange",
    "LogEntry",
    "Mailer",
    "MemoryMailer",
    "RequestLog",
    "SmtpMailer",
    "SmtpSink",
    "WsSession",
    "client_key",
    "log_requests",
    "note_usage",
    "page",
    "parse_sse",
    "percentile",
    "run_web_virtual",
    "screenshot",
    "serve",
    "sign_webhook",
    "sse",
    "upstream_app",
    "upstream_client",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PAGES = Path(__file__).resolve().parent / "web_pages"


# --------------------------------------------------------------------------- server-sent events

#: A heartbeat: an SSE comment line, ignored by every SSE parser, that keeps proxies from closing an idle stream.
HEARTBEAT = ": ping\n\n"


def sse(event: str, data: Any) -> str:
    """One server-sent event: ``event: NAME`` and one ``data:`` line of JSON (so newlines in text are safe)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """The events of a text/event-stream body, in order: ``(name, data)``; a comment is ``(":", its text)``.

    Data lines of one event are joined with newlines and parsed as JSON when they are JSON.
    An event without an ``event:`` line is named ``message``, as EventSource names it.
    """
    out: list[tuple[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data, comments = "", [], []
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if not data and not name:
            out.extend((":", c) for c in comments)
            continue
        raw = "\n".join(data)
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out.append((name or "message", value))
    return out


# --------------------------------------------------------------------------- webhooks


def sign_webhook(payload: bytes | str, secret: str, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for ``payload``, as OpenAI (and Svix, and many others) send them.

    The signature is HMAC-SHA256 over ``"{msg_id}.{timestamp}.{payload}"`` with the secret's bytes
    (base64 after ``whsec_``), base64-encoded as ``v1,<sig>``. ``timestamp`` defaults to now.
    """
    body = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


# --------------------------------------------------------------------------- email


class Mailer(Protocol):
    """Where the app's email goes: ``await mailer.send(message)``."""

    async def send(self, message: EmailMessage) -> None: ...


@dataclass
class MemoryMailer:
    """Keeps every message in ``sent`` (graded runs cannot open sockets; tests use :class:`SmtpSink`)."""

    sent: list[EmailMessage] = field(default_factory=list)

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


@dataclass(frozen=True)
class SmtpMailer:
    """Sends through an SMTP server (``smtplib`` in a worker thread, so the event loop keeps serving)."""

    host: str = "127.0.0.1"
    port: int = 25
    timeout: float = 10.0

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.send_message(message)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send, message)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives::

        with SmtpSink() as sink:
            mailer = SmtpMailer(port=sink.port)
            ...
            sink.wait_for(1)  # the parsed messages
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        parsed = message_from_bytes(content if isinstance(content, bytes) else content.encode(), policy=policy.default)
        with self._arrived:
            self.messages.append(parsed)  # policy.default parses to EmailMessage
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages once ``count`` have arrived (raises TimeoutError after ``timeout`` seconds)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"{len(self.messages)} of {count} emails arrived at the SMTP sink within {timeout:g} s")
            return list(self.messages)


# --------------------------------------------------------------------------- the request log


@dataclass(frozen=True)
class LogEntry:
    """One answered request: when it ended (``at``, on the app's clock), what it was and what it cost."""

    at: float
    method: str
    route: str
    status: int
    latency_s: float
    ttft_s: float | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class RequestLog:
    """The app's own request log (thread-safe, append-only, bounded to the last ``keep`` entries)."""

    def __init__(self, keep: int = 100_000) -> None:
        self.keep = keep
        self._entries: list[LogEntry] = []
        self._lock = threading.Lock()

    def add(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            if len(self._entries) > self.keep:
                del self._entries[: len(self._entries) - self.keep]

    @property
    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def note_usage(state: Any, result: Any) -> None:
    """Put a model answer's model and usage on ``request.state`` (either API), for the request log."""
    usage = getattr(result, "usage", None)
    if usage is None:
        return
    state.model = getattr(result, "model", None)
    state.usage = {
        "input_tokens": int(getattr(usage, "input_tokens", None) or getattr(usage, "prompt_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "output_tokens", None) or getattr(usage, "completion_tokens", 0) or 0),
    }


def _cost(model: str | None, usage: dict[str, int]) -> float:
    from .catalog import UnknownModelError
    from .costs import cost

    if not model or not usage:
        return 0.0
    try:
        return cost({"prompt_tokens": usage.get("input_tokens", 0), "completion_tokens": usage.get("output_tokens", 0)},
                    model).total_usd
    except (UnknownModelError, KeyError, ValueError):
        return 0.0


def log_requests(app: Any, log: RequestLog, clock: Callable[[], float] = time.monotonic, *, skip: Sequence[str] = ()) -> None:
    """Add a middleware to a Starlette/FastAPI app that writes one :class:`LogEntry` per HTTP request.

    Requests to the paths in ``skip`` (the dashboard and its own polling) are not logged.
    Latency runs from the request's arrival to the last byte of the response (a stream's end).
    Handlers add what only they know on ``request.state``: ``model`` and ``usage``
    (``{"input_tokens", "output_tokens"}``, see :func:`note_usage`), and for a stream
    ``first_token_at`` (the clock's time when the first token went out).
    """

    class _LogMiddleware:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope.get("path") in skip:
                await self.inner(scope, receive, send)
                return
            start = clock()
            state = scope.setdefault("state", {})
            seen: dict[str, Any] = {"status": 500, "done": False}

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    seen["status"] = int(message["status"])
                await send(message)

            try:
                await self.inner(scope, receive, watch)
            finally:
                end = clock()
                usage = dict(state.get("usage") or {})
                model = state.get("model")
                first = state.get("first_token_at")
                log.add(LogEntry(
                    at=end, method=str(scope.get("method", "")), route=str(scope.get("path", "")), status=seen["status"],
                    latency_s=max(0.0, end - start), ttft_s=None if first is None else max(0.0, first - start),
                    model=model, input_tokens=int(usage.get("input_tokens", 0)), output_tokens=int(usage.get("output_tokens", 0)),
                    cost_usd=_cost(model, usage),
                ))

    app.add_middleware(_LogMiddleware)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least p% of the values at or below it); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def client_key(request: Any, header: str = "x-client-id") -> str:
    """Who is calling: the ``X-Client-Id`` header (an API key's id, a user id) if sent, else the peer address."""
    sent = request.headers.get(header)
    if sent:
        return str(sent)[:128]
    return str(request.client.host) if request.client else "unknown"


def page(name: str) -> str:
    """A page the course ships (``chat`` or ``dashboard``): plain HTML, CSS and JavaScript, nothing fetched."""
    return (PAGES / f"{name}.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- virtual time with threads


class ThreadAwareLoop(VirtualTimeLoop):
    """A :class:`labkit.ratelimit.VirtualTimeLoop` that never jumps ahead while work it handed to a
    thread (``run_in_executor``, ``asyncio.to_thread``: the SDK's first request does one) is still
    running: it waits for the thread instead, so virtual timers cannot overtake real work."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self.threads_pending = 0
        assert isinstance(self._selector, _Selector)
        self._selector = _ThreadAwareSelector(self._selector, self)

    def run_in_executor(self, executor: Any, func: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self.threads_pending += 1

        def done(_: asyncio.Future[T]) -> None:
            self.threads_pending -= 1

        future.add_done_callback(done)
        return future


class _ThreadAwareSelector(_Selector):
    def __init__(self, wrapped: _Selector, loop: ThreadAwareLoop) -> None:
        super().__init__(wrapped._real, loop)
        self._aware = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._aware.threads_pending and timeout != 0:
            return self._real.select(None)  # a thread's result wakes us through the loop's self-pipe
        return super().select(timeout)


def run_web_virtual(coro: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run a coroutine on a fresh :class:`ThreadAwareLoop` whose clock reads ``start`` (in a helper
    thread if a loop is running here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=lambda: ThreadAwareLoop(start)) as runner:
            return runner.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="labkit-web-virtual") as pool:
        return pool.submit(lambda: run_web_virtual(coro, start=start)).result()


# --------------------------------------------------------------------------- serving on 127.0.0.1


@contextlib.contextmanager
def serve(app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> Iterator[str]:
    """Run ``app`` on uvicorn at ``http://host:port`` in a background thread; yields the base URL.

    Stops the server (and waits for its thread) when the block ends.
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="auto", ws="websockets-sansio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="labkit-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host} (see its log above)")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


#: Debian's Chromium (playwright drives it; it cannot download a browser of its own here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def screenshot(url: str, path: str | Path, *, steps: Callable[[Any], None] | None = None, size: tuple[int, int] = (1000, 640),
               chromium: str = CHROMIUM) -> Path | None:
    """Open ``url`` in headless Chromium, run ``steps(page)`` (playwright's sync Page), save a PNG.

    Runs in a helper thread, so it works inside a notebook's event loop. None when Chromium is not
    installed (``apt-get install -y chromium``).
    """
    if not Path(chromium).exists():
        return None

    def shoot() -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.goto(url)
                if steps is not None:
                    steps(page)
                page.screenshot(path=str(path), full_page=True)
            finally:
                browser.close()

    with ThreadPoolExecutor(1, thread_name_prefix="labkit-screenshot") as pool:
        pool.submit(shoot).result()
    return Path(path)


# --------------------------------------------------------------------------- in-process ASGI


@dataclass
class Exchange:
    """One HTTP request through :class:`AsgiClient`: the answer and when each part of it arrived."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    sent_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    disconnected_at: float | None = None
    raised: BaseException | None = None

    @property
    def body(self) -> bytes:
        return b"".join(c for _, c in self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[tuple[float, str, Any]]:
        """Server-sent events with the time their chunk arrived: ``(t, name, data)`` (comments: name ``":"``)."""
        out: list[tuple[float, str, Any]] = []
        pending = ""
        for at, chunk in self.chunks:
            pending += chunk.decode("utf-8", "replace")
            if "\n\n" not in pending:
                continue
            complete, _, pending = pending.rpartition("\n\n")
            out += [(at, name, data) for name, data in parse_sse(complete + "\n\n")]
        return out


#: A response of more pieces than this, or one still running after this many real seconds, is a runaway loop.
RUNAWAY_CHUNKS = 5_000
RUNAWAY_S = 20.0


class AsgiClient:
    """Drives an ASGI app in-process, on the running event loop (its clock is the loop's)::

        async with AsgiClient(app) as web:
            got = await web.request("POST", "/api/headlines", json={...})
            async with web.websocket("/ws/chat") as ws: ...

    Runs the app's lifespan. HTTP requests speak ASGI 2.3 as uvicorn does: a client that goes away
    (``disconnect_when``) is announced through ``receive()``, and what the app sends after that is dropped.
    """

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.app = app
        self.client = client
        self._lifespan: asyncio.Task[None] | None = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

    async def __aenter__(self) -> AsgiClient:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

        async def run() -> None:
            with contextlib.suppress(Exception):
                await self.app(scope, self._to_app.get, self._from_app.put)

        self._lifespan = asyncio.ensure_future(run())
        await self._to_app.put({"type": "lifespan.startup"})
        reply = await self._lifespan_reply()
        if reply is not None and reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the app's startup failed: {reply.get('message', '')}")
        return self

    async def _lifespan_reply(self) -> Message | None:
        getter = asyncio.ensure_future(self._from_app.get())
        assert self._lifespan is not None
        done, _ = await asyncio.wait({getter, self._lifespan}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        return None  # the app does not speak lifespan

    async def __aexit__(self, *exc: object) -> None:
        if self._lifespan is not None and not self._lifespan.done():
            await self._to_app.put({"type": "lifespan.shutdown"})
            await self._lifespan_reply()
            self._lifespan.cancel()

    def _scope(self, kind: str, method: str, path: str, headers: dict[str, str] | None) -> Scope:
        raw_path, _, query = path.partition("?")
        return {
            "type": kind, "asgi": {"version": "3.0", "spec_version": "2.3" if kind == "http" else "2.4"},
            "http_version": "1.1", "method": method.upper(), "scheme": "http" if kind == "http" else "ws",
            "path": raw_path, "raw_path": raw_path.encode(), "query_string": query.encode(), "root_path": "",
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
            "client": self.client, "server": ("127.0.0.1", 8000), "subprotocols": [],
        }

    async def request(
        self, method: str, path: str, *, json_body: Any = None, content: bytes | str = b"",
        headers: dict[str, str] | None = None, disconnect_when: Callable[[Exchange], bool] | None = None,
        timeout: float = 600.0,
    ) -> Exchange:
        """Send one request and collect the answer (``timeout`` in the loop's seconds)."""
        loop = asyncio.get_running_loop()
        hdrs = dict(headers or {})
        body = content.encode() if isinstance(content, str) else content
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("content-type", "application/json")
        hdrs.setdefault("content-length", str(len(body)))
        hdrs.setdefault("host", "127.0.0.1:8000")
        got = Exchange(sent_at=loop.time())
        gone = asyncio.Event()
        first = True
        deadline = time.monotonic() + RUNAWAY_S

        async def receive() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if got.disconnected_at is not None:
                return  # the client went away: nobody reads this
            if message["type"] == "http.response.start":
                got.status = int(message["status"])
                got.started_at = loop.time()
                got.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                if len(got.chunks) > RUNAWAY_CHUNKS or time.monotonic() > deadline:
                    raise RuntimeError(f"runaway response: {len(got.chunks)} pieces, and the clock stands still (a loop that never waits?)")
                chunk = bytes(message.get("body", b""))
                if chunk:
                    got.chunks.append((loop.time(), chunk))
                if not message.get("more_body", False):
                    got.ended_at = loop.time()
                    gone.set()
                elif disconnect_when is not None and disconnect_when(got):
                    got.disconnected_at = loop.time()
                    gone.set()

        try:
            await asyncio.wait_for(self.app(self._scope("http", method, path, hdrs), receive, send), timeout)
        except Exception as err:  # noqa: BLE001 - an app that raises is what the caller wants to see
            got.raised = err
        finally:
            gone.set()
        return got

    def websocket(self, path: str, headers: dict[str, str] | None = None) -> WsSession:
        return WsSession(self, path, headers)


class WsSession:
    """One WebSocket connection to an app driven by :class:`AsgiClient` (messages are JSON text)."""

    def __init__(self, web: AsgiClient, path: str, headers: dict[str, str] | None) -> None:
        self.web = web
        self.path = path
        self.headers = headers
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.accepted = False
        self.closed: int | None = None
        self.gone = False
        self.task: asyncio.Task[None] | None = None
        self.raised: BaseException | None = None

    async def __aenter__(self) -> WsSession:
        scope = self.web._scope("websocket", "GET", self.path, self.headers)

        async def receive() -> Message:
            return await self.inbox.get()

        async def send(message: Message) -> None:
            if self.gone:
                raise OSError("the WebSocket client has gone away")
            await self.outbox.put(message)

        async def run() -> None:
            try:
                await self.web.app(scope, receive, send)
            except Exception as err:  # noqa: BLE001 - kept for the caller to inspect
                self.raised = err
            finally:
                await self.outbox.put({"type": "websocket.close", "code": 1011 if self.raised else 1000})

        self.task = asyncio.ensure_future(run())
        await self.inbox.put({"type": "websocket.connect"})
        first = await self.outbox.get()
        if first["type"] != "websocket.accept":
            self.closed = int(first.get("code", 1000))
            raise ConnectionError(f"the app refused the WebSocket ({first['type']}, code {self.closed})")
        self.accepted = True
        return self

    async def send_json(self, data: Any) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": json.dumps(data)})

    async def send_text(self, text: str) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": text})

    async def receive(self, timeout: float = 120.0) -> Any:
        """The next message the app sent, JSON-decoded; ConnectionError once the app closed the socket."""
        if self.closed is not None:
            raise ConnectionError(f"the app closed the WebSocket (code {self.closed})")
        message = await asyncio.wait_for(self.outbox.get(), timeout)
        if message["type"] == "websocket.close":
            self.closed = int(message.get("code", 1000))
            raise ConnectionError(f"the app closed the WebSocket (code {self.closed})")
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", "replace")
        try:
            return json.loads(text)
        except ValueError:
            return text

    async def receive_until(self, *kinds: str, timeout: float = 120.0) -> list[Any]:
        """Messages up to and including the first whose ``type`` is one of ``kinds``."""
        got: list[Any] = []
        while True:
            message = await self.receive(timeout)
            got.append(message)
            if len(got) > RUNAWAY_CHUNKS:
                raise RuntimeError(f"runaway WebSocket: {len(got)} messages without {' or '.join(kinds)}")
            if isinstance(message, dict) and message.get("type") in kinds:
                return got

    async def disconnect(self, code: int = 1001, wait: float = 30.0) -> None:
        """The client goes away: the app's next receive sees it, its next send fails."""
        self.gone = True
        await self.inbox.put({"type": "websocket.disconnect", "code": code})
        if self.task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.task), wait)

    async def __aexit__(self, *exc: object) -> None:
        if not self.gone:
            await self.disconnect(1000)


# --------------------------------------------------------------------------- the upstream, in time


def upstream_client(cassette: str | Sequence[str] = "ex08", *, pace: Pacer | None = None, max_retries: int = 0,
                    **kwargs: Any) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` for the app: in replay mode the recordings at their recorded pace (``pace``,
    default real time on the running loop); live or record mode as ``labkit.client`` gives it."""
    from .modes import attach_transport, client, current_mode
    from .replay import ReplayTransport

    if current_mode() != "replay":
        return client(cassette if isinstance(cassette, str) else cassette[0], async_=True, max_retries=max_retries, **kwargs)
    names = [cassette] if isinstance(cassette, str) else list(cassette)
    transport = ReplayTransport(names, pace=pace or LoopPacer())
    made = openai.AsyncOpenAI(api_key="replay-mode-no-key", base_url="https://api.openai.com/v1", max_retries=max_retries,
                              http_client=httpx2.AsyncClient(transport=transport), **kwargs)
    attach_transport(made, transport)
    return made


def upstream_app(cassette: str | Sequence[str] = "ex08", *, pace: Pacer | None = None) -> ASGIApp:
    """A local stand-in for the API: an ASGI app answering ``/v1/...`` from the recordings, streams
    at their recorded pace (``GET /labkit/stats``: requests and streams in flight). Serve it with :func:`serve`."""
    from .replay import ReplayMiss, ReplayTransport

    names = [cassette] if isinstance(cassette, str) else list(cassette)
    transport = ReplayTransport(names, pace=pace or LoopPacer())
    counts = {"requests": 0, "misses": 0}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/labkit/stats":
            stats = {**counts, "in_flight": transport.ledger.in_flight, "opened": transport.ledger.opened}
            await _send_json(send, 200, stats)
            return
        counts["requests"] += 1
        query = scope.get("query_string", b"").decode()
        url = "https://api.openai.com" + scope["path"] + (f"?{query}" if query else "")
        request = httpx2.Request(scope["method"], url, content=body, headers={"content-type": "application/json"})
        try:
            answer = transport.handle_request(request)
        except ReplayMiss as err:
            counts["misses"] += 1
            await _send_json(send, 400, {"error": {"message": str(err), "type": "invalid_request_error", "code": "replay_miss"}})
            return
        headers = [(k.encode(), v.encode()) for k, v in answer.headers.items() if k not in ("content-length", "transfer-encoding")]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
        stream = answer.stream
        try:
            async for piece in stream:  # type: ignore[union-attr]  # a PacedStream is async-iterable
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await stream.aclose()  # type: ignore[union-attr]

    return app


async def _send_json(send: Send, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
