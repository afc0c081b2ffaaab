"""Streams in time: when each event of a recorded stream arrives, and replay at that pace.

A real stream is not a string: the API sends the first events at once, then nothing while the
model thinks, then a delta every few tens of milliseconds. Authored cassettes keep, per streamed
answer, the offset of every server-sent event from the moment the request was sent
(``labkit.offsets_ms``), derived from the latency model of :mod:`labkit.authoring` by
:func:`stream_offsets`; cassettes recorded from the real API keep the measured arrival times.

:class:`PacedStream` plays such an answer back event by event, waiting on a :class:`Pacer`
between events: :class:`LoopPacer` waits with ``asyncio.sleep`` (on
:class:`labkit.ratelimit.VirtualTimeLoop` that costs no real time, so nothing really sleeps in
checks and tests) or in scaled real time for a browser; a :class:`labkit.clock.Clock` works as a
pacer too. A non-streamed answer arrives whole after its ``openai-processing-ms``. A
:class:`StreamLedger` counts the answers still being delivered: a relay that leaves its upstream
open after its own client went away shows up as a stream in flight.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2

__all__ = [
    "LoopPacer",
    "PacedStream",
    "Pacer",
    "StreamLedger",
    "paced_pieces",
    "split_events",
    "stream_offsets",
]


class Pacer(Protocol):
    """Something that waits: :class:`LoopPacer`, or a :class:`labkit.clock.Clock` (instant)."""

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class LoopPacer:
    """Waits on the running event loop's clock (``asyncio.sleep``), times ``scale``.

    On a :class:`labkit.ratelimit.VirtualTimeLoop` the wait is virtual; ``scale=0.2`` plays a
    recording five times faster in real time (a browser test); sync waits use ``time.sleep``.
    """

    scale: float = 1.0

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.scale > 0:
            time.sleep(seconds * self.scale)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds * self.scale))


# --------------------------------------------------------------------------- offsets


def split_events(payload: str | bytes) -> list[bytes]:
    """A text/event-stream body as its events, each with its blank-line terminator."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


def _parse(event: bytes) -> tuple[str, Any]:
    """``(event name, data as JSON or text)`` of one server-sent event."""
    name, data = "", []
    for line in event.decode("utf-8", "replace").split("\n"):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    text = "\n".join(data)
    try:
        return name, json.loads(text)
    except ValueError:
        return name, text


def _visible(name: str, data: Any) -> str | None:
    """The visible text an event carries (a delta of text, refusal or tool arguments), else None."""
    if name == "response.output_text.delta" or name == "response.refusal.delta":
        return str(data.get("delta", "")) if isinstance(data, dict) else ""
    if name.endswith("function_call_arguments.delta"):
        return str(data.get("delta", "")) if isinstance(data, dict) else ""
    if not name and isinstance(data, dict):
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            piece = (delta.get("content") or "") + (delta.get("refusal") or "")
            piece += "".join((c.get("function") or {}).get("arguments") or "" for c in delta.get("tool_calls") or [])
            if piece:
                return piece
    return None


#: Lifecycle events the API sends as soon as it accepts the request (before any thinking).
EARLY_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"})


def stream_offsets(payload: str | bytes, *, model: str, effort: str, reasoning_tokens: int, total_ms: int,
                   seed: str) -> list[int]:
    """When each event of an authored stream arrives, in ms after the request was sent.

    Derived from :mod:`labkit.authoring`'s latency model: lifecycle events after the fixed
    overhead; the first visible delta after the effort's time to first token plus the hidden
    reasoning tokens at the model's speed; each further delta after the previous one's tokens at
    that speed (+/-40%, seeded); closing events right after the last delta. The whole is scaled
    so that the last event lands at ``total_ms`` (the answer's ``openai-processing-ms``).
    """
    from .authoring import FIRST_TOKEN_MS, OVERHEAD_MS, SPEED_BY_PRICE, _unit
    from .catalog import UnknownModelError, get_model
    from .tokens import count_tokens

    events = [_parse(e) for e in split_events(payload)]
    if not events:
        return []
    try:
        price = get_model(model).price_output or 1.0
    except UnknownModelError:
        price = 1.0
    speed = next(s for top, s in SPEED_BY_PRICE if price <= top) / 1000.0  # tokens per ms
    visible = [_visible(name, data) for name, data in events]
    first = next((i for i, v in enumerate(visible) if v is not None), len(events))
    first_at = OVERHEAD_MS + FIRST_TOKEN_MS.get(effort, 160) + reasoning_tokens / speed
    times: list[float] = []
    clock = float(first_at)
    for i, ((name, _data), piece) in enumerate(zip(events, visible)):
        if i < first:
            t = OVERHEAD_MS + i if name in EARLY_EVENTS else first_at - (first - i)
        elif piece is not None:
            if i > first:
                clock += max(1.0, count_tokens(piece, model)) / speed * (0.6 + 0.8 * _unit(seed, f"chunk{i}"))
            t = clock
        else:
            clock += 1.0
            t = clock
        times.append(max(t, times[-1] if times else 0.0))
    scale = total_ms / times[-1] if times[-1] > 0 else 1.0
    out: list[int] = []
    for t in times:
        out.append(max(int(round(t * scale)), out[-1] if out else 0))
    return out


