"""``labkit grade``: grade a class, each submission in its own sandboxed process.

The parent process drops secrets from its environment (re-executing itself if it had any),
loads labkit, the checks, the SDK, the tokenizer and the cassettes once, and warms them by
grading the reference solutions; then it ``fork()``s one child per submission, so a child
starts warm in milliseconds. Each child works on a copy of the submission, with resource
limits, fds 0/1/2 redirected, and the audit hook of :mod:`labkit.sandbox`; it writes its
raw results to a file the learner's code cannot reach by path and exits. The parent turns
each exit into a row with a clear status, writes ``results/<learner>.json`` atomically as
each one finishes (a re-run skips unchanged submissions), then ``gradebook.csv``,
``gradebook.json``, ``feedback/<learner>.md|.html`` and ``summary.md|.png``.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import html
import io
import json
import linecache
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, paths, sandbox
from .errors import GradingError, UnknownExerciseError

__all__ = ["GradingError", "grade"]

GRADER_VERSION = "1"
OUTPUT_CAP_MB = 8  # per output file: stdout, stderr, anything the submission writes
MAX_SUBMISSION_MB = 50
EXIT_INTERNAL, EXIT_MEMORY, EXIT_CHANNEL = 70, 71, 72
SKIP = frozenset({"__pycache__", ".ipynb_checkpoints", ".git", ".DS_Store", ".venv", "node_modules"})
TIMEOUT_MARKS = ("CheckTimeout", "took longer than")




@dataclass(frozen=True)
class Settings:
    """Everything a child needs, fixed before the first fork."""

    exercises: tuple[str, ...]
    timeout: float
    memory_mb: int
    check_limit: float
    root: Path
    hidden: tuple[Path, ...]
    env: dict[str, str]
    key: str


@dataclass
class Learner:
    """One sub-folder of the submissions folder."""

    name: str
    safe: str
    src: Path
    files: list[str] = field(default_factory=list)
    digest: str = ""
    too_large: bool = False


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


class RedisSlots:
    """One private redis-server per job slot, for exercises whose checks need Redis.

    Children connect over a unix socket (the only socket the audit hook lets them reach).
    Admin commands are disabled (no CONFIG/SAVE file writes, no FLUSHALL, no MONITOR), and the
    parent empties a slot's server between two learners, so learners never see each other's keys.
    """

    DISABLED = ("FLUSHALL", "FLUSHDB", "CONFIG", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "DEBUG", "MODULE",
                "MONITOR", "SYNC", "PSYNC", "REPLICAOF", "SLAVEOF", "MIGRATE", "ACL", "FAILOVER")

    def __init__(self, n: int, folder: Path, memory_mb: int) -> None:
        from . import redisd

        try:
            self.exe = redisd.server_binary()
        except redisd.RedisUnavailable as err:
            raise GradingError(f"{err} (needed by the checks of an exercise; or grade the others with --exercise)") from None
        self.folder, self.memory_mb = folder, memory_mb
        self.sockets = [folder / f"redis{i}" / "redis.sock" for i in range(n)]
        self.procs = [self._spawn(i) for i in range(n)]
        try:
            for i in range(n):
                self.wipe(i, wait=10.0, restart=False)
        except GradingError:
            self.stop()
            raise

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        d = self.sockets[slot].parent
        d.mkdir(parents=True, exist_ok=True)
        cmd = [self.exe, "--port", "0", "--unixsocket", str(self.sockets[slot]), "--unixsocketperm", "700",
               "--dir", str(d), "--save", "", "--appendonly", "no", "--databases", "1", "--loglevel", "warning",
               "--logfile", str(d / "redis.log"), "--maxmemory", f"{self.memory_mb}mb", "--maxmemory-policy", "noeviction"]
        for name in self.DISABLED:
            cmd += ["--rename-command", name, ""]
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self, slot: int) -> str:
        return f"unix://{self.sockets[slot]}"

    def wipe(self, slot: int, wait: float = 1.0, restart: bool = True) -> None:
        """Delete every key of a slot's server; restart the server if it stopped answering."""
        import redis

        deadline = time.monotonic() + wait
        while True:
            try:
                r = redis.Redis(unix_socket_path=str(self.sockets[slot]), socket_timeout=5, socket_connect_timeout=1)
                keys = list(r.scan_iter(count=1000))
                if keys:
                    r.unlink(*keys)
                r.script_flush()
                r.close()
                return
            except (redis.RedisError, OSError) as err:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                elif restart:
                    self.procs[slot].kill()
                    self.procs[slot].wait()
                    self.procs[slot] = self._spawn(slot)
                    deadline, restart = time.monotonic() + 10.0, False
                else:
                    raise GradingError(f"the grader's Redis server {slot} does not answer ({err}); see {self.folder}") from None

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


