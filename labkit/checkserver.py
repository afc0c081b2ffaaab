"""A warm check server for ``labkit check``: the first run starts it, later runs fork from it.

A cold ``labkit check`` spends about a second importing before any check runs (the ``openai``
package alone imports ~500 modules and 650 pydantic models). The server pays that once: it
imports and warms what the checks use (:func:`labkit.grading.warm.warm`, on pristine starters),
listens on a unix socket in a private folder, and forks one child per request. The child takes
the caller's environment, working folder, stdout and stderr (passed over the socket, so a
learner's ``print`` shows in their terminal), imports the learner's file fresh, runs the checks
and sends the report back; the caller prints and records it as a cold run would.

Nothing here changes a result: any trouble (no server yet, a stale or busy one, a child that
dies, an unsafe folder) makes the caller run the checks itself. A server serves one course
checkout, one Python and one version of labkit (a fingerprint names its socket), and exits after
:data:`IDLE_S` seconds without a request. ``LABKIT_CHECK_SERVER=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from . import paths
from .checks import Report, Result

__all__ = ["ENV_SWITCH", "IDLE_S", "enabled", "fingerprint", "run_remote", "running", "socket_path", "start_in_background",
           "stop"]

ENV_SWITCH = "LABKIT_CHECK_SERVER"
IDLE_S = 900.0
#: Environment that shapes what the server imports and warms: a change means another server.
#: (PATH and VIRTUAL_ENV do not: this Python is in the fingerprint, and each run gets the caller's own.)
_ENV_KEYS = ("HOME", "PYTHONPATH", "REDIS_URL", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")
_MAX_REPLY = 64 << 20
#: Room the socket's path needs under the temporary folder ("/labkit-checks-UID/<20 hex>.sock" and a spare).
_SOCKET_ROOM = 47


def enabled() -> bool:
    """Whether ``labkit check`` may use (and start) a server: on Linux, unless ``LABKIT_CHECK_SERVER=0``."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    # Linux only: on macOS a process that forks after the SDK has read the system's proxy settings
    # (an Objective-C framework) can crash in the child; there, every run is a cold one.
    return sys.platform == "linux"


def fingerprint() -> str:
    """What a server's imports depend on: this Python, the course folder, labkit's files, the folders
    packages are installed in and the environment that shapes imports. Cheap (a few hundred ``stat`` calls)."""
    h = hashlib.sha256()
    h.update(f"{sys.executable}\0{paths.course_root()}\0".encode())
    package = Path(__file__).resolve().parent
    for p in sorted(package.rglob("*")):
        if p.suffix in (".py", ".toml", ".html") and "__pycache__" not in p.parts:
            st = p.stat()
            h.update(f"{p.relative_to(package)}:{st.st_mtime_ns}:{st.st_size}\0".encode())
    for key in ("purelib", "platlib"):  # a package installed or removed changes its folder
        folder = sysconfig.get_paths()[key]
        with contextlib.suppress(OSError):
            h.update(f"{folder}:{os.stat(folder).st_mtime_ns}\0".encode())
    for key in sorted(os.environ):
        if key.startswith("LABKIT_") or key in _ENV_KEYS:
            h.update(f"{key}={os.environ[key]}\0".encode())
    return h.hexdigest()[:20]


def _folder() -> Path | None:
    """The private folder sockets live in, or None if it is not safely this user's own."""
    folder = Path(paths.socket_tempdir(_SOCKET_ROOM)) / f"labkit-checks-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return folder


def socket_path() -> Path | None:
    """Where this checkout's server listens (None when no safe folder exists)."""
    folder = _folder()
    return folder / f"{fingerprint()}.sock" if folder else None


# --------------------------------------------------------------------------- the caller's side


def run_remote(exercise: str, folder: str | Path | None = None, *, timeout: float = 600.0) -> Report | None:
    """The report of ``run_checks(exercise, folder)`` as a warm server's child ran it, or None
    (no server, or any trouble), in which case the caller runs the checks itself."""
    if not enabled():
        return None
    path = socket_path()
    if path is None or not path.exists():
        return None
    try:
        out, err = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # stdout is not a file (a captured stream): run here
    request = json.dumps({
        "exercise": exercise, "folder": None if folder is None else str(folder),
        "cwd": os.getcwd(), "env": dict(os.environ),
    }).encode() + b"\n"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            sys.stdout.flush()
            sys.stderr.flush()
            sent = socket.send_fds(s, [request], [out, err])
            s.sendall(request[sent:])
            s.shutdown(socket.SHUT_WR)
            s.settimeout(timeout)
            data, child = bytearray(), 0
            try:
                while chunk := s.recv(1 << 16):
                    data += chunk
                    if not child and b"\n" in data:  # the child's first line: its pid
                        head, _, rest = bytes(data).partition(b"\n")
                        child, data = int(json.loads(head)["pid"]), bytearray(rest)
                    if len(data) > _MAX_REPLY:
                        return None
            except KeyboardInterrupt:
                if child > 0:  # Ctrl-C stops the run, as it would a cold one
                    with contextlib.suppress(OSError):
                        os.kill(child, signal.SIGTERM)
                raise
        reply = json.loads(data)
        return report_from_dict(reply["report"]) if "report" in reply else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def report_from_dict(d: dict[str, Any]) -> Report:
    """The :class:`Report` that ``Report.to_dict(reveal_hidden=True)`` described."""
    fields = Result.__dataclass_fields__
    results = tuple(Result(**{k: v for k, v in r.items() if k in fields}) for r in d["results"])
    return Report(d["exercise"], d["title"], d["file"], results, d.get("import_error", ""),
                  bool(d.get("starter", False)), d.get("aborted", ""))


