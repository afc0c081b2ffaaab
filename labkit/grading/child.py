"""What runs inside a child: grade one submission under the guards, write the result, exit.

:func:`main` is the child's whole life (today it starts in a forked copy of the warm grader;
a sandboxed subprocess would call it the same way). It works in ``base``: ``io/`` for its
output files and result (see :mod:`labkit.grading.protocol`), ``sub/`` for a copy of the
submission, ``tmp/`` for anything else; then it never returns: it ``_exit``s with the
protocol's code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import protocol, sandbox
from .plan import Learner
from .protocol import EXIT_CHANNEL, EXIT_INTERNAL, EXIT_MEMORY, EXIT_OK, RawReport
from .settings import OUTPUT_CAP_MB, Settings

if TYPE_CHECKING:
    from ..checks import Report


def main(ln: Learner, s: Settings, base: Path, parent: int, redis_sock: str | None,
         trusted: dict[int, types.CodeType]) -> NoReturn:
    """Grade ``ln``'s copy in this process, then ``_exit``. Never returns."""
    code = EXIT_INTERNAL
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGXFSZ, signal.SIGXCPU):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent(parent)
        io_dir, sub, tmp = base / "io", base / "sub", base / "tmp"
        for d in (io_dir, sub, tmp):
            d.mkdir(parents=True)
        result_fd = _redirect(io_dir)
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

        from ..checks import run_checks  # bound here, before any learner code runs

        compare, encode, pwrite, run = sandbox.changes, protocol.encode, os.pwrite, _run_exercise
        most_violations, most_tampered = protocol.MAX_VIOLATIONS, protocol.MAX_TAMPERED
        before = sandbox.snapshot()
        violations = sandbox.install_audit_hook(
            write_roots=[sub, tmp], hidden_roots=s.hidden,
            writable_files=[io_dir / protocol.STDOUT, io_dir / protocol.STDERR],
            unix_sockets=[redis_sock] if redis_sock else [], trusted=trusted)
        reports = [run(run_checks, ex, sub, s.check_limit) for ex in s.exercises]
        payload = encode(reports, violations[:most_violations], compare(before, most_tampered))
        now = os.fstat(result_fd)
        if (now.st_dev, now.st_ino) != (channel.st_dev, channel.st_ino):
            code = EXIT_CHANNEL
        else:
            pwrite(result_fd, payload, 0)
            os.ftruncate(result_fd, len(payload))
            code = EXIT_OK
    except MemoryError:
        code = EXIT_MEMORY
    except BaseException:  # noqa: BLE001 - report, then exit with the grader's own code
        with contextlib.suppress(BaseException):
            os.write(2, traceback.format_exc().encode("utf-8", "replace")[-4000:])
    finally:
        os._exit(code)


def _redirect(io_dir: Path) -> int:
    """fd 0 from /dev/null, fds 1 and 2 to ``io/``; every other fd closed but the result's, returned."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, name in ((1, protocol.STDOUT), (2, protocol.STDERR)):
        os.dup2(os.open(io_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    result_fd = os.open(io_dir / protocol.RESULT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.closerange(3, result_fd)
    os.closerange(result_fd + 1, 65536)
    sys.stdin = open(0, encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    return result_fd


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this child if the grader dies (prctl PR_SET_PDEATHSIG)."""
    prctl(1, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(EXIT_INTERNAL)


def prctl(option: int, value: int) -> None:
    """Linux ``prctl(option, value)``; nothing elsewhere."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _run_exercise(run_checks: Callable[..., Report], ex: str, folder: Path, limit: float) -> RawReport:
    """One exercise's checks; a ``sys.exit()`` or worse from inside a check aborts only that exercise."""
    try:
        return protocol.from_report(run_checks(ex, folder, time_limit=limit))
    except MemoryError:
        raise
    except BaseException as err:  # noqa: BLE001 - sys.exit() or worse from inside a check
        what = f"sys.exit({err.code})" if isinstance(err, SystemExit) else type(err).__name__
        return RawReport(ex, aborted=f"your code raised {what} during the checks")
