"""The parent/child result protocol: what a child reports, and how the parent reads it.

A child gets a folder ``io/`` for its ``stdout``, ``stderr`` and ``result.json``. It writes
one JSON document there (:func:`encode`: per exercise, each check's id, status, detail and time;
the audit hook's refusals; what the tamper tripwire saw) and exits with :data:`EXIT_OK` or
one of the other ``EXIT_*`` codes. The parent trusts nothing in it: :func:`read` refuses a
document that is too large, not UTF-8 JSON, nested too deeply, shaped otherwise, or naming
an exercise, check or status the grader does not know, with a :class:`ProtocolError` that
says which. Metric texts, points and hints never travel: the parent has its own table.

Whatever launches the child (a fork today, a sandboxed subprocess later), only this
module and :mod:`labkit.grading.child` define what crosses the boundary.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ..checks import Report, Status

EXIT_OK, EXIT_INTERNAL, EXIT_MEMORY, EXIT_CHANNEL = 0, 70, 71, 72
RESULT, STDOUT, STDERR = "result.json", "stdout", "stderr"  # file names in the child's io/ folder
MAX_BYTES = 4 * 2**20
MAX_VIOLATIONS, MAX_TAMPERED = 20, 5
STATUSES = frozenset({"pass", "fail", "skip", "error"})


class ProtocolError(ValueError):
    """A child's result document is malformed; the message says how."""


@dataclass(frozen=True)
class RawCheck:
    """One check's outcome as the child saw it."""

    id: str
    status: Status
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class RawReport:
    """One exercise as the child ran it (``aborted``: why its checks stopped early)."""

    exercise: str
    import_error: str = ""
    aborted: str = ""
    starter: bool = False
    results: tuple[RawCheck, ...] = ()


@dataclass(frozen=True)
class RawResult:
    """A child's whole result."""

    reports: tuple[RawReport, ...]
    violations: tuple[str, ...]
    tampered: tuple[str, ...]


# --------------------------------------------------------------------------- child side


def from_report(report: Report) -> RawReport:
    """What travels of a checks report: ids, statuses, details and timings."""
    return RawReport(report.exercise, report.import_error, "", report.starter,
                     tuple(RawCheck(r.id, r.status, r.detail, r.seconds) for r in report.results))


def encode(reports: Sequence[RawReport], violations: list[str], tampered: list[str], *,
           dumps: Callable[..., str] = json.dumps, asdict: Callable[..., Any] = dataclasses.asdict) -> bytes:
    """The result document. ``dumps`` and ``asdict`` are bound when labkit loads (the audit hook
    refuses changes to a labkit function's defaults), so learner code that replaces ``json.dumps``
    cannot rewrite what the tripwire found."""
    return dumps({"reports": [asdict(r) for r in reports], "violations": violations, "tampered": tampered}).encode()


# --------------------------------------------------------------------------- parent side


def read(path: Path, table: Mapping[str, Collection[str]]) -> RawResult | None:
    """The child's result, or None if it wrote none (missing or empty file).

    ``table`` maps each graded exercise to its check ids. Raises :class:`ProtocolError`.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return parse(data, table) if data else None


def parse(data: bytes, table: Mapping[str, Collection[str]]) -> RawResult:
    """Check every byte of a result document against the protocol (see the module docstring)."""
    if len(data) > MAX_BYTES:
        raise ProtocolError(f"it is larger than {MAX_BYTES // 2**20} MB")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("it is not UTF-8 text") from None
    except RecursionError:
        raise ProtocolError("it is nested too deeply") from None
    except ValueError as err:
        raise ProtocolError(f"it is not valid JSON ({err})") from None
    top = _object(doc, "the document", {"reports", "violations", "tampered"}, ("reports", "violations", "tampered"))
    reports, seen = [], set()
    for i, item in enumerate(_list(top["reports"], "reports", len(table))):
        rep = _object(item, f"reports[{i}]", {"exercise", "import_error", "aborted", "starter", "results"}, ("exercise",))
        ex = _text(rep.get("exercise"), f"reports[{i}].exercise")
        if ex not in table or ex in seen:
            raise ProtocolError(f"reports[{i}] names exercise {ex[:40]!r}, {'twice' if ex in seen else 'which is not graded'}")
        seen.add(ex)
        starter = rep.get("starter", False)
        if not isinstance(starter, bool):
            raise ProtocolError(f"reports[{i}].starter is not true or false")
        checks, ids = [], set()
        for j, raw in enumerate(_list(rep.get("results", []), f"reports[{i}].results", len(table[ex]))):
            where = f"reports[{i}].results[{j}]"
            c = _object(raw, where, {"id", "status", "detail", "seconds"}, ("id", "status"))
            cid, status = _text(c.get("id"), f"{where}.id"), _text(c.get("status"), f"{where}.status")
            if cid not in table[ex] or cid in ids:
                raise ProtocolError(f"{where} names check {cid[:60]!r}, {'twice' if cid in ids else f'which {ex} does not have'}")
            if status not in STATUSES:
                raise ProtocolError(f"{where} has status {status[:20]!r}, not one of {', '.join(sorted(STATUSES))}")
            ids.add(cid)
            seconds = c.get("seconds", 0.0)
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < 1e6:
                raise ProtocolError(f"{where}.seconds is not a number of seconds")
            checks.append(RawCheck(cid, cast("Status", status), _text(c.get("detail", ""), f"{where}.detail"), float(seconds)))
        reports.append(RawReport(ex, _text(rep.get("import_error", ""), f"reports[{i}].import_error"),
                                 _text(rep.get("aborted", ""), f"reports[{i}].aborted"), starter, tuple(checks)))
    violations = [_text(v, "violations[]") for v in _list(top["violations"], "violations", MAX_VIOLATIONS)]
    tampered = [_text(t, "tampered[]") for t in _list(top["tampered"], "tampered", MAX_TAMPERED)]
    return RawResult(tuple(reports), tuple(violations), tuple(tampered))


def _object(value: Any, where: str, keys: set[str], required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} is a {type(value).__name__}, not an object")
    extra = sorted(set(value) - keys)
    if extra:
        raise ProtocolError(f"{where} has unexpected field {str(extra[0])[:40]!r}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ProtocolError(f"{where} has no {missing[0]!r}")
    return value


def _list(value: Any, where: str, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"{where} is a {type(value).__name__}, not a list")
    if len(value) > most:
        raise ProtocolError(f"{where} has {len(value)} items, more than {most}")
    return value


def _text(value: Any, where: str) -> str:
    """A string field, with any lone surrogate replaced (so it can be written as UTF-8)."""
    if not isinstance(value, str):
        raise ProtocolError(f"{where} is a {type(value).__name__}, not a string")
    return value.encode("utf-8", "replace").decode("utf-8")