# --------------------------------------------------------------------------- playback


@dataclass
class StreamLedger:
    """Paced answers a transport has started, and how each ended (thread-safe counters)."""

    opened: int = 0
    finished: int = 0
    closed_early: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def in_flight(self) -> int:
        """Answers still being delivered: started, neither read to the end nor closed."""
        with self._lock:
            return self.opened - self.finished - self.closed_early

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)


class PacedStream(httpx2.AsyncByteStream, httpx2.SyncByteStream):
    """A response body delivered in pieces, each after its wait on the pacer.

    ``pieces`` are ``(seconds to wait before it, bytes)``. Reading to the end counts as
    *finished* in the ledger; closing before that as *closed early*; ``delivered`` is how many
    pieces went out.
    """

    def __init__(self, pieces: Sequence[tuple[float, bytes]], pacer: Pacer, ledger: StreamLedger | None = None) -> None:
        self.pieces = list(pieces)
        self.pacer = pacer
        self.ledger = ledger or StreamLedger()
        self.delivered = 0
        self.state = "open"
        self.ledger._count("opened")

    def _end(self, state: str) -> None:
        if self.state == "open":
            self.state = state
            self.ledger._count(state)

    def __iter__(self) -> Iterator[bytes]:
        for wait, piece in self.pieces[self.delivered:]:
            self.pacer.sleep(wait)
            self.delivered += 1
            yield piece
        self._end("finished")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for wait, piece in self.pieces[self.delivered:]:
            await self.pacer.asleep(wait)
            self.delivered += 1
            yield piece
        self._end("finished")

    def close(self) -> None:
        self._end("finished" if self.delivered >= len(self.pieces) else "closed_early")

    async def aclose(self) -> None:
        self.close()


def paced_pieces(content: bytes, offsets_ms: Sequence[int], processing_ms: float | None) -> list[tuple[float, bytes]]:
    """``(wait, bytes)`` pieces for a recorded body: one per event at its offset, or the whole body
    after ``processing_ms`` when there are no offsets (a JSON answer)."""
    events = split_events(content) if offsets_ms else []
    if events and len(events) == len(offsets_ms):
        waits, before = [], 0
        for at in offsets_ms:
            waits.append(max(0, at - before) / 1000.0)
            before = max(before, at)
        return list(zip(waits, events))
    return [(max(0.0, (processing_ms or 0.0) / 1000.0), content)]


# --------------------------------------------------------------------------- authoring aids


def with_stream_error(payload: str, offsets: Sequence[int], spec: dict[str, Any]) -> tuple[str, list[int]]:
    """A stream cut short by an error after ``spec["after"]`` visible deltas, as the API sends it.

    ``spec``: ``after`` (deltas delivered first), ``code`` and ``message``, and for the Responses
    API ``event``: ``"error"`` (an ``error`` event) or ``"response.failed"`` (the response object,
    failed). Chat Completions streams end with a ``data: {"error": {...}}`` line. Offsets are cut
    with the payload; the error arrives 40 ms after the last delta.
    """
    events = split_events(payload)
    parsed = [_parse(e) for e in events]
    after = int(spec.get("after", 0))
    kept, seen = 0, 0
    for i, (name, data) in enumerate(parsed):
        if _visible(name, data) is not None:
            if seen == after:
                break
            seen += 1
        kept = i + 1
    code, message = spec.get("code", "server_error"), spec.get("message", "The server had an error while processing your request.")
    is_responses = any(name.startswith("response.") for name, _ in parsed)
    sequence = sum(1 for name, _ in parsed[:kept] if name)
    tail: list[str] = []
    if not is_responses:
        tail.append("data: " + json.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": code}},
                                          separators=(",", ":")) + "\n\n")
    elif spec.get("event", "error") == "response.failed":
        created = next(data for name, data in parsed if name == "response.created")["response"]
        failed = {**created, "status": "failed", "error": {"code": code, "message": message}}
        tail.append("event: response.failed\ndata: " + json.dumps(
            {"type": "response.failed", "sequence_number": sequence, "response": failed},
            ensure_ascii=False, separators=(",", ":")) + "\n\n")
    else:
        tail.append("event: error\ndata: " + json.dumps(
            {"type": "error", "code": code, "message": message, "param": None, "sequence_number": sequence},
            separators=(",", ":")) + "\n\n")
    text = b"".join(events[:kept]).decode("utf-8") + "".join(tail)
    cut = list(offsets[:kept])
    last = cut[-1] if cut else 0
    return text, cut + [last + 40 * (i + 1) for i in range(len(tail))] if offsets else []


def queued_response(payload: str) -> str:
    """A Responses API answer as ``background=True`` returns it at once: queued, no output yet."""
    data = json.loads(payload)
    data.update(status="queued", background=True, output=[], usage=None)
    return json.dumps(data, indent=2, ensure_ascii=False)
