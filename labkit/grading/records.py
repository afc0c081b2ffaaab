"""A graded learner's record: frozen, typed, and the same JSON in ``results/`` and ``gradebook.json``.

A :class:`LearnerRecord` holds one :class:`labkit.checks.Report` per exercise (each check a
:class:`labkit.checks.Result`: the same types ``labkit check`` uses, so one renderer serves
both). :func:`exercises_from` rebuilds those reports from the grader's own check table: a
child's raw result supplies only statuses, details and timings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..checks import Exercise, Report, Result, Status
from .protocol import STATUSES, RawResult

MAX_TEXT = 500  # characters of a detail or an error kept in a record


@dataclass(frozen=True)
class LearnerRecord:
    """One learner's grading: a clear status, the score, each exercise, and what the run observed."""

    learner: str
    status: str
    detail: str
    exercises: tuple[Report, ...]
    violations: tuple[str, ...] = ()
    tampered: tuple[str, ...] = ()
    stdout_tail: str = ""
    stderr_tail: str = ""
    seconds: float = 0.0
    max_rss_mb: float = 0.0
    exit: str = ""
    submission_hash: str = ""
    grader_key: str = ""
    graded_at: str = ""

    @property
    def score(self) -> int:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(e.max_score for e in self.exercises)

    @property
    def percent(self) -> float:
        return round(100 * self.score / self.max_score, 1) if self.max_score else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"learner": self.learner, "status": self.status, "detail": self.detail, "score": self.score,
                "max_score": self.max_score, "percent": self.percent, "exercises": [e.to_dict() for e in self.exercises],
                "violations": list(self.violations), "tampered": list(self.tampered), "stdout_tail": self.stdout_tail,
                "stderr_tail": self.stderr_tail, "seconds": self.seconds, "max_rss_mb": self.max_rss_mb, "exit": self.exit,
                "submission_hash": self.submission_hash, "grader_key": self.grader_key, "graded_at": self.graded_at}

    @classmethod
    def from_json(cls, d: Any) -> LearnerRecord:
        """A stored record; ValueError or TypeError if anything in it is off (then the learner is graded again)."""
        d = _dict(d)
        return cls(_str(d, "learner"), _str(d, "status"), _str(d, "detail"),
                   tuple(_report(e) for e in _list(d, "exercises")),
                   tuple(_strs(d, "violations")), tuple(_strs(d, "tampered")), _str(d, "stdout_tail"), _str(d, "stderr_tail"),
                   _float(d, "seconds"), _float(d, "max_rss_mb"), _str(d, "exit"), _str(d, "submission_hash"),
                   _str(d, "grader_key"), _str(d, "graded_at"))


def exercises_from(raw: RawResult | None, exercises: Sequence[Exercise], why: str,
                   sub: Path | None = None) -> tuple[Report, ...]:
    """Each exercise's checks from the grader's table, with the child's statuses and details.

    A check the child did not report is an ``error`` whose detail says why (``why``, or the
    exercise's ``aborted`` reason). ``sub``, the submission copy's temporary folder, is
    removed from texts (it means nothing to the learner).
    """

    def clean(text: str) -> str:
        return (text.replace(f"{sub}{os.sep}", "") if sub else text)[:MAX_TEXT]

    by_ex = {r.exercise: r for r in raw.reports} if raw else {}
    out = []
    for ex in exercises:
        got = by_ex.get(ex.id)
        seen = {c.id: c for c in got.results} if got else {}
        missing = (got.aborted if got else "") or why or "no result for this check"
        results = []
        for spec in ex.checks:
            c = seen.get(spec.id)
            status, detail, seconds = (c.status, c.detail, c.seconds) if c else ("error", missing, 0.0)
            results.append(Result(spec.id, spec.metric, spec.points, spec.hidden, status, clean(detail), spec.hint, seconds))
        out.append(Report(ex.id, ex.title, ex.file, tuple(results), clean(got.import_error) if got else "",
                          bool(got and got.starter), clean(got.aborted) if got else ""))
    return tuple(out)


# --------------------------------------------------------------------------- strict JSON fields


def _report(d: Any) -> Report:
    d = _dict(d)
    return Report(_str(d, "exercise"), _str(d, "title"), _str(d, "file"), tuple(_result(r) for r in _list(d, "results")),
                  _str(d, "import_error"), _bool(d, "starter"), _str(d, "aborted"))


def _result(d: Any) -> Result:
    d = _dict(d)
    status = _str(d, "status")
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return Result(_str(d, "id"), _str(d, "metric"), _int(d, "points"), _bool(d, "hidden"), cast("Status", status),
                  _str(d, "detail"), _str(d, "hint"), _float(d, "seconds"))


def _dict(d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise TypeError(f"expected an object, got {type(d).__name__}")
    return d


def _field(d: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = d.get(key)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"field {key!r} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


def _str(d: dict[str, Any], key: str) -> str:
    return cast(str, _field(d, key, str))


def _int(d: dict[str, Any], key: str) -> int:
    return cast(int, _field(d, key, int))


def _float(d: dict[str, Any], key: str) -> float:
    return float(_field(d, key, (int, float)))


def _bool(d: dict[str, Any], key: str) -> bool:
    return cast(bool, _field(d, key, bool))


def _list(d: dict[str, Any], key: str) -> list[Any]:
    return cast(list[Any], _field(d, key, list))


def _strs(d: dict[str, Any], key: str) -> list[str]:
    items = _list(d, key)
    if not all(isinstance(s, str) for s in items):
        raise TypeError(f"field {key!r} holds a non-string")
    return items
