"""Cassettes: load, match, replay and record HTTP exchanges with the OpenAI API.

Cassettes use vcrpy's JSON cassette format (``version``, ``interactions`` with
``request``/``response``, and ``metadata``), so vcrpy itself can replay them. On top of
that format this module adds what the course needs and vcrpy lacks: provenance
(``authored`` or ``recorded``), honest matching, and an httpx2 transport that is injected
into one client (no global patching).

Matching never lies: a request is answered only by a recording made for the same endpoint,
the same conversation, the same model and the same answer-shaping parameters (sampling,
reasoning effort, output format, tools, output limit, streaming). Parameters that cannot change
the answer (``safety_identifier``, ``user``, ``metadata``, ``store``, ``prompt_cache_key``,
``service_tier``...) and parameters sent at their default value are ignored. Anything else is a
:class:`ReplayMiss` naming the fields that differ from the closest recording. For graded runs a
*simulator* may answer a well-formed request on a recorded task (the same final user message)
with the recorded answer text, and with the model, usage and ids computed for that request;
its answers say ``simulated`` in their provenance. Error recordings are never simulated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx2
import openai

from . import paths
from .errors import CassetteError, LabkitError
from .streams import PacedStream, Pacer, StreamLedger, paced_pieces

Tier = Literal["exact", "simulated"]

#: Request fields that cannot change the answer: ignored when matching.
IGNORED_FIELDS = frozenset({
    "safety_identifier", "user", "metadata", "store", "prompt_cache_key", "prompt_cache_retention",
    "prompt_cache_options", "service_tier",
})
#: Parameters sent at these values are the API's defaults: the same as not sending them.
DEFAULTS: dict[str, Any] = {
    "temperature": 1, "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0, "n": 1, "stream": False,
    "logprobs": False, "parallel_tool_calls": True, "truncation": "disabled", "background": False,
}

#: Request headers worth keeping; everything else (authorization, cookies, org and
#: project ids, SDK telemetry) is dropped on write.
KEEP_REQUEST_HEADERS = frozenset({"content-type", "accept", "openai-beta"})
#: Response headers worth keeping; the rest (set-cookie, openai-organization, ...) is dropped.
KEEP_RESPONSE_PREFIXES = (
    "content-type",
    "x-request-id",
    "openai-processing-ms",
    "openai-version",
    "openai-model",
    "x-ratelimit-",
    "retry-after",
    "x-should-retry",
    "x-labkit-",
)
SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "openai-organization", "openai-project", "cookie", "set-cookie"}
)
#: What a leaked credential looks like: OpenAI keys and bearer tokens.
SECRET_RE = re.compile(r"sk-(?:proj-|admin-|svcacct-)?[A-Za-z0-9_\-]{20,}|[Bb]earer\s+[A-Za-z0-9_.\-]{16,}")
REDACTED = "REDACTED"


class ReplayMiss(LabkitError, openai.OpenAIError):
    """No recording answers this request (replay mode).

    Subclasses ``openai.OpenAIError`` so the SDK raises it at once instead of retrying
    it and wrapping it as a connection error.
    """


# --------------------------------------------------------------------------- matching


def canonical_json(body: bytes | str | None) -> str:
    """The body as canonical JSON (sorted keys, no spaces); raw text if not JSON."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def multipart_form(body: bytes | str | None) -> dict[str, Any] | None:
    """A ``multipart/form-data`` body (a file upload) as data, its random boundary gone: each field's
    value, and each file as ``{"filename", "content"}``. None if the body is not multipart."""
    raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    if not raw.startswith(b"--"):
        return None
    boundary = raw.split(b"\r\n", 1)[0]
    if len(boundary) < 4 or b" " in boundary:
        return None
    form: dict[str, Any] = {}
    for part in raw.split(boundary)[1:]:
        if part.startswith(b"--") or b"\r\n\r\n" not in part:
            continue
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")  # the lines around a delimiter belong to it
        head, _, value = part.partition(b"\r\n\r\n")
        disposition = next((line for line in head.decode("utf-8", "replace").split("\r\n")
                            if line.lower().startswith("content-disposition")), "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if not name:
            continue
        text = value.decode("utf-8", "replace")
        form[name.group(1)] = {"filename": filename.group(1), "content": text} if filename else text
    return form or None


def _text_parts(content: Any) -> Any:
    """A content list made only of text parts is the same message as its joined text."""
    if isinstance(content, list) and content and all(
        isinstance(part, dict) and part.get("type") in ("text", "input_text") and set(part) <= {"type", "text"}
        for part in content
    ):
        return "".join(str(part.get("text", "")) for part in content)
    return content


def _messages(items: Any) -> Any:
    if not isinstance(items, list):
        return items
    out = []
    for item in items:
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if v is not None}
            if "content" in item:
                item["content"] = _text_parts(item["content"])
            if item.get("type") == "message" and "role" in item:
                item.pop("type")
        out.append(item)
    return out


