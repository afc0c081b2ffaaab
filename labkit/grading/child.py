"""One learner inside a slot: a supervisor that builds a fresh sandbox, and the runner that grades.

The zygote forks :func:`supervise` per job. The supervisor enters fresh namespaces
(:func:`labkit.grading.jail.enter_learner_namespaces`), writes the learner's files into its
private ``/tmp/sub``, empties the slot's Redis, and forks the runner (:func:`_run`), pid 1 of
the new pid namespace. The runner drops every capability, sets the resource limits, installs
the audit hook and grades with functions bound before any learner code ran
(:class:`Bound`), checking the tripwire after each exercise; it writes its result file and
``_exit``s. The supervisor waits (killing the runner, and with it everything it started, at
the time limit), then sends the parent one :class:`~labkit.grading.protocol.JobEnd`: the exit
status, peak memory, output tails and the raw result file. No learner code ever runs in the
supervisor, and the runner cannot see it (another pid namespace, an empty ``/proc``).
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import signal
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

from . import jail, protocol, sandbox
from .protocol import EXIT_INTERNAL, EXIT_MEMORY, EXIT_OK, Config, Job, JobEnd

if TYPE_CHECKING:
    from ..checks import Exercise
    from .redis_slots import SlotRedis

TAIL = 2000  # characters of stdout / stderr kept


@dataclass(frozen=True)
class Bound:
    """Everything the runner calls, bound in the zygote before any learner code exists.

    Learner code that replaces ``labkit.checks.run_one`` (or anything else by name) changes
    nothing the runner calls; the tripwire reports that it tried.
    """

    exercises: tuple[Exercise, ...]
    run_one: Callable[..., Any]
    load: Callable[[Path], types.ModuleType]
    context: Callable[..., Any]
    time_limit: Callable[[float], Any]
    describe: Callable[..., str]
    is_starter: Callable[[Path], bool]
    timeout_error: type[BaseException]
    before: tuple[sandbox.Entry, ...]
    fingerprint: str
    trusted: dict[int, types.CodeType]
    walk: frozenset[int]
    last_cap: int


def bind(exercises: tuple[Exercise, ...]) -> Bound:
    """Bind the checks' runner functions and take the tripwire's snapshot (in the zygote, once warm)."""
    import importlib

    from .. import checks

    for name in ("multiprocessing.context", "multiprocessing.process", "multiprocessing.popen_fork",
                 "multiprocessing.synchronize", "multiprocessing.heap", "multiprocessing.sharedctypes",
                 "multiprocessing.connection", "multiprocessing.queues", "multiprocessing.util", "concurrent.futures.thread"):
        with contextlib.suppress(ImportError):  # loaded now, so their own code is known before any learner code runs
            importlib.import_module(name)
    before = sandbox.snapshot(skip=("labkit.grading.jail",))
    return Bound(exercises, checks.run_one, checks.load_learner_module, checks.Context, checks._time_limit,
                 checks._describe, checks._is_starter, checks.CheckTimeout, before, sandbox.fingerprint(before),
                 sandbox.check_code(), frozenset(sandbox.check_code(sandbox.PASS_THROUGH)), jail.last_cap())


def supervise(job: Job, status_fd: int, cfg: Config, bound: Bound, redis: SlotRedis | None) -> NoReturn:
    """The supervisor's whole life (a fork of the zygote). Never returns."""
    code, started, sub = 1, time.monotonic(), None
    try:
        os.closerange(3, status_fd)
        os.closerange(status_fd + 1, 65536)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        vm = sandbox.vm_size()
        if cfg.sandboxed:
            jail.enter_learner_namespaces(cfg.tmp_mb)
            jail.hide_proc()
            base = Path(jail.LEARNER_DIR)
        else:
            base = Path(tempfile.mkdtemp(dir=cfg.work, prefix=f"job{job.id}-"))
        io, sub, home = base / ".io", base / "sub", base / "home"
        for d in (io, sub, home, home / "tmp"):
            d.mkdir(mode=0o700)
        write_files(sub, job.files)
        fds = [os.open(io / name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
               for name in ("result", "stdout", "stderr", "reserve")]
        os.posix_fallocate(fds[3], 0, protocol.MAX_BYTES + 2**16)  # room for the result, whatever the learner writes
        if redis:
            redis.wipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _run(job, cfg, bound, fds, sub, home, vm, redis.url if redis else "")
        status, rss, killed = _wait(pid, cfg.timeout)
        end = JobEnd(job=job.id, status=status, killed=killed, seconds=round(time.monotonic() - started, 3),
                     max_rss_kb=max(0, rss), stdout=_tail(fds[1]), stderr=_tail(fds[2]), stdout_bytes=os.fstat(fds[1]).st_size,
                     stderr_bytes=os.fstat(fds[2]).st_size, tmp_full=_full(base),
                     result=base64.b64encode(os.pread(fds[0], protocol.MAX_BYTES + 1, 0)).decode())
        code = 0
    except BaseException as err:  # noqa: BLE001 - the supervisor reports why it could not grade
        end = JobEnd(job=job.id, status=EXIT_INTERNAL << 8, killed=False, seconds=round(time.monotonic() - started, 3),
                     max_rss_kb=0, stdout="", stderr="", stdout_bytes=0, stderr_bytes=0, tmp_full=False, result="",
                     setup_error=f"{type(err).__name__}: {err}"[:500])
    try:
        data = protocol.model_json(end)
        view = memoryview(data)
        while view:
            view = view[os.write(status_fd, view):]
    finally:
        if sub is not None and not cfg.sandboxed:
            import shutil

            shutil.rmtree(sub.parent, ignore_errors=True)
        os._exit(code)


def write_files(sub: Path, files: dict[str, str]) -> None:
    """Files (relative, ``..``-free names only -> base64 content) into ``sub``: a learner's copy."""
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            continue
        target = sub.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(data))


