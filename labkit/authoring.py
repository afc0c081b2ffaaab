"""Author cassettes from readable sources.

A source (``cassettes/sources/NAME.py``) defines ``build(a: Author)``. It makes requests
with the real SDK through ``a.client`` (so each recorded request body is exactly what
the SDK sends) and says, with ``a.call(...)``, what the answer should be. The authoring
transport writes the answer in the API's wire format, with ``usage`` counted by tiktoken
from the actual request and reply text, and marks every exchange ``authored``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai

from . import paths
from .replay import interaction_dict, write_cassette
from .tokens import count_tokens, encoding_for

#: 2026-11-01T00:00:00Z: the "created" time of every authored answer (fixed, so rebuilds are identical).
AUTHORED_AT = 1793491200
#: Snapshot ids the API reports for an alias (as published for these models).
SNAPSHOTS = {
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o4-mini": "o4-mini-2025-04-16",
}
#: How authored numbers are derived (not measured; plausible orders of magnitude for late-2026
#: models, documented here so they can be reviewed). Reasoning tokens: at each effort, a multiple
#: of the visible output with a floor, +/-20% (seeded), in steps of 64 as the API reports them.
REASONING_PER_EFFORT: dict[str, tuple[float, int]] = {
    "none": (0.0, 0), "minimal": (0.2, 0), "low": (0.8, 64), "medium": (2.5, 192),
    "high": (6.0, 640), "xhigh": (10.0, 1_280), "max": (16.0, 2_560),
}
#: Latency: a fixed overhead, time to first token by effort (reasoning happens before the first
#: visible token), then every output token (reasoning included) at the model's speed, +/-15%.
OVERHEAD_MS = 90
FIRST_TOKEN_MS = {"": 160, "none": 170, "minimal": 220, "low": 320, "medium": 450, "high": 700, "xhigh": 1_000, "max": 1_400}
#: Output speed (tokens per second) by the model's output price: cheaper models are faster.
SPEED_BY_PRICE = ((1.0, 190.0), (3.0, 140.0), (12.0, 95.0), (float("inf"), 55.0))
#: Prompts shorter than this are never cached; cached prefixes grow in blocks of 128 tokens.
CACHE_MIN, CACHE_BLOCK = 1_024, 128

#: Illustrative rate-limit headers for authored answers (real ones come from `make record`).
RATE_HEADERS = {
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-limit-tokens": "4000000",
    "x-ratelimit-reset-requests": "12ms",
    "x-ratelimit-reset-tokens": "0s",
}


@dataclass
class Pending:
    """What the next request should be answered with."""

    reply: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning: str = ""
    error: dict[str, Any] | None = None
    status: int = 200
    label: str = ""
    finish_reason: str | None = None
    cached_tokens: int = 0
    cache: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def _sid(*parts: object, n: int = 24) -> str:
    """A stable hex id from the parts (as long as the API's own ids of that kind)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()
    while len(digest) < n:
        digest += hashlib.sha256(digest.encode()).hexdigest()
    return digest[:n]


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b62(*parts: object, n: int = 29) -> str:
    """A stable base-62 id (chat completion ids look like ``chatcmpl-`` + 29 of these)."""
    number = int(_sid(*parts, n=64), 16)
    out = []
    for _ in range(n):
        number, digit = divmod(number, 62)
        out.append(_B62[digit])
    return "".join(out)


def _unit(seed: str, salt: str) -> float:
    """A stable number in [0, 1) for seeded jitter."""
    return int(_sid(seed, salt, n=8), 16) / 16**8


def effort_of(body: dict[str, Any], model: str) -> str:
    """The effort a request runs at: as sent, else the model's default ("" for sampling models)."""
    from .catalog import UnknownModelError, get_model

    sent = body.get("reasoning_effort") or (body.get("reasoning") or {}).get("effort")
    try:
        info = get_model(model)
    except UnknownModelError:
        return str(sent or "")
    return str(sent or info.default_effort) if info.reasoning else ""


def reasoning_tokens_for(effort: str, visible: int, seed: str, limit: int | None = None) -> int:
    """Hidden reasoning tokens for a reply of ``visible`` tokens at ``effort`` (see REASONING_PER_EFFORT)."""
    ratio, floor = REASONING_PER_EFFORT.get(effort, (0.0, 0))
    if not ratio and not floor:
        return 0
    raw = max(float(floor), ratio * visible) * (0.8 + 0.4 * _unit(seed, "reasoning"))
    tokens = int(raw) // 64 * 64 if not floor else max(64, int(raw) // 64 * 64)
    if limit is not None:
        tokens = max(0, min(tokens, (limit - visible) // 64 * 64))
    return tokens


def processing_ms(model: str, effort: str, output_tokens: int, seed: str) -> int:
    """Server time for an authored answer (see OVERHEAD_MS, FIRST_TOKEN_MS, SPEED_BY_PRICE)."""
    from .catalog import UnknownModelError, get_model

    try:
        price = get_model(model).price_output or 1.0
    except UnknownModelError:
        price = 1.0
    speed = next(s for top, s in SPEED_BY_PRICE if price <= top)
    ms = OVERHEAD_MS + FIRST_TOKEN_MS.get(effort, 160) + 1000 * output_tokens / speed
    return int(ms * (0.85 + 0.3 * _unit(seed, "latency")))


def _limit_of(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_output_tokens", "max_tokens"):
        if isinstance(body.get(name), int):
            return int(body[name])
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _chunks(text: str, model: str, per: int = 3) -> list[str]:
    """Split text into stream deltas of a few tokens each, as the API does."""
    enc = encoding_for(model)
    ids = enc.encode(text, disallowed_special=())
    pieces, buf = [], b""
    for i in range(0, len(ids), per):
        buf += enc.decode_bytes(ids[i : i + per])
        try:
            pieces.append(buf.decode("utf-8"))
            buf = b""
        except UnicodeDecodeError:
            continue
    if buf:
        pieces.append(buf.decode("utf-8", "replace"))
    return pieces


def _sse(events: list[tuple[str | None, Any]]) -> str:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out)


class Renderer:
    """Writes an answer in the API's exact wire format for a request, with derived numbers.

    Used by :class:`Author` to build cassettes, and by replay's simulator to answer a request
    on a recorded task with its own model, usage and ids.
    """

    def __init__(self) -> None:
        self._out_tokens = 0

    def render(self, path: str, body: dict[str, Any], raw: bytes, pending: Pending, seed: str) -> tuple[int, str, dict[str, str]]:
        """``(status, payload, headers)`` answering ``body`` as ``pending`` says."""
        self._out_tokens = 0
        if pending.error:
            status, payload, ctype = self._error(pending.error)
        elif path.endswith("/chat/completions"):
            status, payload, ctype = self._chat(body, pending, seed)
        elif path.endswith("/responses"):
            status, payload, ctype = self._responses(body, pending, seed)
        else:
            raise RuntimeError(f"authoring {path} is not supported yet")
        model = str(body.get("model", ""))
        took = processing_ms(model, effort_of(body, model), self._out_tokens, seed) if status == 200 else 40 + int(60 * _unit(seed, "err"))
        headers = {
            "content-type": ctype,
            "x-request-id": f"req_{seed}",
            "openai-processing-ms": str(took),
            **RATE_HEADERS,
            "x-ratelimit-remaining-requests": "4999",
            "x-ratelimit-remaining-tokens": str(4_000_000 - len(raw) // 4),
            **pending.headers,
        }
        return status, payload, headers

    @staticmethod
    def _error(err: dict[str, Any]) -> tuple[int, str, str]:
        body = {
            "error": {
                "message": err["message"],
                "type": err.get("type", "invalid_request_error"),
                "param": err.get("param"),
                "code": err.get("code"),
            }
        }
        return int(err.get("status", 400)), json.dumps(body, indent=2), "application/json"

    def _usage_numbers(self, body: dict[str, Any], p: Pending, out_text: str, seed: str) -> tuple[int, int, int, int, int]:
        """(prompt, completion, reasoning, cached, cache_write): counted by tiktoken, reasoning and
        caching derived from the request (see REASONING_PER_EFFORT, CACHE_MIN)."""
        model = body.get("model", "gpt-4o")
        msgs = body.get("messages")
        if msgs is None:
            inp = body.get("input", "")
            msgs = [{"role": "user", "content": inp}] if isinstance(inp, str) else list(inp)
            if body.get("instructions"):
                msgs = [{"role": "developer", "content": body["instructions"]}, *msgs]
        msgs = [{**m, "content": _text_of(m.get("content"))} for m in msgs if isinstance(m, dict)]
        prompt = count_tokens(msgs, model)
        for extra in ("tools", "response_format", "text"):
            if body.get(extra):
                prompt += count_tokens(json.dumps(body[extra], sort_keys=True), model)
        visible = count_tokens(out_text, model) if out_text else 0
        reasoning = reasoning_tokens_for(effort_of(body, model), visible, seed, _limit_of(body))
        cacheable = prompt // CACHE_BLOCK * CACHE_BLOCK if prompt >= CACHE_MIN else 0
        cached = p.cached_tokens if p.cached_tokens else (cacheable if p.cache == "hit" else 0)
        written = cacheable if p.cache == "write" and self._writes_cost(model) else 0
        self._out_tokens = visible + reasoning
        return prompt, visible + reasoning, reasoning, cached, written

    @staticmethod
    def _writes_cost(model: str) -> bool:
        """Whether the model reports (and bills) cache writes: GPT-5.6 and later."""
        from .catalog import UnknownModelError, get_model

        try:
            info = get_model(model)
        except UnknownModelError:
            return False
        return bool(info.price_cache_write and info.price_input and info.price_cache_write > info.price_input)

    def _chat(self, body: dict[str, Any], p: Pending, seed: str) -> tuple[int, str, str]:
        model = body.get("model", "")
        snap = SNAPSHOTS.get(model, model)
        tool_calls: list[dict[str, Any]] | None = None
        if p.tool_calls:
            tool_calls = [
                {
                    "id": f"call_{_b62(seed, i, n=24)}",
                    "type": "function",
                    "function": {"name": t["name"], "arguments": t["arguments"] if isinstance(t["arguments"], str) else json.dumps(t["arguments"])},
                }
                for i, t in enumerate(p.tool_calls)
            ]
        out_text = (p.reply or "") + "".join(t["function"]["name"] + t["function"]["arguments"] for t in tool_calls or [])
        prompt, completion, reasoning, cached, written = self._usage_numbers(body, p, out_text, seed)
        finish = p.finish_reason or ("tool_calls" if tool_calls else "stop")
        prompt_details: dict[str, int] = {"cached_tokens": cached, "audio_tokens": 0}
        if self._writes_cost(model):
            prompt_details["cache_write_tokens"] = written
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        cid = f"chatcmpl-{_b62(seed)}"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": p.reply, "refusal": None, "annotations": []}
            if tool_calls:
                message["tool_calls"] = tool_calls
            payload = {
                "id": cid, "object": "chat.completion", "created": AUTHORED_AT, "model": snap,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage, "service_tier": "default", "system_fingerprint": None,
            }
            return 200, json.dumps(payload, indent=2, ensure_ascii=False), "application/json"
        base = {"id": cid, "object": "chat.completion.chunk", "created": AUTHORED_AT, "model": snap,
                "service_tier": "default", "system_fingerprint": None}
        events: list[tuple[str | None, Any]] = [
            (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}]})
        ]
        for piece in _chunks(p.reply or "", model):
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]}))
        for i, t in enumerate(tool_calls or []):
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, **t}]}, "logprobs": None, "finish_reason": None}]}))
        events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return 200, _sse(events), "text/event-stream; charset=utf-8"

    def _responses(self, body: dict[str, Any], p: Pending, seed: str) -> tuple[int, str, str]:
        model = body.get("model", "")
        text = p.reply or ""
        prompt, completion, reasoning, cached, written = self._usage_numbers(body, p, text, seed)
        msg_id, rs_id = f"msg_{_sid(seed, 'msg', n=48)}", f"rs_{_sid(seed, 'rs', n=48)}"
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {"id": msg_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        output: list[dict[str, Any]] = []
        if reasoning:
            output.append({"id": rs_id, "type": "reasoning", "summary": []})
        output.append(message)
        fmt = (body.get("text") or {}).get("format") or {"type": "text"}
        response = {
            "id": f"resp_{_sid(seed, 'resp', n=48)}", "object": "response", "created_at": AUTHORED_AT, "status": "completed",
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": SNAPSHOTS.get(model, model), "output": output, "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": effort_of(body, model) or None, "summary": (body.get("reasoning") or {}).get("summary")},
            "service_tier": "default", "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0), "text": {"format": fmt},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": {
                "input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
                "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": prompt + completion,
            },
            "user": None, "metadata": {},
        }
        if not body.get("stream"):
            return 200, json.dumps(response, indent=2, ensure_ascii=False), "application/json"
        seq = iter(range(10_000))
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        ev: list[tuple[str | None, Any]] = []

        def add(kind: str, **data: Any) -> None:
            ev.append((kind, {"type": kind, "sequence_number": next(seq), **data}))

        add("response.created", response=started)
        add("response.in_progress", response=started)
        oi = len(output) - 1
        if reasoning:
            add("response.output_item.added", output_index=0, item=output[0])
            add("response.output_item.done", output_index=0, item=output[0])
        add("response.output_item.added", output_index=oi, item={**message, "status": "in_progress", "content": []})
        add("response.content_part.added", item_id=msg_id, output_index=oi, content_index=0, part={**part, "text": ""})
        for piece in _chunks(text, model):
            add("response.output_text.delta", item_id=msg_id, output_index=oi, content_index=0, delta=piece, logprobs=[])
        add("response.output_text.done", item_id=msg_id, output_index=oi, content_index=0, text=text, logprobs=[])
        add("response.content_part.done", item_id=msg_id, output_index=oi, content_index=0, part=part)
        add("response.output_item.done", output_index=oi, item=message)
        add("response.completed", response=response)
        return 200, _sse(ev), "text/event-stream; charset=utf-8"


class Author:
    """Builds one authored cassette."""

    def __init__(self, name: str, *, note: str = "", source: str = "") -> None:
        self.name = name
        self.note = note
        self.source = source
        self.items: list[dict[str, Any]] = []
        self._pending: Pending | None = None
        transport = httpx2.MockTransport(self._handle)
        self.client = openai.OpenAI(
            api_key="authoring-no-key",
            base_url="https://api.openai.com/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )

    # ---------------------------------------------------------------- source API
    def call(self, fn: Callable[[openai.OpenAI], Any], reply: str | None = None, **opts: Any) -> Any:
        """Run ``fn(client)``; its request is answered with ``reply`` (or the options).

        Options: ``tool_calls`` (list of {name, arguments}), ``error`` ({status, message, type,
        param, code}), ``label``, ``finish_reason``, ``cache`` ("hit": the prompt's cacheable
        prefix was read from the cache; "write": it was written, on models that bill writes),
        ``headers``. Reasoning tokens and latency are derived from the request's model and effort
        (see REASONING_PER_EFFORT); ``reasoning`` and ``cached_tokens`` are accepted from older
        sources (``reasoning`` text is ignored). Streams are consumed.
        An expected error is caught and returned.
        """
        error = opts.pop("error", None)
        self._pending = Pending(reply=reply, error=error, **opts)
        try:
            result = fn(self.client)
            if isinstance(result, openai.Stream):
                result = list(result)  # consume it so the exchange completes
        except openai.APIStatusError as err:
            if error is None:
                raise
            result = err
        if self._pending is not None:
            self._pending = None
            raise RuntimeError(f"{self.name}: a.call() made no request; each call must send exactly one")
        return result

    def save(self, folder: Path | None = None) -> Path:
        """Write ``cassettes/NAME.json``."""
        meta = {"provenance": "authored", "source": self.source, "note": self.note, "authored_at": "2026-11-01"}
        return write_cassette((folder or paths.cassette_dir()) / f"{self.name}.json", self.items, meta)

    # ---------------------------------------------------------------- transport
    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError(f"{self.name}: a request was sent outside a.call(); wrap it so its answer is authored")
        raw = request.read()
        body = json.loads(raw) if raw else {}
        seed = _sid(self.name, len(self.items), raw, n=32)
        status, payload, headers = Renderer().render(request.url.path, body, raw, pending, seed)
        reason = httpx2.codes.get_reason_phrase(status)
        self.items.append(
            interaction_dict(
                request.method, str(request.url), raw, request.headers.multi_items(),
                status, reason, headers.items(), payload,
                provenance="authored", label=pending.label,
            )
        )
        return httpx2.Response(status, headers=headers, content=payload.encode())

# ---------------------------------------------------------------- building all sources


def source_dir() -> Path:
    return paths.cassette_dir() / "sources"


def build_source(src: Path, out_dir: Path | None = None) -> Path:
    """Run one source file's ``build(a)`` and write its cassette."""
    spec = importlib.util.spec_from_file_location(f"labkit_cassette_source_{src.stem}", src)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import cassette source {src}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "build"):
        raise RuntimeError(f"{src} defines no build(a: Author) function")
    try:
        rel = str(src.resolve().relative_to(paths.course_root()))
    except ValueError:
        rel = src.name
    author = Author(src.stem, note=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "", source=rel)
    module.build(author)
    return author.save(out_dir)


def is_recorded(name: str) -> bool:
    """A cassette re-recorded from the real API (``make record``) takes precedence over its source."""
    path = paths.cassette_dir() / f"{name}.json"
    try:
        provenance: object = json.loads(path.read_text())["metadata"]["labkit"]["provenance"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return provenance == "recorded"


def build_all(names: list[str] | None = None, out_dir: Path | None = None) -> list[Path]:
    """Rebuild every authored cassette (or the named ones) from ``cassettes/sources``.

    Cassettes that were re-recorded from the real API are left alone.
    """
    sources = sorted(p for p in source_dir().glob("*.py") if not p.name.startswith("_") and not is_recorded(p.stem))
    if names:
        missing = set(names) - {p.stem for p in sources}
        if missing:
            raise RuntimeError(f"no cassette source named {', '.join(sorted(missing))} in {source_dir()}")
        sources = [p for p in sources if p.stem in names]
    import sys

    folder = str(source_dir())
    sys.path.insert(0, folder)  # sources may share constants with each other
    try:
        return [build_source(p, out_dir) for p in sources]
    finally:
        sys.path.remove(folder)