def answer_shape(body: Any) -> Any:
    """What of a request body decides the answer: ignored fields and defaults removed, messages normalised."""
    if not isinstance(body, dict):
        return body
    shaped: dict[str, Any] = {}
    for key, value in body.items():
        if key in IGNORED_FIELDS or value is None or (key in DEFAULTS and value == DEFAULTS[key]):
            continue
        shaped[key] = value
    if "messages" in shaped:
        shaped["messages"] = _messages(shaped["messages"])
    if isinstance(shaped.get("input"), str):
        shaped["input"] = [{"role": "user", "content": shaped["input"]}]
    if "input" in shaped:
        shaped["input"] = _messages(shaped["input"])
    reasoning = shaped.get("reasoning")
    effort = shaped.get("reasoning_effort") or (reasoning.get("effort") if isinstance(reasoning, dict) else None)
    if effort and isinstance(shaped.get("model"), str) and effort == _default_effort(shaped["model"]):
        shaped.pop("reasoning_effort", None)
        if isinstance(shaped.get("reasoning"), dict):
            rest = {k: v for k, v in shaped["reasoning"].items() if k != "effort" and v is not None}
            if rest:
                shaped["reasoning"] = rest
            else:
                shaped.pop("reasoning")
    return shaped


def _default_effort(model: str) -> str:
    from .catalog import UnknownModelError, get_model

    try:
        return get_model(model).default_effort
    except UnknownModelError:
        return ""


