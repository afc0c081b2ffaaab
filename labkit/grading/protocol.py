"""What crosses the sandbox's walls, and how the parent reads it: strictly, size-capped, with pydantic.

Three kinds of message, each a length-prefixed frame (:func:`send_frame`, :func:`recv_frame`):

* parent -> zygote, over the slot's control socket: the run's :class:`Config` once, then one
  :class:`Job` per learner (the learner's files travel inside it, so a slot never sees the
  submissions folder), with the job's status pipe attached as a file descriptor;
* zygote -> parent: :class:`Ready` when warm, or :class:`Failed` with why;
* a learner's supervisor -> parent, over the job's own pipe: one :class:`JobEnd` (how the
  runner ended, its output tails, and the raw bytes of its result file).

The runner writes its result file (:func:`encode`) as a token line and one JSON document. The
parent trusts none of it: :func:`parse` refuses a document that is too large, not UTF-8 JSON,
nested too deeply, shaped otherwise, without the job's token, or naming an exercise, check or
status the grader does not know, with a :class:`ProtocolError` that says which. Metric texts,
points and hints never travel: the parent has its own table.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from ..checks import Report, Status

EXIT_OK, EXIT_INTERNAL, EXIT_MEMORY = 0, 70, 71
MAX_BYTES = 4 * 2**20  # a result document
MAX_FRAME = 64 * 2**20  # any frame (a job carries a submission of up to 50 MB)
MAX_VIOLATIONS, MAX_TAMPERED = 20, 5
STATUSES = frozenset({"pass", "fail", "skip", "error"})
_LEN = struct.Struct(">I")


class ProtocolError(ValueError):
    """A message from inside the sandbox is malformed; the message says how."""


# --------------------------------------------------------------------------- frames


def send_frame(sock: socket.socket, data: bytes, fds: Sequence[int] = ()) -> None:
    """One frame: a 4-byte length, then the bytes; ``fds`` travel with the length."""
    head = _LEN.pack(len(data))
    if fds:
        socket.send_fds(sock, [head], list(fds))
    else:
        sock.sendall(head)
    sock.sendall(data)


def recv_frame(sock: socket.socket, limit: int = MAX_FRAME) -> tuple[bytes, list[int]] | None:
    """The next frame and any descriptors sent with it; None at end of stream. Raises ProtocolError."""
    head, fds, _, _ = socket.recv_fds(sock, _LEN.size, 8)
    if not head:
        return None
    while len(head) < _LEN.size:
        more = sock.recv(_LEN.size - len(head))
        if not more:
            raise ProtocolError("the stream ended inside a frame header")
        head += more
    (size,) = _LEN.unpack(head)
    if size > limit:
        for fd in fds:
            os.close(fd)
        raise ProtocolError(f"a frame of {size} bytes is larger than {limit // 2**20} MB")
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 2**20))
        if not chunk:
            raise ProtocolError("the stream ended inside a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks), fds


# --------------------------------------------------------------------------- models

_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)
Text = Annotated[str, Field(max_length=20_000)]


class Config(BaseModel):
    """What every slot needs, once: the exercises, limits, environment and the references to warm with."""

    model_config = _STRICT
    exercises: tuple[str, ...]
    timeout: float
    check_limit: float
    memory_mb: int
    tmp_mb: int
    output_cap_mb: int
    sandboxed: bool
    env: dict[str, str]
    starters: dict[str, str]  # file name -> the pristine starter (public), to warm up on
    work: str  # a folder the slot may write (without a sandbox: learners' folders go there)
    hidden: tuple[str, ...] = ()  # without a sandbox: folders the audit hook refuses to read (solutions/, tests/, .git)
    unicode: dict[str, str] = {}  # hypothesis's Unicode tables, built (path in its storage folder -> base64)


class Job(BaseModel):
    """One learner to grade: a job id, a token the result must carry, and the files (name -> base64).

    ``reference``: the files are the reference solutions (graded first, in the same sandbox); the
    result then carries the observations differential checks compare learners against.
    """

    model_config = _STRICT
    type: Literal["job"] = "job"
    id: int
    token: str
    files: dict[str, str]
    reference: bool = False


class Ready(BaseModel):
    model_config = _STRICT
    type: Literal["ready"]
    fingerprint: str
    redis: bool


class Failed(BaseModel):
    model_config = _STRICT
    type: Literal["failed"]
    message: Text


class JobEnd(BaseModel):
    """How a runner ended, as its supervisor saw it."""

    model_config = _STRICT
    job: int
    status: int  # os.wait4 status
    killed: bool  # stopped at the time limit
    seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    max_rss_kb: Annotated[int, Field(ge=0)]
    stdout: Text
    stderr: Text
    stdout_bytes: Annotated[int, Field(ge=0)]
    stderr_bytes: Annotated[int, Field(ge=0)]
    tmp_full: bool  # the private /tmp filled up
    result: Annotated[str, Field(max_length=2 * MAX_BYTES)]  # base64 of the result file
    setup_error: Text = ""


class RawCheck(BaseModel):
    """One check's outcome as the runner reported it."""

    model_config = _STRICT
    id: Annotated[str, Field(max_length=200)]
    status: Literal["pass", "fail", "skip", "error"]
    detail: Text = ""
    seconds: Annotated[float, Field(ge=0, lt=1e6, allow_inf_nan=False)] = 0.0


