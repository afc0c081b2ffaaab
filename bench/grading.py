"""Class grading speed: `labkit grade --jobs 2` (bubblewrap sandbox on) on copies of solutions/ vs `nbgrader autograde`.

labkit, grader cost: 10 and 100 copies of solutions/ graded on ex01 only, whose checks take
milliseconds, like nbgrader's trivial notebook (fresh out dir each run, best of 2): the marginal
cost per submission, (t100 - t10) / 90, and wall / 100. Then the whole course: a class of 30 copies
graded on every exercise whose reference passes, wall / 30 (the budget: 2.0 s per learner; start-up,
the reference run in the sandbox and the checks' own time included). ``--course [exNN ...]`` runs
only that figure (optionally on the exercises named).
nbgrader: a three-cell notebook (markdown, solution, autograder test) in a throwaway venv
(/tmp/labkit-bench-nbgrader, reused; nbgrader is not a project dependency), autograded for 1 and
5 submissions: marginal (t5 - t1) / 4. Prints readable lines, then one JSON line last.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBG_VENV = Path("/tmp/labkit-bench-nbgrader")
SLOW_S = 1.0  # exercises whose checks alone take longer are reported by name
TRIVIAL = "ex01"  # a first exercise whose checks take milliseconds: the grader's own cost shows
sys.path.insert(0, str(ROOT))

from labkit.checks import exercise_ids, get_exercise, run_checks
from labkit.grading.environ import clean_environ


def gradable() -> tuple[list[str], dict[str, float]]:
    """Exercises whose checks load and pass on the reference solution, split by how long the checks take.

    Returns the fast ones (checks under SLOW_S in-process, where the grader's own cost shows) and
    the seconds each slow one takes (its checks' own time, which no grader can shorten).
    """
    fast, slow = [], {}
    for ex in exercise_ids():
        try:
            spec = get_exercise(ex)
            if not (ROOT / "solutions" / f"{spec.file}.py").exists():
                continue
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                report = run_checks(ex, ROOT / "solutions")
            took = time.perf_counter() - start
        except Exception as err:  # noqa: BLE001 - an exercise still being written
            print(f"skipping {ex}: its checks do not load ({type(err).__name__})")
            continue
        if report.score != report.max_score:
            print(f"skipping {ex}: the reference solution scores {report.score}/{report.max_score}")
        elif took > SLOW_S:
            slow[ex] = round(took, 2)
        else:
            fast.append(ex)
    return fast, slow


def time_labkit(n: int, exercises: list[str], base: Path) -> float:
    subs, out = base / f"subs{n}", base / f"out{n}"
    if not subs.exists():
        for i in range(n):
            shutil.copytree(ROOT / "solutions", subs / f"learner{i:03d}", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(out, ignore_errors=True)
    env = clean_environ(os.environ) | {"LABKIT_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", "labkit.cli", "grade", str(subs), "--out", str(out), "--jobs", "2", "--no-progress",
           *(a for e in exercises for a in ("--exercise", e))]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0 or f"{n} ok" not in done.stdout:
        bad = [r for r in json.loads((out / "gradebook.json").read_text())["learners"] if r["status"] != "ok"][:1] \
            if (out / "gradebook.json").exists() else []
        raise SystemExit(f"labkit grade failed on {n} copies:\n{done.stdout}\n{done.stderr[-2000:]}\n"
                         + (f"first bad row: {bad[0]['status']}: {bad[0]['detail']}" if bad else ""))
    return took


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Problem set 1\n", "Write `add(a, b)`."]},
        {"cell_type": "code", "execution_count": None, "outputs": [],
         "metadata": {"nbgrader": {"grade": False, "grade_id": "answer", "locked": False, "schema_version": 3, "solution": True}},
         "source": ["def add(a, b):\n", "    ### BEGIN SOLUTION\n", "    return a + b\n", "    ### END SOLUTION"]},
        {"cell_type": "code", "execution_count": None, "outputs": [],
         "metadata": {"nbgrader": {"grade": True, "grade_id": "test_add", "locked": True, "points": 1, "schema_version": 3,
                                   "solution": False}},
         "source": ["assert add(1, 2) == 3\n", "assert add(-1, 1) == 0"]},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def nbgrader_env() -> dict[str, str] | str:
    """The throwaway venv's environment (its bin/ on PATH, for alembic), or why it is unavailable."""
    if not (NBG_VENV / "bin" / "nbgrader").exists():
        print(f"installing nbgrader into {NBG_VENV} (once) ...")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(NBG_VENV)], check=True, capture_output=True)
            subprocess.run([str(NBG_VENV / "bin" / "pip"), "install", "-q", "nbgrader", "ipykernel"], check=True,
                           capture_output=True, text=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as err:
            detail = getattr(err, "stderr", "") or ""
            return f"could not install nbgrader: {err} {detail[-300:]}"
    env = clean_environ(os.environ)
    env["PATH"] = f"{NBG_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(NBG_VENV)
    return env


def time_nbgrader(n: int, env: dict[str, str], base: Path) -> float:
    course = base / f"nbgrader{n}"
    shutil.rmtree(course, ignore_errors=True)
    (course / "source" / "ps1").mkdir(parents=True)
    students = ", ".join(f"dict(id='s{i}')" for i in range(n))
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.root = '.'\n"
                                               "c.CourseDirectory.db_assignments = [dict(name='ps1')]\n"
                                               f"c.CourseDirectory.db_students = [{students}]\n")
    (course / "source" / "ps1" / "ps1.ipynb").write_text(json.dumps(NOTEBOOK))
    nbg = str(NBG_VENV / "bin" / "nbgrader")
    subprocess.run([nbg, "generate_assignment", "ps1", "--force"], cwd=course, env=env, check=True, capture_output=True)
    release = json.loads((course / "release" / "ps1" / "ps1.ipynb").read_text())
    for cell in release["cells"]:
        cell["source"] = "".join(cell["source"]).replace("raise NotImplementedError()", "return a + b")
    for i in range(n):
        (course / "submitted" / f"s{i}" / "ps1").mkdir(parents=True)
        (course / "submitted" / f"s{i}" / "ps1" / "ps1.ipynb").write_text(json.dumps(release))
    start = time.perf_counter()
    done = subprocess.run([nbg, "autograde", "ps1"], cwd=course, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    graded = list((course / "autograded").glob("*/ps1/ps1.ipynb"))
    if done.returncode != 0 or len(graded) != n:
        raise RuntimeError(f"nbgrader autograde failed ({len(graded)}/{n} graded): {done.stderr[-1500:]}")
    return took


CLASS = 30  # learners in the course-wide figure


def course_figure(base: Path, course: list[str], slow: dict[str, float]) -> dict[str, object]:
    """The whole course for a class of CLASS learners: wall seconds per learner."""
    every = sorted(course + list(slow))
    t_course = time_labkit(CLASS, every, base / "course")
    print(f"labkit grade --jobs 2, sandboxed, the whole course ({', '.join(every)}): {CLASS} learners in {t_course:.1f} s = "
          f"{t_course / CLASS:.2f} s per learner (budget 2.0)" + (f"; slowest checks in-process: {slow} s" if slow else ""))
    return {"course_exercises": every, "course_learners": CLASS, "labkit_course_s": round(t_course, 2),
            "labkit_course_wall_per_learner": round(t_course / CLASS, 3), "slow_exercises_check_s": slow}


def main() -> None:
    course, slow = gradable()
    if "--course" in sys.argv[1:]:
        only = [a for a in sys.argv[sys.argv.index("--course") + 1:] if not a.startswith("-")]
        if only:  # e.g. --course ex01 ex02: the class graded on these exercises only
            course, slow = [e for e in course if e in only], {e: t for e, t in slow.items() if e in only}
        with tempfile.TemporaryDirectory(prefix="labkit-bench-grading-") as tmp:
            print(json.dumps(course_figure(Path(tmp), course, slow)))
        return
    result: dict[str, object] = {"trivial_exercise": TRIVIAL}
    with tempfile.TemporaryDirectory(prefix="labkit-bench-grading-") as tmp:
        base = Path(tmp)
        t1 = min(time_labkit(1, [TRIVIAL], base) for _ in range(2))
        t10 = min(time_labkit(10, [TRIVIAL], base) for _ in range(2))
        t100 = min(time_labkit(100, [TRIVIAL], base) for _ in range(2))
        marginal = (t100 - t10) / 90
        print(f"labkit grade --jobs 2, {TRIVIAL} only (checks take ~10 ms): 1 copy {t1:.2f} s (start-up included), "
              f"10 copies {t10:.2f} s, 100 copies {t100:.2f} s")
        print(f"  marginal {marginal:.3f} s per submission; wall/100 = {t100 / 100:.3f} s")
        result |= {"labkit_1_s": round(t1, 3), "labkit_10_s": round(t10, 3), "labkit_100_s": round(t100, 3),
                   "labkit_s_per_submission": round(marginal, 4), "labkit_wall_per_submission": round(t100 / 100, 4)}
        result |= course_figure(base, course, slow)
        env = nbgrader_env()
        nb_marginal = nb1 = None
        if isinstance(env, str):
            print(env)
        else:
            try:
                nb1 = min(time_nbgrader(1, env, base) for _ in range(2))
                nb5 = min(time_nbgrader(5, env, base) for _ in range(2))
                nb_marginal = (nb5 - nb1) / 4
                print(f"nbgrader autograde (3-cell notebook): 1 submission {nb1:.2f} s, 5 submissions {nb5:.2f} s")
                print(f"  marginal {nb_marginal:.3f} s per submission")
            except (RuntimeError, subprocess.SubprocessError, OSError) as err:
                print(f"nbgrader could not be timed: {err}")
    result |= {"nbgrader_1_s": round(nb1, 3) if nb1 else None,
               "nbgrader_s_per_submission": round(nb_marginal, 4) if nb_marginal else None,
               "speedup": round(nb_marginal / marginal, 1) if nb_marginal and marginal > 0 else None}
    if result["speedup"]:
        print(f"speedup (nbgrader marginal / labkit marginal): {result['speedup']}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