# --------------------------------------------------------------------------- entry point


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
    learners = _find_learners(submissions, out)
    settings = _settings(exercises, timeout, memory_mb)
    if sandbox.secret_names(os.environ):
        return _rerun_clean(submissions, out, jobs, timeout, memory_mb, exercises, progress)
    for sub in ("results", "feedback"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    todo = [ln for ln in learners if not ln.too_large and not _is_current(out, ln, settings)]
    start = time.perf_counter()
    if todo:
        work = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
        slots = None
        try:
            if "labkit.redisd" in sys.modules:  # a selected exercise's checks use Redis
                slots = RedisSlots(min(jobs, len(todo)), work, memory_mb)
            _warm(settings, slots)
            _run_all(todo, settings, work, out, jobs, progress, slots, sandbox.check_code())
        finally:
            gc.unfreeze()
            if slots:
                slots.stop()
            shutil.rmtree(work, ignore_errors=True)
    records = [_load(out, ln) or _missing_record(ln, settings) for ln in learners]
    _write_outputs(out, learners, records, settings)
    counts = Counter(r["status"] for r in records)
    return (
        f"graded {len(todo)} submission(s), {len(learners) - len(todo)} unchanged since the last run, "
        f"in {time.perf_counter() - start:.1f} s: "
        + ", ".join(f"{n} {s}" for s, n in counts.most_common())
        + f"\ngradebook: {out / 'gradebook.csv'} (and .json); feedback: {out / 'feedback'}; summary: {out / 'summary.md'}"
    )


def _rerun_clean(submissions: Path, out: Path, jobs: int, timeout: float, memory_mb: int,
                 exercises: list[str] | None, progress: bool) -> str:
    """Run the grader again with secrets removed from the environment (and /proc/self/environ)."""
    env = sandbox.clean_environ(os.environ)
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


# --------------------------------------------------------------------------- planning


def _find_learners(submissions: Path, out: Path) -> list[Learner]:
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder: pass the folder that holds one sub-folder per learner "
                           "(each a copy of that learner's exercises/).")
    folders = sorted(p for p in submissions.iterdir()
                     if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and p.name not in SKIP
                     and p.resolve() != out)
    if not folders:
        raise GradingError(f"{submissions} has no learner sub-folders: put each learner's copy of exercises/ "
                           f"in {submissions}/<learner-id>/ and run again.")
    used: set[str] = set()
    learners = []
    for folder in folders:
        safe = re.sub(r"[^A-Za-z0-9._@+-]+", "_", folder.name).strip("._")[:80] or "learner"
        stem, n = safe, 2
        while safe.lower() in used:
            safe, n = f"{stem}-{n}", n + 1
        used.add(safe.lower())
        learners.append(_digest(Learner(folder.name, safe, folder)))
    return learners


def _digest(ln: Learner) -> Learner:
    """Hash the submission's regular files (symlinks and caches are ignored, and never copied)."""
    h, total = hashlib.sha256(), 0
    for root, dirs, names in os.walk(ln.src):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not Path(root, d).is_symlink())
        for name in sorted(names):
            p = Path(root, name)
            if name in SKIP or name.endswith((".pyc", ".pyo")) or p.is_symlink() or not p.is_file():
                continue
            total += p.stat().st_size
            if total > MAX_SUBMISSION_MB * 2**20:
                ln.too_large = True
                return ln
            data = p.read_bytes()
            rel = p.relative_to(ln.src).as_posix()
            ln.files.append(rel)
            h.update(f"{rel}\0{len(data)}\0".encode())
            h.update(data)
    ln.digest = h.hexdigest()
    return ln


