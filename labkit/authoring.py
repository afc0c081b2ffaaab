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


def _json_or_none(raw: bytes) -> Any:
    """A request body as JSON; ``{}`` when empty; None when it is not JSON (a file upload)."""
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


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
    #: for endpoint modules (labkit/endpoints/): what the source says the answer is about
    data: dict[str, Any] = field(default_factory=dict)
    #: never served by the simulator (a recording made for a check's wrong answer)
    exact_only: bool = False
    #: the model declines: Chat Completions' ``message.refusal``, a Responses ``refusal`` content part
    refusal: str | None = None
    #: earlier conversation items the API reads again (``previous_response_id``, ``conversation``):
    #: billed as input tokens like the request's own input
    context: list[dict[str, Any]] = field(default_factory=list)
    #: keep when each event of a streamed answer arrives (``offsets_ms``, see :mod:`labkit.streams`)
    timed: bool = False
    #: cut a streamed answer short with an error: {after, code, message, event} (see labkit.streams)
    stream_error: dict[str, Any] | None = None
    #: how sure the model is of each labelled value of a JSON answer (field -> probability): the
    #: token logprobs a request with ``logprobs`` gets are derived from it (see :func:`token_logprobs`)
    confidence: dict[str, float] = field(default_factory=dict)


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


#: Fields of an input item that identify it rather than say something: not billed as tokens.
ITEM_METADATA = ("id", "status")


def _billed(item: dict[str, Any]) -> dict[str, Any]:
    """An input item without its metadata (an item sent back from an earlier answer carries its id)."""
    if not any(key in item for key in ITEM_METADATA):
        return item
    return {k: v for k, v in item.items() if k not in ITEM_METADATA}


def _compacted_tokens(item: Any) -> int:
    """The context a ``compaction`` input item stands for (see labkit/endpoints/compaction.py)."""
    if not isinstance(item, dict) or item.get("type") != "compaction":
        return 0
    from .endpoints.compaction import CHARS_PER_TOKEN

    return len(str(item.get("encrypted_content") or "")) // CHARS_PER_TOKEN


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


# --------------------------------------------------------------------------- token logprobs

#: A token the model was all but sure of gets ln(1 - e), e seeded below this.
CERTAIN_EPSILON = 1e-4


def _enum_values(schema: Any, name: str) -> list[str]:
    """The values a JSON schema allows for property ``name`` anywhere in it (``$ref`` resolved), or []."""
    if not isinstance(schema, dict):
        return []
    defs = schema.get("$defs") or schema.get("definitions") or {}

    def resolve(node: Any) -> Any:
        for _ in range(8):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                break
            node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        return node

    stack: list[Any] = [schema]
    while stack:
        node = resolve(stack.pop())
        if not isinstance(node, dict):
            continue
        props: dict[str, Any] = node["properties"] if isinstance(node.get("properties"), dict) else {}
        found = resolve(props.get(name))
        if isinstance(found, dict) and isinstance(found.get("enum"), list):
            return [str(v) for v in found["enum"]]
        stack.extend(props.values())
    return []


def _schema_of(body: dict[str, Any]) -> Any:
    fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        return fmt["json_schema"].get("schema")
    return fmt.get("schema") if isinstance(fmt, dict) else None


def value_spans(text: str, fields: list[str]) -> dict[str, tuple[int, int]]:
    """Byte spans of top-level string values in a JSON answer: ``"urgency":"high"`` -> the bytes of ``high``."""
    import re

    spans: dict[str, tuple[int, int]] = {}
    for name in fields:
        m = re.search(re.escape(json.dumps(name)) + r'\s*:\s*"((?:[^"\\]|\\.)*)"', text)
        if m:
            start = len(text[: m.start(1)].encode("utf-8"))
            spans[name] = (start, start + len(m.group(1).encode("utf-8")))
    return spans