def _wait(pid: int, timeout: float) -> tuple[int, int, bool]:
    """Wait for the runner; SIGKILL it (and its whole pid namespace) at ``timeout``. (status, max rss KB, killed)"""
    killed = False
    try:
        pidfd = os.pidfd_open(pid)
        ready, _, _ = select.select([pidfd], [], [], timeout)
        os.close(pidfd)
    except OSError:  # no pidfd (old kernel): poll
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            time.sleep(0.005)
        ready = [0] if time.monotonic() < deadline else []
    if not ready:
        killed = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return status, usage.ru_maxrss, killed


def _tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    return os.pread(fd, TAIL * 4, max(0, size - TAIL * 4)).decode("utf-8", "replace")[-TAIL:]


def _full(base: Path) -> bool:
    try:
        st = os.statvfs(base)
        return st.f_bavail * st.f_frsize < protocol.MAX_BYTES + 2 * 2**20  # what is left once the reserve is freed
    except OSError:
        return False


# --------------------------------------------------------------------------- the runner


def _run(job: Job, cfg: Config, bound: Bound, fds: list[int], sub: Path, home: Path, vm: int, redis_url: str) -> NoReturn:
    """Grade the learner's copy in this process (pid 1 of its namespace when sandboxed), then ``_exit``."""
    code = EXIT_INTERNAL
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGXFSZ, signal.SIGXCPU, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        result_fd = _redirect(fds)
        if cfg.sandboxed:
            jail.drop_privileges(bound.last_cap)
            jail.forget_ctypes()
        tmp = home / "tmp"
        os.environ.clear()
        os.environ.update(cfg.env | {"HOME": str(home), "TMPDIR": str(tmp), "LABKIT_STATE": str(home / ".labkit")})
        if redis_url:
            os.environ["REDIS_URL"] = redis_url
        tempfile.tempdir = str(tmp)
        if "hypothesis.configuration" in sys.modules:  # its default folder was fixed in the zygote's working folder
            sys.modules["hypothesis.configuration"].set_hypothesis_home_dir(home / ".hypothesis")
        os.chdir(sub)
        sys.path[:] = [p for p in sys.path if p and os.path.isabs(p)]
        sys.dont_write_bytecode = True
        sandbox.set_limits(memory_mb=cfg.memory_mb, cpu_s=cfg.timeout, file_mb=cfg.output_cap_mb, base=vm)
        b, token, encode, pwrite, truncate = bound, job.token, protocol.encode, os.pwrite, os.ftruncate
        compare, fingerprint, run = sandbox.changes, sandbox.fingerprint, _exercise
        most_violations, most_tampered = protocol.MAX_VIOLATIONS, protocol.MAX_TAMPERED
        violations = sandbox.install_audit_hook(
            write_roots=[sub.parent, "/dev/shm"], hidden_roots=cfg.hidden, writable_files=[],
            trusted=b.trusted, walk=b.walk,
            unix_sockets=[redis_url.removeprefix("unix://")] if redis_url else [])
        observations: dict[str, str] | None = None
        if job.reference:  # trusted code: the reference is its own reference for differential checks
            from ..checks import differential

            for ex in b.exercises:
                if ex.path_in(sub).exists():
                    differential._REFERENCE[ex.id] = b.load(ex.path_in(sub))
        reports, tampered = [], []
        for ex in b.exercises:
            reports.append(run(b, ex, sub, cfg.check_limit))
            tampered = compare(b.before, most_tampered)
            if tampered:
                break
        if job.reference:
            observations = differential.snapshot()
        payload = encode(token, reports, violations()[:most_violations], tampered, fingerprint(b.before), observations)
        truncate(4, 0)  # frees the room reserved for the result
        pwrite(result_fd, payload, 0)
        truncate(result_fd, len(payload))
        code = EXIT_OK
    except MemoryError:
        code = EXIT_MEMORY
    except BaseException:  # noqa: BLE001 - report, then exit with the grader's own code
        with contextlib.suppress(BaseException):
            os.write(2, traceback.format_exc().encode("utf-8", "replace")[-4000:])
    finally:
        os._exit(code)


