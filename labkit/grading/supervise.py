"""The job pool: fork a child per learner, reap it, kill it at its deadline, record it as it ends.

The parent keeps up to ``jobs`` children running. Each child runs :func:`labkit.grading.child.main`
in its own session; when it ends, the parent kills what is left of its session and any process
it left behind (the parent is a child subreaper, so orphans come back to it), turns the exit
into a record (:mod:`labkit.grading.verdict`) and writes ``results/<learner>.json`` at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from . import child, store
from .plan import Learner
from .redis_slots import RedisSlots
from .settings import Settings
from .verdict import Exit, learner_record


@dataclass
class Job:
    """A running child."""

    learner: Learner
    pid: int
    base: Path
    started: float
    deadline: float
    slot: int
    killed: bool = False


def run_all(todo: list[Learner], s: Settings, work: Path, out: Path, jobs: int, progress: bool,
            slots: RedisSlots | None, trusted: dict[int, types.CodeType]) -> None:
    """Keep up to ``jobs`` children running; reap them, kill the overdue, record each as it ends."""
    import tqdm

    bar = tqdm.tqdm(total=len(todo), disable=not progress, unit="learner", desc="grading", file=sys.stderr)
    pending, running = list(reversed(todo)), dict[int, Job]()
    free = list(range(min(jobs, len(todo))))
    if threading.active_count() > 1:
        print("labkit grade: warning: other threads are running; fork() may copy them in a bad state", file=sys.stderr)
    old_term = signal.signal(signal.SIGTERM, _stop)
    _subreaper(True)  # orphans of a submission (even after setsid) become ours, to be killed
    callers = _children()  # the caller's own children (and our Redis servers) are never strays

    def keep() -> set[int]:
        return callers | {p.pid for p in (slots.procs if slots else [])} | set(running)

    try:
        while pending or running:
            while pending and free:
                job = _start(pending.pop(), s, work / str(len(pending)), free.pop(), slots, trusted)
                running[job.pid] = job
            reaped = False
            for pid, job in list(running.items()):
                done, status, usage = os.wait4(pid, os.WNOHANG)
                if done:
                    reaped = True
                    del running[pid]
                    _kill(pid)
                    _kill_strays(keep())
                    end = Exit(status, usage.ru_maxrss, time.monotonic() - job.started, job.killed)
                    store.save(out, job.learner, learner_record(job.learner, end, job.base / "io", job.base / "sub", s))
                    shutil.rmtree(job.base, ignore_errors=True)
                    if slots:
                        slots.wipe(job.slot)
                    free.append(job.slot)
                    bar.update(1)
                elif not job.killed and time.monotonic() > job.deadline:
                    _kill(pid)
                    job.killed = True
            if not reaped:
                time.sleep(0.002)
    finally:
        for pid in running:
            _kill(pid)
            os.waitpid(pid, 0)
        running.clear()
        _kill_strays(keep())
        _subreaper(False)
        signal.signal(signal.SIGTERM, old_term)
        bar.close()


def _start(ln: Learner, s: Settings, base: Path, slot: int, slots: RedisSlots | None,
           trusted: dict[int, types.CodeType]) -> Job:
    """Fork a child that grades ``ln`` (see :func:`labkit.grading.child.main`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    redis_sock = str(slots.sockets[slot]) if slots else None
    pid = os.fork()
    if pid == 0:
        child.main(ln, s, base, parent, redis_sock, trusted)
    now = time.monotonic()
    return Job(ln, pid, base, now, now + s.timeout, slot)


def _subreaper(on: bool) -> None:
    child.prctl(36, int(on))  # PR_SET_CHILD_SUBREAPER


def _children() -> set[int]:
    """Process ids whose parent is this process."""
    me, found = os.getpid(), set[int]()
    try:
        for task in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{task}/children", encoding="ascii") as fh:
                found.update(int(p) for p in fh.read().split())
        return found
    except OSError:
        pass
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                if entry.isdigit() and int(fh.read().rsplit(")", 1)[1].split()[1]) == me:
                    found.add(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _kill_strays(keep: set[int]) -> None:
    """Kill processes a submission left behind (re-parented to us), so they cannot touch later rows."""
    for _ in range(5):
        strays = _children() - keep
        if not strays:
            return
        for pid in strays:
            _kill(pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _stop(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)


def _kill(pid: int) -> None:
    """Kill a child and anything in its session."""
    for fn, target in ((os.killpg, pid), (os.kill, pid)):
        try:
            fn(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