def token_logprobs(text: str, model: str, seed: str, confidence: dict[str, float], *, top: int = 0,
                   schema: Any = None) -> list[dict[str, Any]]:
    """The ``logprobs.content`` of an answer: one entry per token of ``text`` (tiktoken), derived.

    The first token of each labelled value (``confidence``: field -> probability of the value the
    answer gives) carries ln(probability); every other token ln(1 - e), e seeded under
    CERTAIN_EPSILON. With ``top`` > 0 each entry lists that many alternatives, the chosen token
    first; a labelled value's alternatives are the first tokens of the other values its schema's
    enum allows, sharing what the chosen value leaves; other alternatives are far less likely.
    """
    import math

    enc = encoding_for(model)
    spans = value_spans(text, list(confidence))
    firsts = {start: name for name, (start, _end) in spans.items()}
    out: list[dict[str, Any]] = []
    pos = 0
    for i, tid in enumerate(enc.encode(text, disallowed_special=())):
        raw = enc.decode_single_token_bytes(tid)
        try:
            token = raw.decode("utf-8")
        except UnicodeDecodeError:
            token = "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
        name = next((n for start, n in firsts.items() if pos <= start < pos + len(raw)), None)
        if name is not None:
            p = min(max(float(confidence[name]), 1e-9), 1.0)
            logprob = math.log(p)
        else:
            p = 1.0 - CERTAIN_EPSILON * _unit(seed, f"logprob{i}")
            logprob = math.log(p)
        entry: dict[str, Any] = {"token": token, "logprob": logprob, "bytes": list(raw), "top_logprobs": []}
        if top > 0:
            alts: list[tuple[str, float]] = []
            if name is not None:
                chosen = json.loads(text)[name] if text.lstrip().startswith("{") else None
                others = [v for v in _enum_values(schema, name) if v != chosen]
                left = 1.0 - p
                for k, value in enumerate(others):
                    share = left * (0.7 if k == 0 else 0.3 / max(1, len(others) - 1))
                    if share > 0:
                        alts.append((enc.decode([enc.encode(value)[0]]), math.log(share)))
            k = 1
            while len(alts) < top - 1:
                alt = enc.decode([(tid + 7 * k) % enc.n_vocab])
                if alt != token and alt not in {a for a, _ in alts}:
                    alts.append((alt, -(14.0 + k + _unit(seed, f"alt{i}.{k}"))))
                k += 1
            entry["top_logprobs"] = [{"token": token, "logprob": logprob, "bytes": list(raw)}] + [
                {"token": a, "logprob": lp, "bytes": list(a.encode("utf-8"))} for a, lp in alts[: top - 1]
            ]
        out.append(entry)
        pos += len(raw)
    return out


# --------------------------------------------------------------------------- prompt caching


def prompt_token_ids(body: dict[str, Any], model: str | None = None) -> list[int]:
    """A request's prompt as the cache reads it: the tools and the output schema, then each message
    (three marker tokens, its role, its text) in order. GPT-6.2 models read top-level
    ``instructions`` after the input, earlier models before it."""
    model = model or str(body.get("model", ""))
    enc = encoding_for(model)
    ids: list[int] = []
    for extra in ("tools", "response_format", "text"):
        if body.get(extra):
            ids += enc.encode(json.dumps(body[extra], sort_keys=True), disallowed_special=())
    msgs = body.get("messages")
    if msgs is None:
        inp = body.get("input", "")
        msgs = [{"role": "user", "content": inp}] if isinstance(inp, str) else list(inp)
        if body.get("instructions"):
            lead = {"role": "developer", "content": body["instructions"]}
            msgs = [*msgs, lead] if model.startswith("gpt-6.2") else [lead, *msgs]
    for m in msgs:
        if isinstance(m, dict):
            ids += [-1, -1, -1]
            ids += enc.encode(str(m.get("role") or m.get("type") or ""), disallowed_special=())
            ids += enc.encode(_text_of(m.get("content")) or json.dumps(_billed(m), sort_keys=True), disallowed_special=())
    return ids


def cached_prefix(ids: list[int], earlier: list[list[int]]) -> int:
    """What the cache serves a prompt: its longest prefix shared with an earlier one, in blocks of
    CACHE_BLOCK tokens, nothing under CACHE_MIN."""
    best = 0
    for other in earlier:
        n = 0
        for a, b in zip(ids, other):
            if a != b:
                break
            n += 1
        best = max(best, n)
    return best // CACHE_BLOCK * CACHE_BLOCK if best >= CACHE_MIN else 0