def _redirect(fds: list[int]) -> int:
    """fd 0 from /dev/null, fds 1 and 2 to the output files; every other fd closed but the result's, returned."""
    result, out, err, reserve = fds
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    keep = os.dup2(result, 3) if result != 3 else 3
    os.dup2(reserve, 4)
    os.closerange(5, 65536)
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    return keep


def _exercise(b: Bound, ex: Exercise, folder: Path, limit: float) -> protocol.Exercise:
    """One exercise's checks (the steps of ``labkit.checks.run_checks``, through bound functions).

    A ``sys.exit()`` or worse from inside a check aborts only that exercise.
    """
    try:
        path = ex.path_in(folder)
        module, error, starter = None, "", False
        if not path.exists():
            error = f"{path.name} does not exist: copy the starter from exercises/{ex.file}.py"
        else:
            starter = b.is_starter(path)
            try:
                with b.time_limit(limit):
                    module = b.load(path)
            except SystemExit as e:
                error = f"the file calls sys.exit({e.code}) when imported; remove it"
            except (Exception, b.timeout_error) as e:  # noqa: BLE001 - a learner module may fail to import in any way
                error = b.describe(e, path)
        ctx = b.context(ex, module, path, error)
        results = tuple(b.run_one(spec, ctx, path, time_limit=limit) for spec in ex.checks)
        return protocol.Exercise(ex.id, error, "", starter, tuple(protocol.Check(r.id, r.status, r.detail, r.seconds)
                                                                   for r in results))
    except MemoryError:
        raise
    except BaseException as err:  # noqa: BLE001 - sys.exit() or worse from inside a check
        what = f"sys.exit({err.code})" if isinstance(err, SystemExit) else type(err).__name__
        return protocol.Exercise(ex.id, aborted=f"your code raised {what} during the checks")