def _settings(exercises: list[str] | None, timeout: float, memory_mb: int) -> Settings:
    from .checks import CHECKS_DIR, exercise_ids, get_exercise

    ids = tuple(exercises or exercise_ids())
    for ex in ids:
        try:
            get_exercise(ex)
        except UnknownExerciseError as err:
            raise GradingError(str(err)) from None
        except Exception as err:  # noqa: BLE001 - a broken check module
            raise GradingError(f"The checks of {ex} cannot be loaded ({type(err).__name__}: {err}): fix "
                               f"labkit/checks/{ex}.py/.toml, or grade other exercises with --exercise.") from None
    ids = tuple(get_exercise(e).id for e in ids)
    root = paths.course_root()
    h = hashlib.sha256(f"{GRADER_VERSION}|{__version__}|{','.join(ids)}|{timeout}|{memory_mb}".encode())
    used = [CHECKS_DIR / "__init__.py", Path(__file__), Path(sandbox.__file__)]
    for ex in ids:  # what decides this exercise's results: its checks and its cassettes
        used += [CHECKS_DIR / f"{ex}.py", CHECKS_DIR / f"{ex}.toml", *sorted(paths.cassette_dir().glob(f"{ex}*.json"))]
    for p in used:
        h.update(p.name.encode() + b"\0" + (p.read_bytes() if p.exists() else b""))
    env = sandbox.clean_environ(os.environ) | {
        "LABKIT_MODE": "replay", "LABKIT_ROOT": str(root), "LABKIT_CASSETTES": str(paths.cassette_dir()),
        "LABKIT_NO_DOTENV": "1",  # an instructor's .env key must never reach learner code
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    hidden = tuple(dict.fromkeys([root / "solutions", Path(__file__).resolve().parent.parent / "solutions"]))
    return Settings(ids, float(timeout), int(memory_mb), min(10.0, max(0.5, timeout / 3)), root, hidden, env, h.hexdigest())


def _is_current(out: Path, ln: Learner, s: Settings) -> bool:
    rec = _load(out, ln)
    return bool(rec) and rec.get("submission_hash") == ln.digest and rec.get("grader_key") == s.key


def _load(out: Path, ln: Learner) -> dict[str, Any] | None:
    try:
        rec = json.loads((out / "results" / f"{ln.safe}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("learner") == ln.name else None


def _warm(s: Settings, slots: RedisSlots | None) -> None:
    """Load and exercise everything a child needs, so forked children start warm."""
    import ctypes  # noqa: F401 - loaded now for prctl in children (the hook forbids it later)

    import tqdm

    from . import checks, client, tokens

    tqdm.tqdm.monitor_interval = 0  # a solution's progress bar must not leave a monitor thread behind
    tokens.ensure_encodings()
    tokens.encoding_for("gpt-4o").encode("warm up")
    try:
        import labkit.faults  # noqa: F401
    except ImportError:
        pass
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    old_redis = os.environ.get("REDIS_URL")
    if slots:
        os.environ["REDIS_URL"] = slots.url(0)
    try:
        for ex in s.exercises:
            spec = checks.get_exercise(ex)
            ref = s.root / "solutions" / f"{spec.file}.py"
            try:
                if ref.exists():
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        checks.run_checks(ex, ref, time_limit=s.check_limit)
                else:
                    client.client(ex, mode="replay")
            except Exception:  # noqa: BLE001 - warming is best effort
                pass
    finally:
        sys.dont_write_bytecode = old
        if slots:
            os.environ.pop("REDIS_URL", None) if old_redis is None else os.environ.update(REDIS_URL=old_redis)
            slots.wipe(0)
    hidden = tuple(str(h) for h in s.hidden)
    gone = [name for name, module in list(sys.modules.items())  # the references must not be reachable by name
            if name.startswith("_labkit_learner_") or str(getattr(module, "__file__", "") or "").startswith(hidden)]
    for name in gone:
        del sys.modules[name]
    for folder in s.hidden:
        sys.path_importer_cache.pop(str(folder), None)
    linecache.clearcache()
    for _ in range(4):  # objects with finalizers can take more than one collection to go
        if not gc.collect():
            break
    left = [o for o in gc.get_objects()
            if type(o).__name__ == "function" and str(getattr(o.__code__, "co_filename", "")).startswith(hidden)]
    if left:
        print(f"labkit grade: warning: {len(left)} object(s) of the reference solutions stayed in memory", file=sys.stderr)
    del left
    gc.freeze()  # children then never touch (copy) these objects in their collections


# --------------------------------------------------------------------------- scheduling (parent)


def _run_all(todo: list[Learner], s: Settings, work: Path, out: Path, jobs: int, progress: bool,
             slots: RedisSlots | None, trusted: dict[int, Any]) -> None:
    """Keep up to ``jobs`` children running; reap them, kill the overdue, record each as it ends."""
    import tqdm

    bar = tqdm.tqdm(total=len(todo), disable=not progress, unit="learner", desc="grading", file=sys.stderr)
    pending, running = list(reversed(todo)), {}  # type: list[Learner], dict[int, Job]
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
                    _write_json(out / "results" / f"{job.learner.safe}.json", _record(job, status, usage, s))
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


def _prctl(option: int, value: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _subreaper(on: bool) -> None:
    _prctl(36, int(on))  # PR_SET_CHILD_SUBREAPER


def _children() -> set[int]:
    """Process ids whose parent is this process."""
    me, found = os.getpid(), set()
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


def _start(ln: Learner, s: Settings, base: Path, slot: int, slots: RedisSlots | None, trusted: dict[int, Any]) -> Job:
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    redis_sock = str(slots.sockets[slot]) if slots else None
    pid = os.fork()
    if pid == 0:
        _child(ln, s, base, parent, redis_sock, trusted)
    now = time.monotonic()
    return Job(ln, pid, base, now, now + s.timeout, slot)


# --------------------------------------------------------------------------- the child


def _child(ln: Learner, s: Settings, base: Path, parent: int, redis_sock: str | None, trusted: dict[int, Any]) -> NoReturn:
    """Grade one submission in this forked process, then ``_exit``. Never returns."""
    code = EXIT_INTERNAL
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGXFSZ, signal.SIGXCPU):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent(parent)
        io_dir, sub, tmp = base / "io", base / "sub", base / "tmp"
        for d in (io_dir, sub, tmp):
            d.mkdir(parents=True)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(io_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        result_fd = os.open(io_dir / "result.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.closerange(3, result_fd)
        os.closerange(result_fd + 1, 65536)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
        for rel in ln.files:
            (sub / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ln.src / rel, sub / rel, follow_symlinks=False)
        os.environ.clear()
        os.environ.update(s.env | {"HOME": str(tmp), "TMPDIR": str(tmp), "LABKIT_STATE": str(tmp)})
        if redis_sock:
            os.environ["REDIS_URL"] = f"unix://{redis_sock}"
        tempfile.tempdir = str(tmp)
        os.chdir(sub)
        drop = {str(p) for p in (*s.hidden, s.root, ln.src.parent, ln.src)}
        sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) not in drop]
        sys.dont_write_bytecode = True
        sandbox.set_limits(memory_mb=s.memory_mb, cpu_s=s.timeout, file_mb=OUTPUT_CAP_MB)
        channel = os.fstat(result_fd)

        from .checks import run_checks  # bound here, before any learner code runs

        compare, dumps, pwrite = sandbox.changes, json.dumps, os.pwrite
        before = sandbox.snapshot()
        violations = sandbox.install_audit_hook(write_roots=[sub, tmp], hidden_roots=s.hidden,
                                                writable_files=[io_dir / "stdout", io_dir / "stderr"],
                                                unix_sockets=[redis_sock] if redis_sock else [], trusted=trusted)
        reports = [_run_exercise(run_checks, ex, sub, s.check_limit) for ex in s.exercises]
        payload = dumps({"reports": reports, "violations": list(violations)[:20], "tampered": compare(before)}).encode()
        now = os.fstat(result_fd)
        if (now.st_dev, now.st_ino) != (channel.st_dev, channel.st_ino):
            code = EXIT_CHANNEL
        else:
            pwrite(result_fd, payload, 0)
            os.ftruncate(result_fd, len(payload))
            code = 0
    except MemoryError:
        code = EXIT_MEMORY
    except BaseException:  # noqa: BLE001 - report, then exit with the grader's own code
        try:
            os.write(2, traceback.format_exc().encode("utf-8", "replace")[-4000:])
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this child if the grader dies (prctl PR_SET_PDEATHSIG)."""
    _prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(EXIT_INTERNAL)


def _run_exercise(run_checks: Any, ex: str, folder: Path, limit: float) -> dict[str, Any]:
    try:
        return dict(run_checks(ex, folder, time_limit=limit).to_dict(reveal_hidden=True))
    except MemoryError:
        raise
    except BaseException as err:  # noqa: BLE001 - sys.exit() or worse from inside a check
        what = f"sys.exit({err.code})" if isinstance(err, SystemExit) else type(err).__name__
        return {"exercise": ex, "import_error": "", "results": [], "aborted": f"your code raised {what} during the checks"}


# --------------------------------------------------------------------------- records (parent)


def _record(job: Job, status: int, usage: Any, s: Settings) -> dict[str, Any]:
    """Turn a finished child (exit status, output files, raw results) into the learner's record."""
    io_dir = job.base / "io"
    raw = _read_raw(io_dir / "result.json")
    sizes = [_size(io_dir / n) for n in ("stdout", "stderr")]
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    rss_mb = usage.ru_maxrss / 1024
    cap = OUTPUT_CAP_MB * 2**20
    verdict: tuple[str, str] | None = None
    if job.killed:
        verdict = ("timeout", f"stopped after {s.timeout:g} s (the time limit): look for an endless loop or a real sleep")
    elif sig == signal.SIGXFSZ or max(sizes) >= cap:
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
        last = _tail(io_dir / "stderr", 400).strip().splitlines()
        verdict = ("crashed: grader error", f"the grader failed on this submission: {last[-1] if last else 'no message'}")
    elif code != 0 or raw is None:
        verdict = (f"crashed: exit code {code}", "the program ended itself (os._exit or similar) before the checks finished")
    reports = _normalise(raw["reports"] if raw and not verdict else None, s, verdict[1] if verdict else "", job.base / "sub")
    violations = [str(v) for v in (raw or {}).get("violations", [])][:20]
    tampered = [str(t) for t in (raw or {}).get("tampered", [])][:5]
    if verdict is None:
        verdict = _verdict(reports, violations, tampered)
        if verdict[0] == "tampering detected":
            reports = _normalise(None, s, "not graded: tampering detected")
    score = sum(r["score"] for r in reports)
    maximum = sum(r["max_score"] for r in reports)
    return {
        "learner": job.learner.name, "status": verdict[0], "detail": verdict[1], "score": score, "max_score": maximum,
        "percent": round(100 * score / maximum, 1) if maximum else 0.0, "exercises": reports,
        "violations": violations, "tampered": tampered,
        "stdout_tail": _tail(io_dir / "stdout"), "stderr_tail": _tail(io_dir / "stderr"),
        "seconds": round(time.monotonic() - job.started, 3), "max_rss_mb": round(rss_mb, 1),
        "exit": f"signal {sig}" if sig else f"code {code}",
        "submission_hash": job.learner.digest, "grader_key": s.key,
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _verdict(reports: list[dict[str, Any]], violations: list[str], tampered: list[str]) -> tuple[str, str]:
    if tampered or any(v.startswith("changing the grader") for v in violations):
        return "tampering detected", "the code changed labkit or builtins to influence grading: " + ", ".join(tampered or violations[:3])
    texts = [r["import_error"] for r in reports] + [c["detail"] for r in reports for c in r["results"]]
    if any("MemoryError" in t for t in texts):
        return "memory limit", "the code ran out of memory (MemoryError)"
    if any(m in t for t in texts for m in TIMEOUT_MARKS):
        return "timeout", "part of the code ran past the per-check time limit: look for an endless loop or a real sleep"
    if violations:
        return "blocked: " + violations[0].split(":")[0], "refused: " + "; ".join(violations[:3])
    aborted = [r["aborted"] for r in reports if r.get("aborted")]
    if aborted:
        return "crashed: during checks", aborted[0]
    missing = [r["exercise"] for r in reports if "does not exist" in r["import_error"]]
    broken = [f"{r['exercise']}: {r['import_error']}" for r in reports if r["import_error"] and r["exercise"] not in missing]
    if broken:
        return "import error", "; ".join(broken)
    if missing:
        return "missing file", "no file for " + ", ".join(missing)
    return "ok", ""


def _normalise(raw: list[Any] | None, s: Settings, why: str, sub: Path | None = None) -> list[dict[str, Any]]:
    """Reports rebuilt from the grader's own check table; the child supplies only statuses and details."""
    from .checks import get_exercise

    def clean(text: Any) -> str:  # the copy's temporary path means nothing to the learner
        return (str(text).replace(f"{sub}{os.sep}", "") if sub else str(text))[:500]

    by_ex = {r.get("exercise"): r for r in raw or [] if isinstance(r, dict)}
    out = []
    for ex_id in s.exercises:
        ex = get_exercise(ex_id)
        got = by_ex.get(ex_id) or {}
        seen = {r.get("id"): r for r in got.get("results", []) if isinstance(r, dict)}
        results = []
        for spec in ex.checks:
            r = seen.get(spec.id) or {}
            status = r.get("status") if r.get("status") in ("pass", "fail", "skip", "error") else "error"
            detail = r.get("detail", "") if r else (got.get("aborted") or why or "no result for this check")
            results.append({"id": spec.id, "metric": spec.metric, "points": spec.points, "hidden": spec.hidden,
                            "status": status, "detail": clean(detail), "hint": spec.hint,
                            "earned": spec.points if status == "pass" else 0})
        out.append({"exercise": ex.id, "title": ex.title, "file": ex.file, "import_error": clean(got.get("import_error", "")),
                    "aborted": str(got.get("aborted", "")), "results": results,
                    "score": sum(r["earned"] for r in results), "max_score": sum(c.points for c in ex.checks)})
    return out


def _missing_record(ln: Learner, s: Settings) -> dict[str, Any]:
    """A row for a learner whose submission could not be graded at all (too large)."""
    why = f"the submission is larger than {MAX_SUBMISSION_MB} MB" if ln.too_large else "no result was recorded"
    reports = _normalise(None, s, why)
    return {"learner": ln.name, "status": "too large" if ln.too_large else "not graded", "detail": why, "score": 0,
            "max_score": sum(r["max_score"] for r in reports), "percent": 0.0, "exercises": reports, "violations": [],
            "tampered": [], "submission_hash": ln.digest, "grader_key": ""}


def _read_raw(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("reports"), list) else None


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


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


def _write_text(path: Path, text: str) -> None:
    """Write atomically: a temp file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- outputs


def _write_outputs(out: Path, learners: list[Learner], records: list[dict[str, Any]], s: Settings) -> None:
    from .checks import get_exercise

    specs = [c for ex in s.exercises for c in get_exercise(ex).checks]
    buf = _csv_text(records, [c.id for c in specs])
    _write_text(out / "gradebook.csv", buf)
    checks = [{"id": c.id, "metric": c.metric, "points": c.points, "hidden": c.hidden} for c in specs]
    _write_json(out / "gradebook.json", {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "exercises": list(s.exercises),
        "timeout_s": s.timeout, "memory_mb": s.memory_mb, "checks": checks, "learners": records})
    for ln, rec in zip(learners, records):
        _write_text(out / "feedback" / f"{ln.safe}.md", feedback_markdown(rec))
        _write_text(out / "feedback" / f"{ln.safe}.html", feedback_html(rec))
    _write_summary(out, records, checks)


def _csv_text(records: list[dict[str, Any]], check_ids: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["learner", "status", "score", "max_score", "percent", *check_ids, "detail"])
    for rec in records:
        earned = {c["id"]: c["earned"] for r in rec["exercises"] for c in r["results"]}
        w.writerow([rec["learner"], rec["status"], rec["score"], rec["max_score"], rec["percent"],
                    *(earned.get(c, 0) for c in check_ids), rec.get("detail", "")[:300]])
    return buf.getvalue()


def _visible(check: dict[str, Any]) -> dict[str, Any]:
    """What a learner may see of a check: a hidden one shows only its status and points."""
    if check["hidden"]:
        return {"label": "Hidden check", "status": check["status"], "earned": check["earned"],
                "points": check["points"], "detail": "", "hint": ""}
    return {"label": check["metric"], "status": check["status"], "earned": check["earned"], "points": check["points"],
            "detail": check["detail"], "hint": check["hint"] if check["status"] != "pass" else ""}


def _learner_note(rec: dict[str, Any]) -> str:
    note = f"Status: {rec['status']}"
    if rec["status"] != "ok" and rec.get("detail") and not rec["status"].startswith("tampering"):
        note += f" ({rec['detail']})"
    return note


def feedback_markdown(rec: dict[str, Any]) -> str:
    """A learner's feedback in Markdown (never a hidden check's metric, detail or hint)."""
    lines = [f"# Feedback for {rec['learner']}", "", f"**Score: {rec['score']} / {rec['max_score']}** ({rec['percent']}%)",
             "", _learner_note(rec), ""]
    for ex in rec["exercises"]:
        lines += [f"## {ex['exercise']}: {ex['title']} ({ex['score']} / {ex['max_score']})", ""]
        if ex["import_error"]:
            lines += [f"`{ex['file']}.py` did not import: {ex['import_error']}", ""]
        lines += ["| result | points | what was checked | what the check saw |", "| --- | --- | --- | --- |"]
        for c in map(_visible, ex["results"]):
            saw = c["detail"] + (f"<br>hint: {c['hint']}" if c["hint"] else "")
            lines.append(f"| {c['status']} | {c['earned']}/{c['points']} | {_md(c['label'])} | {_md(saw)} |")
        lines.append("")
    if rec["status"].startswith("crashed") and rec.get("stderr_tail"):
        lines += ["## The end of your program's error output", "", "```", rec["stderr_tail"][-1500:].replace("```", "'''"), "```", ""]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def feedback_html(rec: dict[str, Any]) -> str:
    """The same feedback as a standalone HTML page."""
    e = html.escape
    colors = {"pass": "#1a7f37", "fail": "#cf222e", "skip": "#9a6700", "error": "#8250df"}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Feedback for {e(rec['learner'])}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;"
             "padding:.3em .6em;text-align:left;vertical-align:top}table{border-collapse:collapse}</style></head><body>",
             f"<h1>Feedback for {e(rec['learner'])}</h1>",
             f"<p><b>Score: {rec['score']} / {rec['max_score']}</b> ({rec['percent']}%)</p><p>{e(_learner_note(rec))}</p>"]
    for ex in rec["exercises"]:
        parts.append(f"<h2>{e(ex['exercise'])}: {e(ex['title'])} ({ex['score']} / {ex['max_score']})</h2>")
        if ex["import_error"]:
            parts.append(f"<p><code>{e(ex['file'])}.py</code> did not import: {e(ex['import_error'])}</p>")
        parts.append("<table><tr><th>result</th><th>points</th><th>what was checked</th><th>what the check saw</th></tr>")
        for c in map(_visible, ex["results"]):
            hint = f"<br><small><b>hint:</b> {e(c['hint'])}</small>" if c["hint"] else ""
            parts.append(f"<tr><td style='color:{colors[c['status']]}'>{e(c['status'])}</td><td>{c['earned']}/{c['points']}</td>"
                         f"<td>{e(c['label'])}</td><td>{e(c['detail'])}{hint}</td></tr>")
        parts.append("</table>")
    if rec["status"].startswith("crashed") and rec.get("stderr_tail"):
        parts.append(f"<h2>The end of your program's error output</h2><pre>{e(rec['stderr_tail'][-1500:])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _write_summary(out: Path, records: list[dict[str, Any]], checks: list[dict[str, Any]]) -> None:
    n = len(records)
    percents = [r["percent"] for r in records]
    lines = ["# Grading summary", "",
             f"{n} learner(s); mean {statistics.fmean(percents):.1f}%, median {statistics.median(percents):.1f}%.", "",
             "| status | learners |", "| --- | --- |"]
    lines += [f"| {s} | {k} |" for s, k in Counter(r["status"] for r in records).most_common()]
    lines += ["", "| check | points | hidden | passed | pass rate |", "| --- | --- | --- | --- | --- |"]
    for c in checks:
        passed = sum(1 for r in records for ex in r["exercises"] for x in ex["results"] if x["id"] == c["id"] and x["status"] == "pass")
        lines.append(f"| {c['id']}: {_md(c['metric'])} | {c['points']} | {'yes' if c['hidden'] else 'no'} | {passed} | {100 * passed / n:.0f}% |")
    try:
        _histogram(out / "summary.png", percents)
        lines += ["", "![Score histogram](summary.png)"]
    except ImportError:
        lines += ["", "(install matplotlib for a score histogram: `pip install matplotlib`)"]
    _write_text(out / "summary.md", "\n".join(lines) + "\n")


def _histogram(path: Path, percents: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(percents, bins=list(range(0, 101, 10)), color="#4c72b0", edgecolor="white")
    ax.set_xlabel("score (%)")
    ax.set_ylabel("learners")
    ax.set_title(f"Scores of {len(percents)} learner(s)")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
