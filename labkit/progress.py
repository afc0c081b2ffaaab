"""Learner progress across exercises, kept in a small JSON file (like rustlings)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths

if TYPE_CHECKING:
    from .checks import Report


def state_file() -> Path:
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
    state[report.exercise] = {
        "score": report.score,
        "max_score": report.max_score,
        "passed": report.passed,
        "checks_passed": sum(r.status == "pass" for r in report.results if not r.hidden),
        "checks": sum(not r.hidden for r in report.results),
        "at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        path = state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def rows() -> list[dict[str, Any]]:
    """One row per exercise: id, title, state (not started / in progress / done) and counts."""
    from .checks import exercise_ids, get_exercise

    state = load()
    out = []
    for ex_id in exercise_ids():
        ex = get_exercise(ex_id)
        s = state.get(ex_id)
        status = "not started" if not s else ("done" if s["passed"] else "in progress")
        out.append({"id": ex_id, "title": ex.title, "state": status,
                    "checks": f"{s['checks_passed']}/{s['checks']}" if s else "-", "last_run": s["at"] if s else "-"})
    return out