def shape_key(method: str, path: str, body: Any) -> str:
    return json.dumps([method, path, answer_shape(body)], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def task_of(body: Any) -> str | None:
    """The task a request asks about: its last user message (what the simulator matches on)."""
    if not isinstance(body, dict):
        return None
    convo = body.get("messages", body.get("input"))
    if isinstance(convo, str):  # the Responses API's input="..." is one user message: the same task
        return json.dumps(convo, ensure_ascii=False)
    if isinstance(convo, list):
        for item in reversed(_messages(convo)):
            if isinstance(item, dict) and item.get("role") == "user":
                return json.dumps(item.get("content"), sort_keys=True, ensure_ascii=False)
    return None


def _path_of(uri: str) -> str:
    """``/v1/chat/completions`` from a full URL; query strings kept."""
    url = httpx2.URL(uri)
    query = url.query.decode() if isinstance(url.query, bytes) else str(url.query)
    return url.path + (f"?{query}" if query else "")


def _summary(body: dict[str, Any] | None) -> str:
    """One line that identifies a request to a person."""
    if not isinstance(body, dict):
        return "(no JSON body)"
    parts = [f"model={body.get('model')!r}"] if "model" in body else []
    convo = body.get("messages", body.get("input"))
    if isinstance(convo, list) and convo:
        last = convo[-1]
        content = last.get("content") if isinstance(last, dict) else last
        parts.append(f"{len(convo)} message(s), last: {_clip(content)}")
    elif isinstance(convo, str):
        parts.append(f"input: {_clip(convo)}")
    extras = sorted(k for k in body if k not in {"model", "messages", "input"})
    if extras:
        parts.append("params: " + ", ".join(f"{k}={_clip(body[k], 30)}" for k in extras))
    return "; ".join(parts)


def _clip(value: Any, width: int = 60) -> str:
    """A short readable form: strings quoted, other JSON values as JSON."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    text = text if len(text) <= width else text[: width - 1] + "…"
    return repr(text) if isinstance(value, str) and value != "<absent>" else text


def describe_difference(wanted: dict[str, Any] | None, recorded: dict[str, Any] | None) -> str:
    """Which top-level fields differ between two request bodies, briefly."""
    if not isinstance(wanted, dict) or not isinstance(recorded, dict):
        return "bodies are not both JSON objects"
    wanted, recorded = answer_shape(wanted), answer_shape(recorded)
    diffs = []
    for key in sorted(set(wanted) | set(recorded)):
        a, b = wanted.get(key, "<absent>"), recorded.get(key, "<absent>")
        if a == b:
            continue
        if key in ("messages", "input") and isinstance(a, list) and isinstance(b, list):
            idx = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            what = ""
            if idx < min(len(a), len(b)) and isinstance(a[idx], dict) and isinstance(b[idx], dict):
                role = a[idx].get("role", "?")
                what = f": the {role} message's content, sent {_clip(a[idx].get('content'), 40)}, recorded {_clip(b[idx].get('content'), 40)}"
            diffs.append(f"{key} differ from item [{idx}] ({len(a)} sent, {len(b)} recorded){what}")
        else:
            diffs.append(f"{key}: sent {_clip(a, 40)}, recorded {_clip(b, 40)}")
    return "; ".join(diffs) or "nothing that shapes the answer"


# --------------------------------------------------------------------------- cassettes


@dataclass(frozen=True)
class Interaction:
    """One recorded request and its response."""

    index: int
    method: str
    path: str
    canonical: str
    shape: str
    shaped: Any
    task: str | None
    body: dict[str, Any] | None
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    content: bytes
    provenance: str
    label: str = ""
    #: answers only its exact request, never a simulated one (made for a check's wrong answer)
    exact_only: bool = False
    #: when each event of a streamed answer arrived, ms after the request (see labkit.streams)
    offsets: tuple[int, ...] = ()


@dataclass
class Cassette:
    """A loaded cassette indexed by what shapes each recorded answer, and by task."""

    path: Path
    metadata: dict[str, Any]
    interactions: list[Interaction]
    exact: dict[str, list[int]] = field(default_factory=dict)
    tasks: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def provenance(self) -> str:
        return str(self.metadata.get("provenance", "unknown"))


_CACHE: dict[Path, tuple[tuple[int, int], Cassette]] = {}
_CACHE_LOCK = threading.Lock()


def load_cassette(path: str | Path) -> Cassette:
    """Load and index a cassette (cached until the file changes)."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CassetteError(
            f"Cassette not found: {p}. Rebuild the authored cassettes with `make cassettes`, "
            "or record it with a key: `LABKIT_MODE=record`."
        ) from None
    stamp = (st.st_mtime_ns, st.st_size)
    with _CACHE_LOCK:
        hit = _CACHE.get(p)
        if hit and hit[0] == stamp:
            return hit[1]
    cassette = _parse(p)
    with _CACHE_LOCK:
        _CACHE[p] = (stamp, cassette)
    return cassette