class RawReport(BaseModel):
    """One exercise as the runner ran it (``aborted``: why its checks stopped early)."""

    model_config = _STRICT
    exercise: Annotated[str, Field(max_length=40)]
    import_error: Text = ""
    aborted: Text = ""
    starter: bool = False
    results: Annotated[tuple[RawCheck, ...], Field(max_length=200)] = ()


class RawResult(BaseModel):
    """A runner's whole result."""

    model_config = _STRICT
    reports: Annotated[tuple[RawReport, ...], Field(max_length=100)]
    violations: Annotated[tuple[Text, ...], Field(max_length=MAX_VIOLATIONS)]
    tampered: Annotated[tuple[Text, ...], Field(max_length=MAX_TAMPERED)]
    fingerprint: Annotated[str, Field(max_length=200)]
    observations: Annotated[dict[str, str], Field(max_length=2000)] = {}


def model_json(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def load(model: type[Any], data: bytes, what: str) -> Any:
    """``data`` parsed into ``model``; a :class:`ProtocolError` naming the first problem."""
    try:
        return model.model_validate_json(data)
    except ValidationError as err:
        raise ProtocolError(f"{what}: {_first(err)}") from None
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"{what}: {err}"[:300]) from None


def _first(err: ValidationError) -> str:
    e = err.errors(include_url=False)[0]
    where = ".".join(str(x) for x in e["loc"]) or "the document"
    kind = e["type"]
    if kind == "json_invalid":
        ctx = str(e.get("ctx", {}).get("error", ""))
        return "nested too deeply" if "recursion" in ctx.lower() else f"not valid JSON ({ctx[:80]})"
    if kind == "missing":
        return f"{where} is missing"
    if kind == "extra_forbidden":
        return f"unexpected field {where!r}"
    return f"{where}: {e['msg']}"[:300]


# --------------------------------------------------------------------------- the runner's side


@dataclass(frozen=True)
class Check:
    """What travels of one check: its id, status, detail and time."""

    id: str
    status: Status
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Exercise:
    """What travels of one exercise's run."""

    exercise: str
    import_error: str = ""
    aborted: str = ""
    starter: bool = False
    results: tuple[Check, ...] = ()


def from_report(report: Report) -> Exercise:
    return Exercise(report.exercise, report.import_error, "", report.starter,
                    tuple(Check(r.id, r.status, r.detail, r.seconds) for r in report.results))


def encode(token: str, reports: Sequence[Exercise], violations: Sequence[str], tampered: Sequence[str], fingerprint: str,
           observations: Mapping[str, str] | None = None, *, quote: Any = json.encoder.encode_basestring_ascii, num: Any = float.__repr__, join: Any = ",".join,
           tstr: Any = str, enc: Any = str.encode, dec: Any = bytes.decode) -> bytes:
    """The result file: the job's token on the first line, then the document.

    Written with functions bound when labkit loads (C functions: ``encode_basestring_ascii``,
    ``float.__repr__``, ``str.join``), so learner code that patches ``json`` or ``dataclasses``
    cannot change what is written.
    """
    def esc(text: object) -> str:  # lone surrogates become U+FFFD: the document stays valid JSON
        return str(quote(dec(enc(tstr(text), "utf-8", "replace"), "utf-8"))) if isinstance(text, str) else '""'

    def strs(items: Sequence[str]) -> str:
        return "[" + str(join([esc(x) for x in items])) + "]"

    exercises = []
    for r in reports:
        checks = [f'{{"id":{esc(c.id)},"status":{esc(c.status)},"detail":{esc(c.detail)},"seconds":{num(float(c.seconds))}}}'
                  for c in r.results]
        exercises.append(f'{{"exercise":{esc(r.exercise)},"import_error":{esc(r.import_error)},"aborted":{esc(r.aborted)},'
                         f'"starter":{"true" if r.starter is True else "false"},"results":[{join(checks)}]}}')
    seen = join([f"{esc(k)}:{esc(v)}" for k, v in (observations or {}).items()])
    doc = (f'{{"reports":[{join(exercises)}],"violations":{strs(violations)},"tampered":{strs(tampered)},'
           f'"fingerprint":{esc(fingerprint)},"observations":{{{seen}}}}}')
    return (token + "\n" + doc).encode("ascii")


# --------------------------------------------------------------------------- the parent's side


def parse(data: bytes, token: str, table: Mapping[str, Collection[str]]) -> RawResult:
    """Check every byte of a result file against the protocol (see the module docstring)."""
    if len(data) > MAX_BYTES:
        raise ProtocolError(f"it is larger than {MAX_BYTES // 2**20} MB")
    head, sep, body = data.partition(b"\n")
    if not sep or head != token.encode():
        raise ProtocolError("it does not carry this job's token (it was not written by the grader)")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("it is not UTF-8 text") from None
    raw: RawResult = load(RawResult, body, "the result")
    seen: set[str] = set()
    for i, rep in enumerate(raw.reports):
        if rep.exercise not in table or rep.exercise in seen:
            raise ProtocolError(f"reports.{i} names exercise {rep.exercise!r}, "
                                f"{'twice' if rep.exercise in seen else 'which is not graded'}")
        seen.add(rep.exercise)
        ids: set[str] = set()
        for j, c in enumerate(rep.results):
            if c.id not in table[rep.exercise] or c.id in ids:
                raise ProtocolError(f"reports.{i}.results.{j} names check {c.id[:60]!r}, "
                                    f"{'twice' if c.id in ids else f'which {rep.exercise} does not have'}")
            ids.add(c.id)
    return raw
