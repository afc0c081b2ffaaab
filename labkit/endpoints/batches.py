"""The Batch API (``/v1/batches``) and the files it reads and writes, as one small state machine.

A batch's life: ``client.files.create(file=..., purpose="batch")`` uploads a JSON Lines file of
requests; ``client.batches.create(input_file_id=..., endpoint=..., completion_window="24h")``
starts it (``validating``); ``client.batches.retrieve(id)`` shows it ``in_progress`` with
``request_counts``, then ``finalizing``, then ``completed`` (or ``failed`` when the file does not
validate, ``expired`` when the 24-hour window ends first, ``cancelled``); its ``output_file_id``
and ``error_file_id`` are downloaded with ``client.files.content(id)``. Output lines come in the
order requests finished, not the input's: match them by ``custom_id``.

:class:`BatchStore` keeps the files and batches. Every number is derived: a batch's status,
counts and timestamps from the time it is asked about (``now``) and a documented throughput
model (VALIDATE_SECONDS, SECONDS_PER_REQUEST, FINALIZE_SECONDS), file sizes from their bytes,
ids from their content, usage by summing the answered lines'. How each line is answered is the
store's ``answer`` function (the authoring source's, or a check's scenario). The authoring
handlers below (registered with :func:`~labkit.endpoints.endpoint`) keep one store in
``Pending.data["state"]``: a source sets ``a.state["batch_now"]`` (a clock) and
``a.state["batch_answer"]``. :class:`BatchAPI` serves a store over HTTP for checks and tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2

from . import endpoint
from .files import FileStore, api_error, hex_id, route_files

if TYPE_CHECKING:
    import openai

    from ..authoring import Pending, Renderer

JSON = "application/json"
#: Seconds a new batch spends validating its file before it runs.
VALIDATE_SECONDS = 40
#: The modelled throughput of the batch queue: one request of a batch finishes every this many seconds.
SECONDS_PER_REQUEST = 15
#: Seconds between the last request finishing and the output files being ready.
FINALIZE_SECONDS = 20
#: How long each completion window lasts, in seconds (the API offers "24h" only).
WINDOWS = {"24h": 86_400}
#: Statuses after which a batch never changes.
TERMINAL = ("completed", "failed", "expired", "cancelled")
#: The error a request gets when the window ends before it ran.
EXPIRED = {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
CANCELLED = {"code": "batch_cancelled", "message": "This request was not executed because the batch was cancelled."}

#: How a line is answered: ``(custom_id, url, body) -> (status code, response body, request id)``.
Answer = Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any], str]]


@dataclass
class StoredBatch:
    """A batch and what is known of it: its input lines, validation errors, answers so far."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any]
    created_at: int
    lines: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    answers: dict[int, tuple[int, dict[str, Any], str]] = field(default_factory=dict)
    cancelling_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    final: dict[str, Any] | None = None
    seconds_per_request: int = SECONDS_PER_REQUEST

    @property
    def in_progress_at(self) -> int:
        return self.created_at + VALIDATE_SECONDS

    @property
    def expires_at(self) -> int:
        return self.created_at + WINDOWS.get(self.completion_window, WINDOWS["24h"])

    def processed(self, at: int) -> int:
        """How many requests (in input order) have finished by time ``at``."""
        if at < self.in_progress_at:
            return 0
        return min(len(self.lines), (at - self.in_progress_at) // self.seconds_per_request)

    @property
    def done_at(self) -> int:
        return self.in_progress_at + len(self.lines) * self.seconds_per_request


def validate_lines(content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests of a batch input file and the API's validation errors (each names its line, from 1)."""
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()

    def bad(code: str, message: str, line: int, param: str | None = None) -> None:
        errors.append({"code": code, "message": message, "param": param, "line": line})

    text = content.decode("utf-8", "replace")
    rows = [row for row in text.split("\n") if row.strip()]
    if not rows:
        bad("empty_file", "The batch input file is empty.", 1)
    for number, row in enumerate(rows, 1):
        try:
            item = json.loads(row)
        except ValueError:
            bad("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        if not isinstance(item, dict):
            bad("invalid_json_line", "This line is not a JSON object.", number)
            continue
        missing = [k for k in ("custom_id", "method", "url", "body") if k not in item]
        if missing:
            bad("missing_required_parameter", f"Missing required parameter: '{missing[0]}'.", number, missing[0])
            continue
        custom_id, body = item["custom_id"], item["body"]
        if not isinstance(custom_id, str) or not custom_id:
            bad("invalid_custom_id", "custom_id must be a non-empty string.", number, "custom_id")
        elif custom_id in seen:
            bad("duplicate_custom_id", f"The custom_id for this request is a duplicate of another request: {custom_id!r}.",
                number, "custom_id")
        if item["method"] != "POST":
            bad("invalid_method", "Only POST requests are supported in a batch.", number, "method")
        if item["url"] != endpoint:
            bad("mismatched_endpoint", f"The url of this request ({item['url']}) does not match the batch's endpoint ({endpoint}).",
                number, "url")
        if not isinstance(body, dict):
            bad("invalid_body", "The body of a request must be a JSON object.", number, "body")
            continue
        models.add(str(body.get("model")))
        if len(models) > 1:
            bad("mismatched_model", "All requests in a batch must use the same model.", number, "body.model")
        seen.add(str(custom_id))
        lines.append(item)
    return lines, errors


class BatchStore(FileStore):
    """What the Files and Batch APIs keep, answering as the real ones do at time ``now()`` (Unix seconds).

    ``seconds_per_request`` is the queue's modelled throughput, or one per batch in the order they
    are created, the last repeating (a scenario may slow a batch down so it runs past its window
    and expires).
    """

    def __init__(self, now: Callable[[], float], answer: Answer, *, seed: str = "batch",
                 seconds_per_request: int | Sequence[int] = SECONDS_PER_REQUEST) -> None:
        super().__init__(now, seed=seed)
        self.answer = answer
        self.speeds = [seconds_per_request] if isinstance(seconds_per_request, int) else list(seconds_per_request)
        self.batches: dict[str, StoredBatch] = {}

    # ---------------------------------------------------------------- batches
    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /v1/batches``."""
        input_id = str(body.get("input_file_id") or "")
        stored = self.files.get(input_id)
        if stored is None:
            return api_error(400, f"Invalid 'input_file_id': no such file {input_id!r}.", "input_file_id")
        if stored.purpose != "batch":
            return api_error(400, f"The file {input_id} was uploaded with purpose {stored.purpose!r}; a batch needs purpose 'batch'.",
                          "input_file_id")
        if body.get("completion_window") not in WINDOWS:
            return api_error(400, f"Invalid completion_window {body.get('completion_window')!r}: use '24h'.", "completion_window")
        endpoint_path = str(body.get("endpoint") or "")
        lines, errors = validate_lines(stored.content, endpoint_path)
        with self._lock:
            batch_id = "batch_" + hex_id(self.seed, "batch", len(self.batches), input_id)
            batch = StoredBatch(batch_id, input_id, endpoint_path, str(body["completion_window"]), dict(body.get("metadata") or {}),
                                self._at(), lines, errors, seconds_per_request=self.speeds[min(len(self.batches), len(self.speeds) - 1)])
            self.batches[batch_id] = batch
        return 200, self._object(batch, batch.created_at)

    def retrieve(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """``GET /v1/batches/{id}``: the batch as it stands now."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return api_error(404, f"No batch found with id '{batch_id}'.", "batch_id")
        with self._lock:
            return 200, self._object(batch, self._at())

    def cancel(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        """``POST /v1/batches/{id}/cancel``: requests still waiting are not run."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return api_error(404, f"No batch found with id '{batch_id}'.", "batch_id")
        with self._lock:
            at = self._at()
            state = self._object(batch, at)
            if state["status"] in TERMINAL:
                return api_error(409, f"Cannot cancel a batch with status {state['status']!r}.", "batch_id")
            batch.cancelling_at = at
            return 200, self._object(batch, at)

    # ---------------------------------------------------------------- the state at a time
    def _answer_line(self, batch: StoredBatch, i: int) -> tuple[int, dict[str, Any], str]:
        if i not in batch.answers:
            line = batch.lines[i]
            batch.answers[i] = self.answer(str(line["custom_id"]), str(line["url"]), dict(line["body"]))
        return batch.answers[i]

    def _counts(self, batch: StoredBatch, done: int) -> dict[str, int]:
        failed = sum(1 for i in range(done) if self._answer_line(batch, i)[0] != 200)
        return {"total": len(batch.lines), "completed": done - failed, "failed": failed}

    def _object(self, batch: StoredBatch, at: int) -> dict[str, Any]:
        times: dict[str, int | None] = dict.fromkeys(
            ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at"))
        out: dict[str, Any] = {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint, "errors": None, "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window, "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": batch.created_at, "expires_at": batch.expires_at,
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "metadata": batch.metadata or None,
            "model": str(batch.lines[0]["body"].get("model")) if batch.lines else None, "usage": None,
        }
        if batch.final is not None:
            out.update(batch.final)
            return out
        if at < batch.in_progress_at:
            out.update(times)
            return out
        if batch.errors:
            times["failed_at"] = batch.in_progress_at
            out.update(times, status="failed", errors={"object": "list", "data": batch.errors})
            batch.final = {k: out[k] for k in ("status", "errors", *times)}
            return out
        times["in_progress_at"] = batch.in_progress_at
        if batch.cancelling_at is not None:
            times["cancelling_at"] = batch.cancelling_at
            if at < batch.cancelling_at + FINALIZE_SECONDS:
                done = batch.processed(batch.cancelling_at)
                out.update(times, status="cancelling", request_counts=self._counts(batch, done))
                return out
            ended = times["cancelled_at"] = batch.cancelling_at + FINALIZE_SECONDS
            return self._finish(batch, out, times, "cancelled", batch.processed(batch.cancelling_at), CANCELLED, ended)
        if batch.done_at > batch.expires_at and at >= batch.expires_at:
            times["expired_at"] = batch.expires_at
            return self._finish(batch, out, times, "expired", batch.processed(batch.expires_at), EXPIRED, batch.expires_at)
        if at < batch.done_at:
            out.update(times, status="in_progress", request_counts=self._counts(batch, batch.processed(at)))
            return out
        times["finalizing_at"] = batch.done_at
        if at < batch.done_at + FINALIZE_SECONDS:
            out.update(times, status="finalizing", request_counts=self._counts(batch, len(batch.lines)))
            return out
        ended = times["completed_at"] = batch.done_at + FINALIZE_SECONDS
        return self._finish(batch, out, times, "completed", len(batch.lines), None, ended)

    def _finish(self, batch: StoredBatch, out: dict[str, Any], times: dict[str, int | None], status: str, done: int,
                unrun: dict[str, str] | None, at: int) -> dict[str, Any]:
        """Write the output and error files (lines in the order requests finished) and freeze the batch."""
        ok_rows: list[dict[str, Any]] = []
        error_rows: list[dict[str, Any]] = []
        usage: dict[str, Any] = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
        for i, line in enumerate(batch.lines):
            custom_id = str(line["custom_id"])
            row_id = "batch_req_" + hex_id(batch.id, custom_id)
            if i < done:
                status_code, body, request_id = self._answer_line(batch, i)
                row = {"id": row_id, "custom_id": custom_id,
                       "response": {"status_code": status_code, "request_id": request_id, "body": body}, "error": None}
                (ok_rows if status_code == 200 else error_rows).append(row)
                if status_code == 200:
                    _add_usage(usage, body.get("usage") or {})
            elif unrun is not None:
                error_rows.append({"id": row_id, "custom_id": custom_id, "response": None, "error": dict(unrun)})
        finished = sorted(ok_rows, key=lambda r: hex_id(batch.id, "order", r["custom_id"]))
        errored = sorted(error_rows, key=lambda r: hex_id(batch.id, "order", r["custom_id"]))
        if finished:
            batch.output_file_id = self._generated(batch, "output", finished, at)
        if errored:
            batch.error_file_id = self._generated(batch, "error", errored, at)
        counts = {"total": len(batch.lines), "completed": len(ok_rows),
                  "failed": len(error_rows) if unrun is None else sum(1 for r in error_rows if r["response"] is not None)}
        out.update(times, status=status, request_counts=counts, output_file_id=batch.output_file_id,
                   error_file_id=batch.error_file_id, usage=usage)
        batch.final = {k: out[k] for k in ("status", "request_counts", "output_file_id", "error_file_id", "usage", *times)}
        return out

    def _generated(self, batch: StoredBatch, kind: str, rows: list[dict[str, Any]], at: int) -> str:
        content = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")
        return self.add("file-" + hex_id(batch.id, kind, n=22), f"{batch.id}_{kind}.jsonl", "batch_output", content, at)


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    """Add one answer's usage (either API's shape) to a batch's Responses-shaped total."""
    inp = int(usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0)
    out = int(usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0)
    details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    total["input_tokens"] += inp
    total["output_tokens"] += out
    total["total_tokens"] += inp + out
    total["input_tokens_details"]["cached_tokens"] += int(details.get("cached_tokens") or 0)
    total["output_tokens_details"]["reasoning_tokens"] += int(out_details.get("reasoning_tokens") or 0)


# --------------------------------------------------------------------------- serving a store over HTTP


def route(store: BatchStore, method: str, path: str, raw: bytes) -> tuple[int, bytes | dict[str, Any]] | None:
    """Answer a Files or Batch API request from ``store``; None for any other path."""
    parts = path.rstrip("/").split("/")[2:]  # after "/v1"
    found = route_files(store, method, parts, raw)
    if found is not None or not parts or parts[0] != "batches":
        return found
    body: Any
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if method == "POST" and len(parts) == 1:
        return store.create(body if isinstance(body, dict) else {})
    if method == "GET" and len(parts) == 2:
        return store.retrieve(parts[1])
    if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
        return store.cancel(parts[1])
    return api_error(404, f"Invalid URL ({method} {path}).")


class BatchAPI(httpx2.BaseTransport):
    """A :class:`BatchStore` served as the Files and Batch APIs, for checks and tests (in-process, no socket).

    Every request is kept in :attr:`requests` as ``(method, path)``; other endpoints answer 404.
    """

    def __init__(self, store: BatchStore) -> None:
        self.store = store
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        self.requests.append((request.method, request.url.path))
        found = route(self.store, request.method, request.url.path, raw)
        if found is None:
            found = api_error(404, f"Invalid URL ({request.method} {request.url.path}): this stand-in serves files and batches only.")
        status, payload = found
        if isinstance(payload, bytes):
            return httpx2.Response(status, headers={"content-type": "application/octet-stream"}, content=payload, request=request)
        return httpx2.Response(status, headers={"content-type": JSON, "x-request-id": "req_" + hex_id(len(self.requests))},
                               content=json.dumps(payload).encode(), request=request)

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """An SDK client on this stand-in (no retries: the code under test decides)."""
        import openai

        from ..modes import attach_transport

        common = {"api_key": "batch-no-key", "base_url": "https://api.openai.com/v1", "max_retries": 0, **kwargs}
        made = openai.OpenAI(http_client=httpx2.Client(transport=self), **common)
        attach_transport(made, self)
        return made


# --------------------------------------------------------------------------- authoring


def store_of(p: Pending) -> BatchStore:
    """The authoring store in ``Pending.data["state"]`` (made on first use from the source's clock and answers)."""
    from ..authoring import AUTHORED_AT

    state = p.data.setdefault("state", {})
    store = state.get("batch_store")
    if store is None:
        answer = state.get("batch_answer")
        if answer is None:
            raise RuntimeError("a batch source must say how lines are answered: a.state['batch_answer'] = fn(custom_id, url, body)")
        store = BatchStore(state.get("batch_now") or (lambda: AUTHORED_AT), answer, seed="authored")
        state["batch_store"] = store
    if not isinstance(store, BatchStore):
        raise TypeError("Pending.data['state']['batch_store'] is not a BatchStore")
    return store


def render(found: tuple[int, bytes | dict[str, Any]]) -> tuple[int, str, str]:
    """A store's answer as an authoring handler returns it: ``(status, payload, content type)``."""
    status, payload = found
    if isinstance(payload, bytes):
        return status, payload.decode("utf-8"), "application/octet-stream"
    return status, json.dumps(payload, indent=2, ensure_ascii=False), JSON


def _handler(r: Renderer, method: str, path: str, body: Any, raw: bytes, p: Pending, seed: str) -> tuple[int, str, str]:
    found = route(store_of(p), method, path, raw)
    assert found is not None
    return render(found)


endpoint("POST", r"/v1/batches")(_handler)
endpoint("GET", r"/v1/batches/batch_[0-9a-f]+")(_handler)
endpoint("POST", r"/v1/batches/batch_[0-9a-f]+/cancel")(_handler)


def renderer_answer(replies: Callable[[str, dict[str, Any]], Any], seed: str = "batch") -> Answer:
    """An :data:`Answer` that renders each line with :class:`~labkit.authoring.Renderer`: the API's
    error for a request it rejects (``labkit.simulate.api_error_for``), else ``replies(custom_id, body)``
    (the answer text, or a dict of ``a.call`` options such as ``{"error": {...}}``)."""
    from ..authoring import Pending, Renderer
    from ..simulate import api_error_for

    def answer(custom_id: str, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        raw = json.dumps(body, sort_keys=True).encode()
        line_seed = hex_id(seed, custom_id, raw)
        error = api_error_for(body)
        said = None if error else replies(custom_id, body)
        opts: dict[str, Any] = dict(said) if isinstance(said, dict) else {"reply": said}
        if error:
            opts = {"error": error}
        pending = Pending(reply=opts.pop("reply", None), error=opts.pop("error", None), **opts)
        status, payload, headers = Renderer().render(url, body, raw, pending, line_seed)
        return status, json.loads(payload), headers["x-request-id"]

    return answer