def _parse(p: Path) -> Cassette:
    fix = "Rebuild it with `make cassettes` (authored) or re-record it with `make record`."
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CassetteError(f"Cassette {p} is not valid JSON ({err}). {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteError(f"Cassette {p} has no 'interactions' list (not a vcrpy JSON cassette). {fix}")
    meta = (data.get("metadata") or {}).get("labkit") or {}
    default_prov = meta.get("provenance", "unknown")
    cassette = Cassette(path=p, metadata=meta, interactions=[])
    for i, item in enumerate(data["interactions"]):
        try:
            req, resp = item["request"], item["response"]
            method = req["method"].upper()
            path = _path_of(req["uri"])
            raw = req.get("body") or ""
            status = int(resp["status"]["code"])
            reason = resp["status"].get("message") or ""
            headers = tuple((k, v) for k, vs in resp.get("headers", {}).items() for v in vs)
            content = (resp.get("body") or {}).get("string") or ""
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise CassetteError(f"Cassette {p}: interaction #{i} is malformed (missing {err}). {fix}") from None
        canonical = canonical_json(raw)
        try:
            body = json.loads(canonical) if canonical else None
        except ValueError:
            body = multipart_form(raw)
        extra = item.get("labkit") or {}
        inter = Interaction(
            index=i,
            method=method,
            path=path,
            canonical=canonical,
            shape=shape_key(method, path, body),
            shaped=answer_shape(body),
            task=task_of(body),
            body=body,
            status=status,
            reason=reason,
            headers=headers,
            content=content.encode("utf-8") if isinstance(content, str) else content,
            provenance=extra.get("provenance", default_prov),
            label=extra.get("label", ""),
            exact_only=bool(extra.get("exact_only")) or str(extra.get("label", "")).startswith("deliberately bad"),
            offsets=tuple(int(ms) for ms in extra.get("offsets_ms") or ()),
        )
        cassette.interactions.append(inter)
        cassette.exact.setdefault(inter.shape, []).append(i)
        if inter.task is not None and status == 200:
            cassette.tasks.setdefault((method, path, inter.task), []).append(i)
    return cassette


def resolve_cassette(name: str | Path) -> Path:
    """A cassette path from a name (``"ex01"``), a file name or a path."""
    p = Path(name)
    if p.suffix == ".json" and (p.is_absolute() or p.exists()):
        return p
    base = paths.cassette_dir()
    return base / (p.name if p.suffix == ".json" else f"{p.name}.json")


def iter_cassettes(folder: Path | None = None) -> Iterator[Path]:
    """Every cassette file in the folder (not the sources)."""
    yield from sorted((folder or paths.cassette_dir()).glob("*.json"))


# --------------------------------------------------------------------------- transport


@dataclass
class Served:
    """What the replay transport answered, for banners, provenance and tests."""

    method: str
    path: str
    cassette: str
    index: int
    tier: Tier
    provenance: str
    label: str
    note: str = ""


def output_kind(body: Any) -> tuple[str, frozenset[str]]:
    """What form the answer must take: free text, any JSON, or JSON with these top-level fields.

    The simulator prefers a recording of the same kind: a strict-schema request is not answered with a
    recorded plain-text answer (the real API always returns JSON for it) while one of its schema exists.
    """
    if not isinstance(body, dict):
        return ("text", frozenset())
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return ("text", frozenset())
    kind = str(fmt.get("type") or "text")
    if kind != "json_schema":
        return (kind, frozenset())
    spec = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else fmt
    schema = spec.get("schema") if isinstance(spec, dict) else None
    props = schema.get("properties") if isinstance(schema, dict) else None
    return (kind, frozenset(props) if isinstance(props, dict) else frozenset())


class ReplayTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Answers requests from cassettes; never touches the network.

    A request gets the recording made for what shapes its answer (see :func:`answer_shape`);
    identical requests recorded several times play back in recorded order (cycling). With
    ``simulate=True``, a well-formed request on a recorded task gets the recorded answer text
    with its own model, usage and ids (``tier="simulated"``); otherwise :class:`ReplayMiss`.

    With a ``pace`` (a :class:`labkit.streams.Pacer`), answers arrive in time: a stream event by
    event at its recorded offsets, any other answer after its ``openai-processing-ms``;
    ``ledger`` counts the paced answers still being delivered.
    """

    def __init__(self, cassettes: Iterable[str | Path], *, simulate: bool = False, pace: Pacer | None = None) -> None:
        self.paths = [resolve_cassette(c) for c in cassettes]
        self.cassettes = [load_cassette(p) for p in self.paths]
        self.simulate = simulate
        self.served: list[Served] = []
        #: every request body received, answered or not (what the code under test sent)
        self.sent: list[Any] = []
        self._counters: dict[tuple[int, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        self.pace = pace
        self.ledger = StreamLedger()

    # httpx2 entry points -------------------------------------------------------
    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._answer(request, await request.aread())

    # matching -------------------------------------------------------------------
    def _answer(self, request: httpx2.Request, raw: bytes) -> httpx2.Response:
        method = request.method.upper()
        path = _path_of(str(request.url))
        canonical = canonical_json(raw)
        try:
            body = json.loads(canonical) if canonical else None
        except ValueError:
            body = multipart_form(raw)
        with self._lock:
            self.sent.append(body)
        hit = self._find(method, path, body)
        if hit is not None:
            cassette, inter = hit
            self._note(Served(method, path, cassette.name, inter.index, "exact", inter.provenance, inter.label))
            headers = [*inter.headers, ("x-labkit-provenance", inter.provenance), ("x-labkit-match", "exact")]
            return httpx2.Response(
                inter.status,
                headers=headers,
                stream=self._body(inter.content, inter.offsets, inter.headers),
                extensions={"reason_phrase": inter.reason.encode("ascii", "replace")} if inter.reason else {},
                request=request,
            )
        if self.simulate and isinstance(body, dict):
            made = self._simulated(request, method, path, raw, body)
            if made is not None:
                return made
        raise ReplayMiss(self._miss_message(method, path, canonical))

    def _body(self, content: bytes, offsets: tuple[int, ...], headers: Iterable[tuple[str, str]]) -> httpx2.ByteStream | PacedStream:
        """The answer's body: all at once, or (with a pace) in time."""
        if self.pace is None:
            return httpx2.ByteStream(content)
        took = next((v for k, v in headers if k.lower() == "openai-processing-ms"), "0")
        try:
            processing = float(took)
        except ValueError:
            processing = 0.0
        return PacedStream(paced_pieces(content, offsets, processing), self.pace, self.ledger)

    def _note(self, served: Served) -> None:
        with self._lock:
            self.served.append(served)

    def _next(self, ci: int, key: str, indexes: list[int]) -> int:
        with self._lock:
            n = self._counters[(ci, key)]
            self._counters[(ci, key)] = n + 1
        return indexes[n % len(indexes)]

    def _find(self, method: str, path: str, body: Any) -> tuple[Cassette, Interaction] | None:
        key = shape_key(method, path, body)
        for ci, cassette in enumerate(self.cassettes):
            indexes = cassette.exact.get(key)
            if indexes:
                return cassette, cassette.interactions[self._next(ci, key, indexes)]
        return None

    def _simulated(self, request: httpx2.Request, method: str, path: str, raw: bytes, body: dict[str, Any]) -> httpx2.Response | None:
        """An honest answer for a request on a recorded task: recorded text, computed numbers."""
        from .simulate import simulate_answer

        task = task_of(body)
        if task is None or not isinstance(body.get("model"), str):
            return None
        for cassette in self.cassettes:
            indexes = cassette.tasks.get((method, path, task))
            if not indexes:
                continue
            usable = [cassette.interactions[i] for i in indexes if not cassette.interactions[i].exact_only]
            if not usable:
                continue
            wanted = output_kind(body)  # a recording of the same output kind first, then the fewest differences
            source = min(usable, key=lambda inter: (output_kind(inter.body) != wanted, len(describe_difference(body, inter.body))))
            made = simulate_answer(path, body, raw, source)
            if made is None:
                continue
            status, payload, headers = made
            note = f"answer text recorded as {cassette.name}.json #{source.index}; model, usage and ids computed for this request"
            self._note(Served(method, path, cassette.name, source.index, "simulated", "simulated", source.label, note))
            headers = {**headers, "x-labkit-provenance": "simulated", "x-labkit-match": "simulated"}
            return httpx2.Response(status, headers=list(headers.items()), stream=self._body(payload.encode(), (), headers.items()),
                                   request=request)
        return None

    def closest(self, method: str, path: str, canonical: str) -> tuple[Cassette, Interaction, int] | None:
        """The recording of the same method and path that differs in the fewest answer-shaping
        fields (same task first), with that number. Linear in the recordings, no text diffing."""
        try:
            body = json.loads(canonical) if canonical else None
        except ValueError:
            body = multipart_form(canonical)
        mine = answer_shape(body) if isinstance(body, dict) else {}
        task = task_of(body)
        best: tuple[tuple[int, int], Cassette, Interaction, int] | None = None
        for cassette in self.cassettes:
            for inter in cassette.interactions:
                if inter.method != method or inter.path != path:
                    continue
                theirs = inter.shaped if isinstance(inter.shaped, dict) else {}
                differ = sum(1 for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
                rank = (0 if task is not None and inter.task == task else 1, differ)
                if best is None or rank < best[0]:
                    best = (rank, cassette, inter, differ)
        return None if best is None else (best[1], best[2], best[3])

    def _miss_message(self, method: str, path: str, canonical: str) -> str:
        try:
            body = json.loads(canonical) if canonical else None
        except ValueError:
            body = multipart_form(canonical)
        names = ", ".join(c.name for c in self.cassettes) or "(none)"
        lines = [
            f"No recording answers {method} {path} in cassette(s) {names} (replay mode, no network).",
            f"  you sent: {_summary(body)}",
        ]
        near = self.closest(method, path, canonical)
        if near:
            cassette, inter, differ = near
            lines.append(
                f"  closest recording: {cassette.path.name} #{inter.index} ({differ} field(s) differ): {_summary(inter.body)}"
            )
            lines.append(f"  it differs in: {describe_difference(body, inter.body)}")
        else:
            lines.append(f"  no recording of {method} {path} at all in these cassettes.")
        lines.append(
            "What to do: send the request the notebook or exercise asks for (compare with the closest "
            "recording above; recordings are made per model and per answer-shaping parameter); or go live "
            "by setting OPENAI_API_KEY (see README, 'Going live'); or record new answers with "
            "`LABKIT_MODE=record` and a key (`make record`)."
        )
        return "\n".join(lines)


# --------------------------------------------------------------------------- recording


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace anything that looks like a key or bearer token, and every exact ``secrets`` value."""
    for value in sorted({v for v in secrets if len(v) >= 6}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return SECRET_RE.sub(REDACTED, text)


def request_secrets(headers: Iterable[tuple[str, str]], uri: str = "") -> list[str]:
    """The credentials a request carries, whatever they look like: every value of a secret header
    (``Authorization: Bearer X`` gives ``X`` too), the URL's user and password, and the key in the environment."""
    found = []
    for k, v in headers:
        if k.lower() in SECRET_HEADERS or "key" in k.lower() or "token" in k.lower():
            found.append(v)
            found += v.split()[1:]  # the credential after "Bearer " or "Basic "
    parts = urlsplit(uri)
    found += [x for x in (parts.username, parts.password) if x]
    found += [v for k, v in parse_qsl(parts.query) if any(w in k.lower() for w in ("key", "token", "secret", "sig"))]
    env_key = os.environ.get("OPENAI_API_KEY", "")
    if env_key:
        found.append(env_key)
    return [v for v in found if v]


def scrub_uri(uri: str) -> str:
    """A URL without its user, password, or credential-looking query values."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = urlencode([(k, REDACTED if any(w in k.lower() for w in ("key", "token", "secret", "sig")) else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, host, parts.path, query, parts.fragment))


def scrub_request_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str] = ()) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    known = list(secrets)
    for k, v in headers:
        if k.lower() in KEEP_REQUEST_HEADERS:
            out.setdefault(k.lower(), []).append(scrub_text(v, known))
    return out


def scrub_response_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str] = ()) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    known = list(secrets)
    for k, v in headers:
        low = k.lower()
        if low not in SECRET_HEADERS and low.startswith(KEEP_RESPONSE_PREFIXES):
            out.setdefault(low, []).append(scrub_text(v, known))
    return out


def interaction_dict(
    method: str,
    uri: str,
    request_body: bytes | str,
    request_headers: Iterable[tuple[str, str]],
    status: int,
    reason: str,
    response_headers: Iterable[tuple[str, str]],
    response_body: bytes | str,
    **labkit: Any,
) -> dict[str, Any]:
    """One vcrpy-format interaction, scrubbed of secrets: any credential the request carried (whatever
    it looks like) is removed wherever it shows, and the URL keeps no user, password or key."""
    req_headers = list(request_headers)
    known = request_secrets(req_headers, uri)
    req = request_body.decode("utf-8", "replace") if isinstance(request_body, bytes) else request_body
    resp = response_body.decode("utf-8", "replace") if isinstance(response_body, bytes) else response_body
    item: dict[str, Any] = {
        "request": {
            "method": method.upper(),
            "uri": scrub_text(scrub_uri(uri), known),
            "body": scrub_text(req, known),
            "headers": scrub_request_headers(req_headers, known),
        },
        "response": {
            "status": {"code": status, "message": scrub_text(reason, known)},
            "headers": scrub_response_headers(response_headers, known),
            "body": {"string": scrub_text(resp, known)},
        },
    }
    if labkit:
        item["labkit"] = labkit
    return item


def write_cassette(path: str | Path, interactions: list[dict[str, Any]], metadata: dict[str, Any],
                   secrets: Iterable[str] = ()) -> Path:
    """Write a cassette atomically (a uniquely named temp file, then a rename), in vcrpy's JSON format, scrubbed once more."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": 1, "interactions": interactions, "metadata": {"labkit": metadata}}
    text = scrub_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False), secrets) + "\n"
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


