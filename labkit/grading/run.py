"""``labkit grade``: the run from start to finish (see :mod:`labkit.grading` for the parts)."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ..errors import GradingError
from . import outputs, sandbox, settings, store, supervise
from .environ import clean_environ, secret_names
from .plan import find_learners
from .redis_slots import RedisSlots
from .verdict import missing_record
from .warm import warm


def grade(
    submissions: str | Path,
    out: str | Path,
    *,
    jobs: int = 2,
    timeout: float = 60.0,
    memory_mb: int = 1024,
    exercises: list[str] | None = None,
    progress: bool = True,
) -> str:
    """Grade every learner folder in ``submissions`` into ``out``; return a short summary.

    Each sub-folder is one learner (its name is the learner id) holding a copy of their
    ``exercises/`` files. Learners already graded with the same files and the same checks
    are not graded again.
    """
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    os.environ["LABKIT_NO_DOTENV"] = "1"  # never load the course's .env key into the grader
    if jobs < 1 or timeout <= 0 or memory_mb < 64:
        raise GradingError("Use --jobs >= 1, --timeout > 0 and --memory >= 64 (MB).")
    learners = find_learners(submissions, out)
    s = settings.build(exercises, timeout, memory_mb)
    if secret_names(os.environ):
        return _rerun_clean(submissions, out, jobs, timeout, memory_mb, exercises, progress)
    for sub in ("results", "feedback"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    todo = [ln for ln in learners if not ln.too_large and not store.is_current(out, ln, s)]
    start = time.perf_counter()
    if todo:
        work = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
        slots = None
        try:
            if "labkit.redisd" in sys.modules:  # a selected exercise's checks use Redis
                slots = RedisSlots(min(jobs, len(todo)), work, memory_mb)
            warm(s, slots)
            supervise.run_all(todo, s, work, out, jobs, progress, slots, sandbox.check_code())
        finally:
            gc.unfreeze()
            if slots:
                slots.stop()
            shutil.rmtree(work, ignore_errors=True)
    records = [store.load(out, ln) or missing_record(ln, s) for ln in learners]
    outputs.write_all(out, learners, records, s)
    counts = Counter(r.status for r in records)
    return (
        f"graded {len(todo)} submission(s), {len(learners) - len(todo)} unchanged since the last run, "
        f"in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{n} {st}" for st, n in counts.most_common())
        + f"\ngradebook: {out / 'gradebook.csv'} (and .json); feedback: {out / 'feedback'}; summary: {out / 'summary.md'}"
    )


def _rerun_clean(submissions: Path, out: Path, jobs: int, timeout: float, memory_mb: int,
                 exercises: list[str] | None, progress: bool) -> str:
    """Run the grader again with secrets removed from the environment (and /proc/self/environ)."""
    env = clean_environ(os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", "")
    if sys.argv[1:2] == ["grade"] and (spec_name == "labkit.cli" or Path(sys.argv[0]).name == "labkit"):
        os.execve(sys.executable, [sys.executable, "-m", "labkit.cli", *sys.argv[1:]], env)
    cmd = [sys.executable, "-m", "labkit.cli", "grade", str(submissions), "--out", str(out), "--jobs", str(jobs),
           "--timeout", str(timeout), "--memory", str(memory_mb)]
    cmd += [a for e in exercises or [] for a in ("--exercise", e)] + ([] if progress else ["--no-progress"])
    done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode:
        raise GradingError(f"the grading process (run with a clean environment) failed with exit code {done.returncode}")
    return done.stdout.strip()
