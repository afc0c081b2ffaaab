"""What a finished job means: the supervisor's report and the runner's result turned into a learner's record."""

from __future__ import annotations

import base64
import binascii
import os
import signal
from datetime import UTC, datetime

from ..checks import COURSE_PROBLEM
from . import protocol
from .plan import Learner
from .protocol import EXIT_INTERNAL, EXIT_MEMORY, JobEnd, ProtocolError, RawResult
from .records import LearnerRecord, exercises_from
from .settings import MAX_SUBMISSION_MB, OUTPUT_CAP_MB, Settings

TIMEOUT_MARKS = ("CheckTimeout", "your code took longer than")  # what labkit.checks writes, not a tool's own message
MALFORMED = "grader error: malformed result"
COURSE = "course problem"


def learner_record(ln: Learner, end: JobEnd | None, token: str, why: str, s: Settings, fingerprint: str) -> LearnerRecord:
    """The record of a learner whose job ended as ``end`` (None: no readable report, ``why`` says why)."""
    from ..checks import get_exercise

    exercises = [get_exercise(e) for e in s.exercises]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if end is None:
        reports = exercises_from(None, exercises, "not graded: " + why)
        return LearnerRecord(ln.name, MALFORMED, f"the grader could not read this submission's report ({why})", reports,
                             submission_hash=ln.digest, grader_key=s.key, graded_at=now)
    raw: RawResult | None = None
    bad = ""
    try:
        data = base64.b64decode(end.result, validate=True)
        if data:
            raw = protocol.parse(data, token, {ex.id: {c.id for c in ex.checks} for ex in exercises})
    except (ProtocolError, binascii.Error, ValueError) as err:
        bad = str(err)
    sig = os.WTERMSIG(end.status) if os.WIFSIGNALED(end.status) else 0
    code = os.WEXITSTATUS(end.status) if os.WIFEXITED(end.status) else None
    rss_mb = end.max_rss_kb / 1024
    cap = OUTPUT_CAP_MB * 2**20
    verdict: tuple[str, str] | None = None
    if end.setup_error:
        verdict = ("grader error", f"the sandbox could not be set up for this submission: {end.setup_error}")
    elif end.killed:
        verdict = ("timeout", f"stopped after {s.timeout:g} s (the time limit): look for an endless loop or a real sleep")
    elif sig == signal.SIGXFSZ or max(end.stdout_bytes, end.stderr_bytes) >= cap:
        verdict = ("output limit", f"wrote more than {OUTPUT_CAP_MB} MB to the screen or a file: look for a print in a loop")
    elif end.tmp_full:
        verdict = ("disk limit", f"filled its {s.tmp_mb} MB of space for files: look for files written in a loop")
    elif sig == signal.SIGXCPU:
        verdict = ("timeout", f"used more than {s.timeout:g} s of CPU time: look for an endless loop")
    elif code == EXIT_MEMORY or (sig == signal.SIGKILL and rss_mb > s.memory_mb * 0.8):
        verdict = ("memory limit", f"needed more than {s.memory_mb} MB of memory")
    elif sig:
        verdict = (f"crashed: signal {signal.Signals(sig).name}", "the process was killed by a signal")
    elif code == EXIT_INTERNAL and raw is None:
        last = end.stderr.strip().splitlines()
        verdict = ("crashed: grader error", f"the grader failed on this submission: {last[-1] if last else 'no message'}")
    elif bad and "token" in bad:
        verdict = ("tampering detected", "the result was not written by the grader: " + bad)
    elif bad:
        verdict = (MALFORMED, f"the grader could not read this submission's result ({bad})")
    elif code != 0:
        verdict = (f"crashed: exit code {code}", "the program ended itself (os._exit or similar) before the checks finished")
    elif raw is None:
        verdict = ("crashed: no result", "the program ended before the checks finished (no result was written)")
    elif raw.fingerprint != fingerprint and not raw.tampered:
        verdict = ("tampering detected", "the code changed labkit or builtins to influence grading")
    reports = exercises_from(raw if not verdict else None, exercises, verdict[1] if verdict else "")
    violations = list(raw.violations) if raw else []
    tampered = list(raw.tampered) if raw else []
    if verdict is None:
        verdict = _verdict(reports, violations, tampered)
        if verdict[0] in ("tampering detected", COURSE):
            reports = exercises_from(None, exercises, f"not graded: {verdict[0]}")
    return LearnerRecord(
        ln.name, verdict[0], verdict[1], reports, tuple(violations), tuple(tampered),
        stdout_tail=end.stdout, stderr_tail=end.stderr, seconds=round(end.seconds, 3), max_rss_mb=round(rss_mb, 1),
        exit=f"signal {sig}" if sig else f"code {code}", submission_hash=ln.digest,
        grader_key="" if verdict[0] == COURSE else s.key, graded_at=now)


def _verdict(reports: tuple[object, ...], violations: list[str], tampered: list[str]) -> tuple[str, str]:
    """The status of a runner that finished its checks: what its results and the guards say."""
    from ..checks import Report

    reps = [r for r in reports if isinstance(r, Report)]
    if tampered or any(v.startswith("changing the grader") for v in violations):
        return "tampering detected", "the code changed labkit or builtins to influence grading: " + ", ".join(tampered or violations[:3])
    problems = [c.detail for r in reps for c in r.results if c.detail.startswith(COURSE_PROBLEM)]
    if problems:
        return COURSE, problems[0] + " (not charged to the learner: fix the course, then grade again)"
    texts = [r.import_error for r in reps] + [c.detail for r in reps for c in r.results if c.status != "pass"]
    if any("MemoryError" in t for t in texts):
        return "memory limit", "the code ran out of memory (MemoryError)"
    if any(m in t for t in texts for m in TIMEOUT_MARKS):
        return "timeout", "part of the code ran past the per-check time limit: look for an endless loop or a real sleep"
    if violations:
        return "blocked: " + violations[0].split(":")[0], "refused: " + "; ".join(violations[:3])
    aborted = [r.aborted for r in reps if r.aborted]
    if aborted:
        return "crashed: during checks", aborted[0]
    missing = [r.exercise for r in reps if "does not exist" in r.import_error]
    broken = [f"{r.exercise}: {r.import_error}" for r in reps if r.import_error and r.exercise not in missing]
    if broken:
        return "import error", "; ".join(broken)
    if missing:
        return "missing file", "no file for " + ", ".join(missing)
    return "ok", ""


def missing_record(ln: Learner, s: Settings) -> LearnerRecord:
    """The record of a learner who could not be graded at all (too large, or no result stored)."""
    from ..checks import get_exercise

    why = f"the submission is larger than {MAX_SUBMISSION_MB} MB" if ln.too_large else "no result was recorded"
    reports = exercises_from(None, [get_exercise(e) for e in s.exercises], why)
    return LearnerRecord(ln.name, "too large" if ln.too_large else "not graded", why, reports, submission_hash=ln.digest)