#: Set by ``labkit record``: recordings go to this folder, and are moved over the committed
#: cassettes only when the notebook that made them ran to the end.
STAGING_ENV = "LABKIT_RECORD_STAGING"


def record_target(cassette: str | Path) -> Path:
    """Where a recording is written: the cassette itself, or its staging copy under ``labkit record``."""
    final = resolve_cassette(cassette).resolve()
    staging = os.environ.get(STAGING_ENV)
    return Path(staging) / final.name if staging else final


def commit_recordings(staging: Path, into: Path) -> list[Path]:
    """Move every staged recording over its cassette (each an atomic rename); return the cassettes replaced."""
    done = []
    for staged in sorted(staging.glob("*.json")):
        target = into / staged.name
        fd, tmp = tempfile.mkstemp(dir=into, prefix=f".{staged.name}.", suffix=".tmp")
        os.close(fd)
        shutil.copyfile(staged, tmp)
        os.replace(tmp, target)
        done.append(target)
    return done


_RECORDING: dict[Path, list[dict[str, Any]]] = {}
_RECORD_LOCK = threading.Lock()


class RecordTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Sends to the real API and appends every exchange, scrubbed, to a cassette."""

    def __init__(self, cassette: str | Path, *, model_note: str = "") -> None:
        self.path = record_target(cassette)
        self._sync = httpx2.HTTPTransport()
        self._async = httpx2.AsyncHTTPTransport()
        # every client recording into one file in this process appends to the same list
        self._items = _RECORDING.setdefault(self.path, [])
        self._lock = _RECORD_LOCK
        self._started = datetime.now(UTC).isoformat(timespec="seconds")

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        sent = time.monotonic()
        response = self._sync.handle_request(request)
        if not _is_stream(response):
            return self._keep(request, body, response, response.read())
        try:
            arrived = [(time.monotonic() - sent, chunk) for chunk in response.iter_raw()]
        except httpx2.StreamConsumed:  # a body that was read already (a mock transport)
            arrived = [(time.monotonic() - sent, response.content)]
        return self._keep(request, body, response, b"".join(c for _, c in arrived), _event_offsets(arrived))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        sent = time.monotonic()
        response = await self._async.handle_async_request(request)
        if not _is_stream(response):
            return self._keep(request, body, response, await response.aread())
        try:
            arrived = [(time.monotonic() - sent, chunk) async for chunk in response.aiter_raw()]
        except httpx2.StreamConsumed:
            arrived = [(time.monotonic() - sent, response.content)]
        return self._keep(request, body, response, b"".join(c for _, c in arrived), _event_offsets(arrived))

    def _keep(self, request: httpx2.Request, body: bytes, response: httpx2.Response, content: bytes,
              offsets: list[int] | None = None) -> httpx2.Response:
        snapshot = ""
        try:
            snapshot = str(json.loads(content).get("model", ""))
        except (ValueError, AttributeError):
            pass
        headers = list(request.headers.multi_items())
        item = interaction_dict(
            request.method,
            str(request.url),
            body,
            headers,
            response.status_code,
            response.reason_phrase,
            response.headers.multi_items(),
            content,
            provenance="recorded",
            recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
            model_snapshot=snapshot,
            **({"offsets_ms": offsets} if offsets else {}),
        )
        with self._lock:
            self._items.append(item)
            write_cassette(
                self.path,
                self._items,
                {"provenance": "recorded", "recorded_at": self._started, "tool": "labkit record"},
                request_secrets(headers, str(request.url)),
            )
        return httpx2.Response(
            response.status_code,
            headers=response.headers.multi_items(),
            stream=httpx2.ByteStream(content),
            request=request,
        )


def _is_stream(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


def _event_offsets(arrived: list[tuple[float, bytes]]) -> list[int]:
    """When each server-sent event of a recorded stream arrived (ms after the request): the
    arrival of the chunk that completed it (see labkit.streams)."""
    offsets, buffer = [], b""
    for at, chunk in arrived:
        buffer += chunk
        complete = buffer.count(b"\n\n")
        if complete:
            offsets += [int(at * 1000)] * sum(1 for part in buffer.split(b"\n\n")[:complete] if part.strip())
            buffer = buffer.rsplit(b"\n\n", 1)[1]
    return offsets


# --------------------------------------------------------------------------- verification


def verify_cassette(path: str | Path) -> list[str]:
    """Problems with one cassette, one line each: unreadable, malformed, no provenance, a response
    without a body, a secret. Empty if fine. Never raises, whatever the file holds."""
    p = Path(path)
    fix = "rebuild it with `make cassettes` (authored) or re-record it with `make record`"
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError) as err:
        return [f"{p.name}: cannot be read as UTF-8 text ({err}): {fix}"]
    except (ValueError, RecursionError) as err:
        return [f"{p.name}: is not valid JSON ({str(err)[:120]}): {fix}"]
    if not isinstance(data, dict):
        return [f"{p.name}: holds a JSON {type(data).__name__}, not a cassette object: {fix}"]
    problems = []
    meta = data.get("metadata")
    labkit_meta = meta.get("labkit") if isinstance(meta, dict) else None
    if not isinstance(labkit_meta, dict) or labkit_meta.get("provenance") not in ("authored", "recorded"):
        problems.append(f"{p.name}: metadata.labkit.provenance must be 'authored' or 'recorded' "
                        f"(metadata is {_clip(meta, 60)}): {fix}")
    items = data.get("interactions")
    if not isinstance(items, list):
        return [*problems, f"{p.name}: has no 'interactions' list (not a vcrpy JSON cassette): {fix}"]
    for i, item in enumerate(items):
        where = f"{p.name}: interaction #{i}"
        req = item.get("request") if isinstance(item, dict) else None
        resp = item.get("response") if isinstance(item, dict) else None
        if not isinstance(req, dict) or not isinstance(resp, dict):
            problems.append(f"{where} needs a 'request' and a 'response' object: {fix}")
            continue
        if not isinstance(req.get("method"), str) or not isinstance(req.get("uri"), str):
            problems.append(f"{where}: the request needs a 'method' and a 'uri' string: {fix}")
        status = resp.get("status")
        if not isinstance(status, dict) or not isinstance(status.get("code"), int) or isinstance(status.get("code"), bool):
            problems.append(f"{where}: the response needs a status code: {fix}")
        body = resp.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("string"), str) or not body["string"]:
            problems.append(f"{where}: the response has no body (response.body.string): {fix}")
        for side, part in (("request", req), ("response", resp)):
            headers = part.get("headers") or {}
            if not isinstance(headers, dict) or not all(isinstance(v, list) for v in headers.values()):
                problems.append(f"{where}: the {side} headers must map names to lists of values: {fix}")
                continue
            for name in headers:
                if str(name).lower() in SECRET_HEADERS:
                    problems.append(f"{where} keeps the {side} header {name!r}: remove it")
    if not problems:
        try:
            _parse(p)
        except CassetteError as err:
            problems.append(str(err))
    for m in SECRET_RE.finditer(text):
        problems.append(f"{p.name}: contains something that looks like a secret ({m.group(0)[:7]}…): scrub it")
    return problems
