"""Learner progress across exercises, kept in a small JSON file (like rustlings).

Every check run on the learner's own folder (``labkit check``, ``labkit watch``, the last cell
of a notebook) records what ``labkit check`` printed: the points (hidden checks included, as
in the check's table), how many visible checks pass, and each visible check's status. So
``labkit progress`` counts exactly what ``labkit check`` counts, and ``labkit hint`` can put
the checks that failed last time first.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths

if TYPE_CHECKING:
    from .checks import CheckSpec, Exercise, Report, Status

#: Order of ``labkit hint``: what to fix first. A check the last run did not have comes last.
HINT_ORDER: dict[str, int] = {"fail": 0, "error": 1, "skip": 2, "pass": 3}


def state_file() -> Path:
    """The progress file (``.labkit/progress.json`` at the course root, or under ``LABKIT_STATE``)."""
    return paths.state_dir() / "progress.json"


def load() -> dict[str, Any]:
    """The saved state; an unreadable file is treated as empty (and rewritten on the next check)."""
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def record(report: Report) -> None:
    """Remember the latest result of an exercise (atomic write; never fails a check)."""
    state = load()
    visible = [r for r in report.results if not r.hidden]
    state[report.exercise] = {
        "score": report.score,
        "max_score": report.max_score,
        "passed": report.passed,
        "checks_passed": sum(r.status == "pass" for r in visible),
        "checks": len(visible),
        "statuses": {r.id: r.status for r in visible},
        "at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "at_epoch": time.time(),
    }
    try:
        path = state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


@dataclass(frozen=True)
class LastRun:
    """What the learner's last check of one exercise found."""

    score: int
    max_score: int
    passed: bool
    checks_passed: int
    checks: int
    statuses: dict[str, Status]
    at: str
    at_epoch: float

    @property
    def points(self) -> str:
        """The same count as the title of ``labkit check``'s table: ``3/7 points``."""
        return f"{self.score}/{self.max_score} points"

    @property
    def visible(self) -> str:
        return f"{self.checks_passed} of {self.checks} checks pass"


def last_run(exercise_id: str, state: dict[str, Any] | None = None) -> LastRun | None:
    """The last recorded run of an exercise, or None (never checked, or an unreadable entry)."""
    s = (load() if state is None else state).get(exercise_id)
    if not isinstance(s, dict):
        return None
    try:
        return LastRun(int(s["score"]), int(s["max_score"]), bool(s["passed"]), int(s["checks_passed"]),
                       int(s["checks"]), dict(s.get("statuses") or {}), str(s.get("at", "")), float(s.get("at_epoch", 0)))
    except (KeyError, TypeError, ValueError):
        return None


def hint_order(exercise: Exercise, run: LastRun | None) -> list[tuple[CheckSpec, Status | None]]:
    """The visible checks with their status in ``run``, failing ones first (else in the lesson's order)."""
    specs = [s for s in exercise.checks if not s.hidden]
    rows = [(s, run.statuses.get(s.id) if run else None) for s in specs]
    return sorted(rows, key=lambda row: HINT_ORDER.get(row[1] or "", len(HINT_ORDER)))


def edited_since(exercise: Exercise, run: LastRun) -> bool:
    """Whether the learner's file was saved after that run (its marks may be out of date)."""
    try:
        return (paths.exercises_dir() / f"{exercise.file}.py").stat().st_mtime > run.at_epoch > 0
    except OSError:
        return False


@dataclass(frozen=True)
class Row:
    """One line of ``labkit progress``: an exercise and its last run (None: never checked)."""

    exercise: Exercise
    run: LastRun | None

    @property
    def state(self) -> str:
        return "not started" if self.run is None else ("done" if self.run.passed else "in progress")

    @property
    def max_score(self) -> int:
        return self.run.max_score if self.run else sum(s.points for s in self.exercise.checks)

    @property
    def points(self) -> str:
        return f"{self.run.score if self.run else '-'}/{self.max_score}"

    @property
    def checks(self) -> str:
        visible = sum(not s.hidden for s in self.exercise.checks)
        return f"{self.run.checks_passed}/{self.run.checks}" if self.run else f"-/{visible}"


def rows() -> list[Row]:
    """One row per exercise, counted as ``labkit check`` counts: points, then visible checks passed."""
    from .checks import exercise_ids, get_exercise

    state = load()
    return [Row(get_exercise(i), last_run(i, state)) for i in exercise_ids()]


def totals(table: list[Row]) -> tuple[int, int, int]:
    """Points earned, points available and exercises done, across the course."""
    earned = sum(r.run.score for r in table if r.run)
    return earned, sum(r.max_score for r in table), sum(r.state == "done" for r in table)


def course_map() -> list[tuple[str, str, str, str]]:
    """Each exercise: id, the part of the lesson it is, its file in exercises/ and its notebook."""
    from .checks import exercise_ids, get_exercise

    return [(e.id, e.lesson, f"exercises/{e.file}.py", e.notebook) for e in map(get_exercise, exercise_ids())]
