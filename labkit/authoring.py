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
    headers: dict[str, str] = field(default_factory=dict)


def _sid(*parts: object, n: int = 24) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:n]


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

        Options: ``tool_calls`` (list of {name, arguments}), ``reasoning`` (hidden reasoning
        text, counted as reasoning tokens), ``error`` ({status, message, type, param, code}),
        ``label``, ``finish_reason``, ``cached_tokens``, ``headers``. Streams are consumed.
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
        idx = len(self.items)
        seed = _sid(self.name, idx, raw)
        path = request.url.path
        if pending.error:
            status, payload, ctype = self._error(pending.error)
        elif path.endswith("/chat/completions"):
            status, payload, ctype = self._chat(body, pending, seed)
        elif path.endswith("/responses"):
            status, payload, ctype = self._responses(body, pending, seed)
        else:
            raise RuntimeError(f"{self.name}: authoring {path} is not supported yet")
        headers = {
            "content-type": ctype,
            "x-request-id": f"req_{seed}",
            "openai-processing-ms": str(180 + 7 * (len(payload) % 97)),
            **RATE_HEADERS,
            "x-ratelimit-remaining-requests": "4999",
            "x-ratelimit-remaining-tokens": str(4_000_000 - len(raw) // 4),
            **pending.headers,
        }
        reason = httpx2.codes.get_reason_phrase(status)
        self.items.append(
            interaction_dict(
                request.method, str(request.url), raw, request.headers.multi_items(),
                status, reason, headers.items(), payload,
                provenance="authored", label=pending.label,
            )
        )
        return httpx2.Response(status, headers=headers, content=payload.encode())

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

    def _usage_numbers(self, body: dict[str, Any], p: Pending, out_text: str) -> tuple[int, int, int]:
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
        reasoning = count_tokens(p.reasoning, model) if p.reasoning else 0
        completion = (count_tokens(out_text, model) if out_text else 0) + reasoning
        return prompt, completion, reasoning

    def _chat(self, body: dict[str, Any], p: Pending, seed: str) -> tuple[int, str, str]:
        model = body.get("model", "")
        snap = SNAPSHOTS.get(model, model)
        tool_calls = None
        if p.tool_calls:
            tool_calls = [
                {
                    "id": f"call_{_sid(seed, i, n=20)}",
                    "type": "function",
                    "function": {"name": t["name"], "arguments": t["arguments"] if isinstance(t["arguments"], str) else json.dumps(t["arguments"])},
                }
                for i, t in enumerate(p.tool_calls)
            ]
        out_text = (p.reply or "") + "".join(t["function"]["name"] + t["function"]["arguments"] for t in tool_calls or [])
        prompt, completion, reasoning = self._usage_numbers(body, p, out_text)
        finish = p.finish_reason or ("tool_calls" if tool_calls else "stop")
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": p.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        cid = f"chatcmpl-{seed}"
        if not body.get("stream"):
            message = {"role": "assistant", "content": p.reply, "refusal": None, "annotations": []}
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
        prompt, completion, reasoning = self._usage_numbers(body, p, text)
        msg_id, rs_id = f"msg_{seed}", f"rs_{seed}"
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message = {"id": msg_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        output: list[dict[str, Any]] = []
        if p.reasoning:
            output.append({"id": rs_id, "type": "reasoning", "summary": []})
        output.append(message)
        fmt = (body.get("text") or {}).get("format") or {"type": "text"}
        response = {
            "id": f"resp_{seed}", "object": "response", "created_at": AUTHORED_AT, "status": "completed",
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": SNAPSHOTS.get(model, model), "output": output, "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default", "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0), "text": {"format": fmt},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": {
                "input_tokens": prompt, "input_tokens_details": {"cached_tokens": p.cached_tokens},
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
        if p.reasoning:
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
        return json.loads(path.read_text())["metadata"]["labkit"]["provenance"] == "recorded"
    except (OSError, ValueError, KeyError, TypeError):
        return False


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
