"""What a finished child means: its exit, output sizes and raw result turned into a learner's record."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import protocol
from .plan import Learner
from .protocol import EXIT_CHANNEL, EXIT_INTERNAL, EXIT_MEMORY, ProtocolError, RawResult
from .records import LearnerRecord, exercises_from
from .settings import MAX_SUBMISSION_MB, OUTPUT_CAP_MB, Settings

if TYPE_CHECKING:
    from ..checks import Report

TIMEOUT_MARKS = ("CheckTimeout", "took longer than")


@dataclass(frozen=True)
class Exit:
    """How a child ended, as its parent saw it: ``os.wait4`` status and peak memory, and whether
    the parent killed it at the deadline."""

    status: int
    max_rss_kb: int
    seconds: float
    killed: bool


def learner_record(ln: Learner, end: Exit, io_dir: Path, sub: Path, s: Settings) -> LearnerRecord:
    """The record of a learner whose child ended as ``end``, its files in ``io_dir``."""
    from ..checks import get_exercise

    exercises = [get_exercise(e) for e in s.exercises]
    raw: RawResult | None = None
    bad = ""
    try:
        raw = protocol.read(io_dir / protocol.RESULT, {ex.id: {c.id for c in ex.checks} for ex in exercises})
    except ProtocolError as err:
        bad = str(err)
    sizes = [_size(io_dir / protocol.STDOUT), _size(io_dir / protocol.STDERR)]
    sig = os.WTERMSIG(end.status) if os.WIFSIGNALED(end.status) else 0
    code = os.WEXITSTATUS(end.status) if os.WIFEXITED(end.status) else None
    rss_mb = end.max_rss_kb / 1024
    verdict: tuple[str, str] | None = None
    if end.killed:
        verdict = ("timeout", f"stopped after {s.timeout:g} s (the time limit): look for an endless loop or a real sleep")
    elif sig == signal.SIGXFSZ or max(sizes) >= OUTPUT_CAP_MB * 2**20:
        verdict = ("output limit", f"wrote more than {OUTPUT_CAP_MB} MB to the screen or a file: look for a print in a loop")
    elif sig == signal.SIGXCPU:
        verdict = ("timeout", f"used more than {s.timeout:g} s of CPU time: look for an endless loop")
    elif code == EXIT_MEMORY or (sig == signal.SIGKILL and rss_mb > s.memory_mb * 0.8):
        verdict = ("memory limit", f"needed more than {s.memory_mb} MB of memory")
    elif code == EXIT_CHANNEL:
        verdict = ("tampering detected", "the code replaced the grader's result channel")
    elif sig:
        verdict = (f"crashed: signal {signal.Signals(sig).name}", "the process was killed by a signal")
    elif code == EXIT_INTERNAL and raw is None:
        last = _tail(io_dir / protocol.STDERR, 400).strip().splitlines()
        verdict = ("crashed: grader error", f"the grader failed on this submission: {last[-1] if last else 'no message'}")
    elif code != 0:
        verdict = (f"crashed: exit code {code}", "the program ended itself (os._exit or similar) before the checks finished")
    elif bad or raw is None:
        why = bad or "it is empty"
        verdict = ("invalid result", (f"the grader could not read this submission's result ({why}): grade it again, "
                                      "and if this persists look for code that writes to files it did not open"))
    reports = exercises_from(raw if not verdict else None, exercises, verdict[1] if verdict else "", sub)
    violations = list(raw.violations) if raw else []
    tampered = list(raw.tampered) if raw else []
    if verdict is None:
        verdict = _verdict(reports, violations, tampered)
        if verdict[0] == "tampering detected":
            reports = exercises_from(None, exercises, "not graded: tampering detected")
    return LearnerRecord(
        ln.name, verdict[0], verdict[1], reports, tuple(violations), tuple(tampered),
        stdout_tail=_tail(io_dir / protocol.STDOUT), stderr_tail=_tail(io_dir / protocol.STDERR),
        seconds=round(end.seconds, 3), max_rss_mb=round(rss_mb, 1), exit=f"signal {sig}" if sig else f"code {code}",
        submission_hash=ln.digest, grader_key=s.key, graded_at=datetime.now(UTC).isoformat(timespec="seconds"))


def _verdict(reports: tuple[Report, ...], violations: list[str], tampered: list[str]) -> tuple[str, str]:
    """The status of a child that finished its checks: what its results and the guards say."""
    if tampered or any(v.startswith("changing the grader") for v in violations):
        return "tampering detected", "the code changed labkit or builtins to influence grading: " + ", ".join(tampered or violations[:3])
    texts = [r.import_error for r in reports] + [c.detail for r in reports for c in r.results]
    if any("MemoryError" in t for t in texts):
        return "memory limit", "the code ran out of memory (MemoryError)"
    if any(m in t for t in texts for m in TIMEOUT_MARKS):
        return "timeout", "part of the code ran past the per-check time limit: look for an endless loop or a real sleep"
    if violations:
        return "blocked: " + violations[0].split(":")[0], "refused: " + "; ".join(violations[:3])
    aborted = [r.aborted for r in reports if r.aborted]
    if aborted:
        return "crashed: during checks", aborted[0]
    missing = [r.exercise for r in reports if "does not exist" in r.import_error]
    broken = [f"{r.exercise}: {r.import_error}" for r in reports if r.import_error and r.exercise not in missing]
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, _size(path) - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
