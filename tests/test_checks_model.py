"""The check model itself: outcomes, time limits, hidden details, watch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from labkit.checks import (
    Context,
    Outcome,
    Report,
    Result,
    get_exercise,
    run_checks,
    run_one,
)
from labkit.display import visible

ROOT = Path(__file__).resolve().parent.parent


def test_endless_loop_in_a_check_is_cut_off(tmp_path: Path) -> None:
    ex = get_exercise("ex01")
    spec = ex.checks[0]
    looping = type(spec)(spec.id, spec.metric, spec.points, spec.hidden, spec.hint, lambda ctx: [None for _ in iter(int, 1)])
    t = time.perf_counter()
    result = run_one(looping, Context(ex, None, tmp_path / "x.py"), tmp_path / "x.py", time_limit=0.3)
    assert result.status == "fail" and "took longer than 0.3 s" in result.detail
    assert time.perf_counter() - t < 2


def test_missing_file_and_syntax_error_are_clear(tmp_path: Path) -> None:
    report = run_checks("ex01", tmp_path)
    assert "does not exist" in report.import_error and report.score == 0
    (tmp_path / "ex01_first_call.py").write_text("def build_messages(:\n")
    report = run_checks("ex01", tmp_path)
    assert report.import_error.startswith("SyntaxError") and "line 1" in report.import_error
    assert {r.status for r in report.results if r.points} == {"error"}


def test_hidden_details_never_in_public_view() -> None:
    r = Result("ex01.secret", "secret metric", 2, True, "fail", "saw secret detail", "secret hint", 0.1)
    assert "secret" not in str(visible(r))
    report = Report("ex01", "t", "f", (r,))
    assert "secret" not in str(report.to_dict(reveal_hidden=False)) and "secret" in str(report.to_dict())
    assert Outcome("pass").status == "pass"


def test_watch_rechecks_once_and_stops() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    r = subprocess.run([sys.executable, "-m", "labkit.cli", "watch", "ex01", "--max-runs", "1", "--interval", "0.05"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False)
    assert r.returncode == 0 and "ex01 at" in r.stdout and "points" in r.stdout


def test_check_cli_json_hides_hidden_details() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    r = subprocess.run([sys.executable, "-m", "labkit.cli", "check", "ex01", "--from", "solutions", "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False)
    assert r.returncode == 0
    hidden = [s for s in get_exercise("ex01").checks if s.hidden]
    assert hidden and all(s.metric not in r.stdout and s.hint not in r.stdout for s in hidden)