def start_in_background() -> None:
    """Start this checkout's server, detached, unless it is off, running or cannot have a socket."""
    if not enabled():
        return
    path = socket_path()
    if path is None or _held(path.with_suffix(".lock")):
        return  # a server is warming up or running (a socket left by a killed one does not count)
    with contextlib.suppress(OSError):
        with open(path.with_suffix(".log"), "ab") as log:  # the server's own errors, if any
            subprocess.Popen([sys.executable, "-m", "labkit.checkserver", str(path)], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=log, start_new_session=True, close_fds=True)


def running(path: Path | None = None) -> bool:
    """Whether a server for ``path`` (default: this checkout's) is warming up or serving."""
    path = path or socket_path()
    return path is not None and _held(path.with_suffix(".lock"))


def _held(lock: Path) -> bool:
    """Whether a live server holds ``lock`` (its ``flock`` ends with the process, however it ends)."""
    import fcntl

    try:
        with open(lock, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def _sweep(folder: Path, keep: Path) -> None:
    """Remove what servers of other fingerprints (an older labkit, another venv) left when they ended."""
    for lock in folder.glob("*.lock"):
        if lock != keep and not _held(lock):
            for suffix in (".sock", ".log", ".lock"):
                with contextlib.suppress(OSError):
                    lock.with_suffix(suffix).unlink()


def stop(path: Path | None = None) -> bool:
    """Stop the server listening at ``path`` (default: this checkout's); True if one was running."""
    path = path or socket_path()
    if path is None:
        return False
    try:
        pid = int(path.with_suffix(".lock").read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        return True
    return False


# --------------------------------------------------------------------------- the server's side


def serve(path: Path, idle: float = IDLE_S) -> None:
    """Warm up, then answer requests at ``path`` until ``idle`` seconds pass without one."""
    import fcntl

    lock = open(path.with_suffix(".lock"), "a+")  # held (flock) for the server's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for this fingerprint is starting or running
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    _sweep(path.parent, path.with_suffix(".lock"))
    os.environ[ENV_SWITCH] = "0"  # code run by the checks never starts another server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _warm()
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        listener.bind(str(tmp))
        os.chmod(tmp, 0o600)
        listener.listen(16)
        os.replace(tmp, path)
        listener.settimeout(idle)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        gc.freeze()  # forked children share the warm heap instead of copying it on collection
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            pid = os.fork()
            if pid == 0:
                listener.close()
                lock.close()  # the lock lives and dies with the server alone
                _child(conn)
            conn.close()
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            path.unlink()
        with contextlib.suppress(OSError):
            if not path.with_suffix(".log").stat().st_size:
                path.with_suffix(".log").unlink()
        lock.close()


def _warm() -> None:
    """Import and exercise every check on pristine starters (as the grader's zygote does)."""
    from . import starters
    from .checks import exercise_ids
    from .grading.warm import warm

    folder = Path(tempfile.mkdtemp(prefix="labkit-checkserver-"))
    try:
        starters.build(into=folder / "exercises")
        warm(tuple(exercise_ids()), folder / "exercises", 10.0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _child(conn: socket.socket) -> None:
    """One request, in a fresh fork: take the caller's streams, environment and folder; run; reply; exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the learner's subprocesses need their exit codes
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reply: dict[str, Any]
    try:
        conn.settimeout(10.0)
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
        data = bytearray(msg)
        while not data.endswith(b"\n") and (chunk := conn.recv(1 << 16)):
            data += chunk
        request = json.loads(data)
        if len(fds) != 2:
            raise ValueError("the request came without the caller's stdout and stderr")
        for fd, target in zip(fds, (1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[ENV_SWITCH] = "0"
        os.chdir(request["cwd"])
        from .checks import run_checks

        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        conn.settimeout(None)
        report = run_checks(request["exercise"], request["folder"])
        reply = {"report": report.to_dict(reveal_hidden=True)}
    except BaseException as err:  # noqa: BLE001 - the caller then runs the checks itself
        reply = {"error": f"{type(err).__name__}: {err}"}
    try:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        conn.sendall(json.dumps(reply).encode())
        conn.close()
    finally:
        os._exit(0)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