def _stable_multipart(raw: bytes, headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
    """A file upload with its random multipart boundary replaced by one derived from the content
    (so a rebuilt cassette is byte-identical); other requests unchanged."""
    for key, value in headers:
        if key.lower() == "content-type" and value.startswith("multipart/form-data") and "boundary=" in value:
            old = value.split("boundary=", 1)[1].split(";")[0].strip().strip('"')
            new = "labkit" + hashlib.sha256(raw.replace(old.encode(), b"")).hexdigest()[:26]
            fixed = [(k, v.replace(old, new) if k.lower() == "content-type" else v) for k, v in headers]
            return raw.replace(old.encode(), new.encode()), fixed
    return raw, headers


class Renderer:
    """Writes an answer in the API's exact wire format for a request, with derived numbers.

    Used by :class:`Author` to build cassettes, and by replay's simulator to answer a request
    on a recorded task with its own model, usage and ids.
    """

    def __init__(self) -> None:
        self._out_tokens = 0
        self._reasoning_tokens = 0
        #: when each event of the last streamed answer arrives, in ms (``Pending.timed``)
        self.offsets: list[int] | None = None

    def render(self, path: str, body: Any, raw: bytes, pending: Pending, seed: str,
               method: str = "POST") -> tuple[int, str, dict[str, str]]:
        """``(status, payload, headers)`` answering ``body`` as ``pending`` says."""
        from .endpoints import find

        self._out_tokens = 0
        handler = None if pending.error else find(method, path)
        if pending.error:
            status, payload, ctype = self._error(pending.error)
        elif handler is not None:
            status, payload, ctype = handler(self, method, path, body, raw, pending, seed)
        elif method == "POST" and path.endswith("/chat/completions"):
            status, payload, ctype = self._chat(body, pending, seed)
        elif method == "POST" and path.endswith("/responses"):
            status, payload, ctype = self._responses(body, pending, seed)
        else:
            raise RuntimeError(f"authoring {method} {path} is not supported yet: add a module to labkit/endpoints/")
        body = body if isinstance(body, dict) else {}
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
        if status == 200 and (pending.timed or pending.stream_error or body.get("background")):
            payload = self._in_time(path, body, payload, headers, pending, seed, took)
        return status, payload, headers

    def _in_time(self, path: str, body: dict[str, Any], payload: str, headers: dict[str, str], pending: Pending,
                 seed: str, took: int) -> str:
        """Stream timing, a stream cut short by an error, a queued background answer (see labkit.streams)."""
        from .streams import queued_response, stream_offsets, with_stream_error

        if not headers["content-type"].startswith("text/event-stream"):
            return queued_response(payload) if body.get("background") and path.endswith("/responses") else payload
        model = str(body.get("model", ""))
        offsets = stream_offsets(payload, model=model, effort=effort_of(body, model), reasoning_tokens=self._reasoning_tokens,
                                 total_ms=took, seed=seed)
        if pending.stream_error:
            payload, offsets = with_stream_error(payload, offsets, pending.stream_error)
        self.offsets = offsets if pending.timed else None
        return payload

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
        msgs = [*p.context, *msgs] if p.context else msgs
        compacted = sum(_compacted_tokens(m) for m in msgs)
        msgs = [{**_billed(m), "content": _text_of(m.get("content"))} for m in msgs if isinstance(m, dict) and m.get("type") != "compaction"]
        prompt = count_tokens(msgs, model) + compacted
        for extra in ("tools", "response_format", "text"):
            if body.get(extra):
                prompt += count_tokens(json.dumps(body[extra], sort_keys=True), model)
        visible = count_tokens(out_text, model) if out_text else 0
        reasoning = reasoning_tokens_for(effort_of(body, model), visible, seed, _limit_of(body))
        cacheable = prompt // CACHE_BLOCK * CACHE_BLOCK if prompt >= CACHE_MIN else 0
        cached = p.cached_tokens if p.cached_tokens else (cacheable if p.cache == "hit" else 0)
        written = cacheable if p.cache == "write" and self._writes_cost(model) else 0
        if p.cache == "auto":  # cached: the prefix shared with an earlier prompt (see cached_prefix); the rest is written
            cached = min(p.cached_tokens, cacheable)
            written = cacheable - cached if self._writes_cost(model) else 0
        self._out_tokens = visible + reasoning
        self._reasoning_tokens = reasoning
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
        out_text = (p.reply or "") + (p.refusal or "") + "".join(t["function"]["name"] + t["function"]["arguments"] for t in tool_calls or [])
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
            message: dict[str, Any] = {"role": "assistant", "content": p.reply, "refusal": p.refusal, "annotations": []}
            if tool_calls:
                message["tool_calls"] = tool_calls
            payload = {
                "id": cid, "object": "chat.completion", "created": AUTHORED_AT, "model": snap,
                "choices": [{"index": 0, "message": message, "logprobs": self._chat_logprobs(body, p, seed), "finish_reason": finish}],
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
        for piece in _chunks(p.refusal or "", model):
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"refusal": piece}, "logprobs": None, "finish_reason": None}]}))
        for i, t in enumerate(tool_calls or []):
            events.append((None, {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, **t}]}, "logprobs": None, "finish_reason": None}]}))
        events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**base, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return 200, _sse(events), "text/event-stream; charset=utf-8"

    @staticmethod
    def _chat_logprobs(body: dict[str, Any], p: Pending, seed: str) -> dict[str, Any] | None:
        """``choices[0].logprobs`` for a request that asked for them (``logprobs: true``), else None."""
        if not body.get("logprobs") or p.reply is None:
            return None
        content = token_logprobs(p.reply, str(body.get("model", "")), seed, p.confidence,
                                 top=int(body.get("top_logprobs") or 0), schema=_schema_of(body))
        return {"content": content, "refusal": None}

    def _responses(self, body: dict[str, Any], p: Pending, seed: str) -> tuple[int, str, str]:
        model = body.get("model", "")
        text = p.reply or ""
        calls = [
            {"name": t["name"], "arguments": t["arguments"] if isinstance(t["arguments"], str) else json.dumps(t["arguments"])}
            for t in p.tool_calls or []
        ]
        out_text = text + (p.refusal or "") + "".join(c["name"] + c["arguments"] for c in calls)
        prompt, completion, reasoning, cached, written = self._usage_numbers(body, p, out_text, seed)
        msg_id, rs_id = f"msg_{_sid(seed, 'msg', n=48)}", f"rs_{_sid(seed, 'rs', n=48)}"
        part: dict[str, Any] = (
            {"type": "refusal", "refusal": p.refusal} if p.refusal is not None
            else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        )
        if p.refusal is None and "message.output_text.logprobs" in (body.get("include") or []):
            part["logprobs"] = token_logprobs(text, model, seed, p.confidence, top=int(body.get("top_logprobs") or 0),
                                              schema=_schema_of(body))
        message = {"id": msg_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        output: list[dict[str, Any]] = []
        if reasoning:
            output.append({"id": rs_id, "type": "reasoning", "summary": []})
        if p.reply is not None or p.refusal is not None or not calls:
            output.append(message)
        for i, c in enumerate(calls):
            output.append({"id": f"fc_{_sid(seed, 'fc', i, n=48)}", "type": "function_call", "status": "completed",
                           "arguments": c["arguments"], "call_id": f"call_{_b62(seed, i, n=24)}", "name": c["name"]})
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
        conversation = body.get("conversation")
        if conversation:
            response["conversation"] = {"id": conversation if isinstance(conversation, str) else conversation.get("id")}
        if body.get("parallel_tool_calls") is False:
            response["parallel_tool_calls"] = False
        if not body.get("stream"):
            return 200, json.dumps(response, indent=2, ensure_ascii=False), "application/json"
        seq = iter(range(10_000))
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        ev: list[tuple[str | None, Any]] = []

        def add(kind: str, **data: Any) -> None:
            ev.append((kind, {"type": kind, "sequence_number": next(seq), **data}))

        add("response.created", response=started)
        add("response.in_progress", response=started)
        for oi, item in enumerate(output):
            if item["type"] == "reasoning":
                add("response.output_item.added", output_index=oi, item=item)
                add("response.output_item.done", output_index=oi, item=item)
            elif item["type"] == "function_call":
                fc_id = item["id"]
                add("response.output_item.added", output_index=oi, item={**item, "status": "in_progress", "arguments": ""})
                for piece in _chunks(item["arguments"], model):
                    add("response.function_call_arguments.delta", item_id=fc_id, output_index=oi, delta=piece)
                add("response.function_call_arguments.done", item_id=fc_id, output_index=oi, arguments=item["arguments"])
                add("response.output_item.done", output_index=oi, item=item)
            elif p.refusal is not None:
                add("response.output_item.added", output_index=oi, item={**message, "status": "in_progress", "content": []})
                add("response.content_part.added", item_id=msg_id, output_index=oi, content_index=0, part={**part, "refusal": ""})
                for piece in _chunks(p.refusal, model):
                    add("response.refusal.delta", item_id=msg_id, output_index=oi, content_index=0, delta=piece)
                add("response.refusal.done", item_id=msg_id, output_index=oi, content_index=0, refusal=p.refusal)
                add("response.content_part.done", item_id=msg_id, output_index=oi, content_index=0, part=part)
                add("response.output_item.done", output_index=oi, item=message)
            else:
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
        #: answers for the next requests of one ``a.turns(...)``, in order
        self._queue: list[Pending] = []
        #: what the API keeps: each stored response's conversation so far, and each conversation's items
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        #: what endpoint modules keep between requests (uploaded files, batches...): ``Pending.data["state"]``
        self.state: dict[str, Any] = {}
        #: the prompts sent so far, by model, for ``cache="auto"``
        self._prompts: dict[str, list[list[int]]] = {}
        #: the options every request gets inside ``a.each(...)``
        self._each: dict[str, Any] | None = None
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

        Options: ``tool_calls`` (list of {name, arguments}: Chat Completions ``tool_calls``, Responses
        ``function_call`` items), ``refusal`` (the model declines, in the API's refusal field),
        ``error`` ({status, message, type,
        param, code}), ``label``, ``finish_reason``, ``cache`` ("hit": the prompt's cacheable
        prefix was read from the cache; "write": it was written, on models that bill writes; "auto":
        the prefix this prompt shares with an earlier one of this cassette is read, the rest
        written), ``confidence`` (field -> probability of each labelled value of a JSON answer: a
        request with ``logprobs`` gets token logprobs derived from it), ``data`` (for endpoint
        modules; ``data["state"]`` is what they keep between requests), ``headers``. Reasoning tokens and latency are derived from the request's model and effort
        (see REASONING_PER_EFFORT); ``reasoning`` and ``cached_tokens`` are accepted from older
        sources (``reasoning`` text is ignored). Streams are consumed. ``timed=True`` keeps when
        each event of a streamed answer arrives (``offsets_ms``, derived from the same latency
        model); ``stream_error={"after": n, "code", "message", "event"}`` cuts a stream short with
        an error after n deltas (see :mod:`labkit.streams`).
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

    def turns(self, fn: Callable[[openai.OpenAI], Any], turns: list[dict[str, Any]], **common: Any) -> Any:
        """Run ``fn(client)``, which sends one request per turn (a tool loop, a conversation).

        The k-th request is answered as ``turns[k]`` says: a dict of :meth:`call`'s options, with
        ``reply`` for the text (``tool_calls`` for a round of calls, ``refusal``, ``error``...);
        ``common`` options apply to every turn. Ids (call ids too) are derived as in :meth:`call`,
        so the loop under ``fn`` sends each result back with the id it was given. An expected
        error is caught and returned.
        """
        if self._pending is not None or self._queue:
            raise RuntimeError(f"{self.name}: a.turns() inside another a.call() or a.turns()")
        pendings = []
        for turn in turns:
            opts = {**common, **turn}
            reply = opts.pop("reply", None)
            pendings.append(Pending(reply=reply, error=opts.pop("error", None), **opts))
        expects_error = any(pending.error for pending in pendings)
        self._queue = pendings
        try:
            result = fn(self.client)
            if isinstance(result, openai.Stream):
                result = list(result)
        except openai.APIStatusError as err:
            if not expects_error:
                raise
            result = err
        finally:
            left, self._queue = len(self._queue), []
        if left:
            raise RuntimeError(f"{self.name}: a.turns() was given {len(turns)} turns but only {len(turns) - left} requests were sent")
        return result

    def each(self, fn: Callable[[openai.OpenAI], Any], **common: Any) -> Any:
        """Run ``fn(client)``, answering every request it sends with :meth:`call`'s options ``common``.

        For endpoints whose answers their state decides (a batch's lifecycle: upload, create, each
        poll, each download; see labkit/endpoints/batches.py), so the source need not know how many
        requests ``fn`` sends. Each request gets its own copy of ``common``'s ``data``.
        """
        if self._pending is not None or self._queue or self._each is not None:
            raise RuntimeError(f"{self.name}: a.each() inside another a.call(), a.turns() or a.each()")
        self._each = dict(common)
        try:
            return fn(self.client)
        finally:
            self._each = None

    def save(self, folder: Path | None = None) -> Path:
        """Write ``cassettes/NAME.json``."""
        meta = {"provenance": "authored", "source": self.source, "note": self.note, "authored_at": "2026-11-01"}
        return write_cassette((folder or paths.cassette_dir()) / f"{self.name}.json", self.items, meta)

    # ---------------------------------------------------------------- transport
    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        pending, self._pending = self._pending, None
        if pending is None and self._queue:
            pending = self._queue.pop(0)
        if pending is None and self._each is not None:
            opts = {**self._each, "data": dict(self._each.get("data") or {})}
            pending = Pending(reply=opts.pop("reply", None), error=opts.pop("error", None), **opts)
        if pending is None:
            raise RuntimeError(f"{self.name}: a request was sent outside a.call(); wrap it so its answer is authored")
        raw, request_headers = _stable_multipart(request.read(), request.headers.multi_items())
        body = _json_or_none(raw)
        seed = _sid(self.name, len(self.items), raw, n=32)
        if request.url.params:
            pending.data.setdefault("query", dict(request.url.params))
        pending.data.setdefault("state", self.state)
        if isinstance(body, dict):
            self._read_state(request.method, request.url.path, body, pending)
            if pending.cache == "auto":
                model = str(body.get("model", ""))
                ids = prompt_token_ids(body, model)
                pending.cached_tokens = cached_prefix(ids, self._prompts.get(model, []))
                self._prompts.setdefault(model, []).append(ids)
        renderer = Renderer()
        status, payload, headers = renderer.render(request.url.path, body, raw, pending, seed, method=request.method)
        if status == 200 and isinstance(body, dict):
            self._keep_state(request.method, request.url.path, body, pending, payload)
        reason = httpx2.codes.get_reason_phrase(status)
        self.items.append(
            interaction_dict(
                request.method, str(request.url), raw, request_headers,
                status, reason, headers.items(), payload,
                provenance="authored", label=pending.label, **({"exact_only": True} if pending.exact_only else {}),
                **({"offsets_ms": renderer.offsets} if renderer.offsets else {}),
            )
        )
        return httpx2.Response(status, headers=headers, content=payload.encode())

    # ---------------------------------------------------------------- conversation state
    def _read_state(self, method: str, path: str, body: dict[str, Any], pending: Pending) -> None:
        """Give a request what the API would read again: a stored response's or conversation's items."""
        if "/conversations/" in path and path.endswith("/items"):
            pending.data.setdefault("items", list(self._conversations.get(path.split("/conversations/")[1].split("/")[0], [])))
            return
        if method != "POST" or not path.endswith(("/responses", "/responses/compact")) or pending.context:
            return
        conversation = _conversation_id(body)
        if conversation and conversation in self._conversations:
            pending.context = list(self._conversations[conversation])
        elif body.get("previous_response_id") in self._responses:
            pending.context = list(self._responses[body["previous_response_id"]])

    def _keep_state(self, method: str, path: str, body: dict[str, Any], pending: Pending, payload: str) -> None:
        """Remember what the API stores: responses (unless ``store`` is false) and conversation items."""
        try:
            answer = json.loads(payload)
        except ValueError:
            return  # a stream: conversation state is not tracked through streams
        if not isinstance(answer, dict):
            return
        if answer.get("object") == "conversation" and method == "POST":
            self._conversations.setdefault(str(answer["id"]), [_as_item(i) for i in body.get("items") or []])
        elif answer.get("object") == "list" and method == "POST" and "/conversations/" in path:
            self._conversations.setdefault(path.split("/conversations/")[1].split("/")[0], []).extend(answer.get("data") or [])
        if answer.get("object") != "response":
            return
        inp = body.get("input", [])
        items = [*pending.context, *([_as_item(inp)] if isinstance(inp, str) else [_as_item(i) for i in inp])]
        items += list(answer.get("output") or [])
        if body.get("store", True) is not False:
            self._responses[str(answer["id"])] = items
        conversation = _conversation_id(body)
        if conversation:
            self._conversations[conversation] = items


def _conversation_id(body: dict[str, Any]) -> str | None:
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    return conversation if isinstance(conversation, str) else None


def _as_item(item: Any) -> dict[str, Any]:
    """An input item as the API stores it (a bare string is a user message)."""
    if isinstance(item, str):
        return {"type": "message", "role": "user", "content": item}
    return dict(item) if isinstance(item, dict) else {"type": "message", "role": "user", "content": str(item)}

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
