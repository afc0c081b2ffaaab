"""Guards for grading untrusted learner code inside the child process.

Used by :mod:`labkit.grading.child`. All in-process, so they stop accidents and ordinary
gaming, not a determined attacker (PEP 578: audit hooks are not a sandbox); the child's
environment is cleaned by the parent (:mod:`labkit.grading.environ`).

* :func:`set_limits`: memory, CPU time, file size and core-dump limits (``resource``).
* :func:`install_audit_hook`: a ``sys.addaudithook`` hook that refuses network access,
  new processes, ``ctypes``, tracing, memory inspection, reads of the course's ``solutions/``
  and of ``/proc/*/environ``, and writes outside the folders the submission may use. What it
  cannot see it cannot stop: C code that raises no audit event (``_posixsubprocess`` is made
  unreachable for that reason; ``dbm`` or ``os.mkfifo`` still create files), or a thread racing it.
* :func:`snapshot` / :func:`changes`: a tripwire that notices learner code replacing labkit's
  functions, classes or data (or builtins) to force a pass.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import resource
import socket
import sys
import sysconfig
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Blocked", "changes", "check_code", "install_audit_hook", "set_limits", "snapshot"]


# --------------------------------------------------------------------------- limits


def vm_size() -> int:
    """This process's virtual memory size in bytes (0 if unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def set_limits(*, memory_mb: int, cpu_s: float, file_mb: int) -> None:
    """Cap address space (current size + ``memory_mb``), CPU seconds, file size; no core dumps."""
    mem = vm_size() + memory_mb * 2**20
    cpu = int(cpu_s) + 1
    for what, soft, hard in (
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, file_mb * 2**20, file_mb * 2**20),
        (resource.RLIMIT_CORE, 0, 0),
    ):
        resource.setrlimit(what, (soft, hard))


# --------------------------------------------------------------------------- audit hook


class Blocked(PermissionError):
    """Learner code tried something the grader does not allow."""


_PROCESS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.startfile", "pty.spawn", "webbrowser.open",
})
_NETWORK = frozenset({
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sethostname",
    "urllib.Request", "http.client.connect",
})
_CTYPES = frozenset({
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
    "ctypes.cdata/buffer", "ctypes.addressof", "ctypes.string_at", "ctypes.wstring_at",
    "ctypes.PyObj_FromPtr", "ctypes.get_errno", "ctypes.set_errno", "ctypes.create_string_buffer",
})
_INSPECT = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile"})
_LIMITS = frozenset({"resource.setrlimit", "resource.prlimit"})
#: C modules that start processes without raising an audit event: made unreachable, then refused.
_UNAUDITED = frozenset({"_posixsubprocess"})
#: Events that change a path: ``event -> (indexes of path arguments, index of their dir_fd or -1)``.
_PATH_WRITES: dict[str, tuple[tuple[int, ...], int]] = {
    "os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2),
    "os.link": ((1,), 3), "os.symlink": ((1,), 2), "os.truncate": ((0,), -1), "os.chmod": ((0,), 2),
    "os.chown": ((0,), 3), "os.utime": ((0,), 3), "os.chflags": ((0,), -1), "os.lchflags": ((0,), -1),
    "os.setxattr": ((0,), -1), "os.removexattr": ((0,), -1), "shutil.rmtree": ((0,), 1),
    "sqlite3.connect": ((0,), -1),
}
_PROC_SECRET = re.compile(r"^/proc/[^/]+(?:/task/[^/]+)?/(?:environ|mem|pagemap)$|^/proc/kcore$|^/dev/(?:k?mem|port)$")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WATCHED = frozenset({"open", "import", "os.listdir", "os.scandir", "socket.__new__", "os.kill", "os.killpg",
                      "object.__setattr__", *_PROCESS, *_NETWORK, *_CTYPES, *_INSPECT, *_LIMITS, *_PATH_WRITES})


def _same_group(pid: int, event: str) -> bool:
    """Whether a kill target is in this process's own group (its workers), never the grader."""
    try:
        return (pid if event == "os.killpg" else os.getpgid(pid)) == os.getpgid(0)
    except OSError:
        return False


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def _resolve(path: Any, dir_fd: Any = None) -> str | None:
    """An absolute, symlink-free path for an audit argument (None for file descriptors)."""
    if isinstance(path, int) or path is None:
        return None
    try:
        raw = os.fsdecode(os.fspath(path))
    except TypeError:
        return None
    if isinstance(dir_fd, int) and not os.path.isabs(raw):
        try:
            raw = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), raw)
        except OSError:
            return "/unknown-dir-fd/" + raw
    return os.path.realpath(raw)


def check_code(package: str = "labkit.checks") -> dict[int, types.CodeType]:
    """Every code object of the checks' modules (by id), to recognise the checks' own frames.

    Identity, not file names: learner code can compile anything under any file name, but it
    cannot produce these objects.
    """
    found: dict[int, types.CodeType] = {}

    def add(obj: Any, depth: int = 0) -> None:
        if depth > 8:
            return
        if isinstance(obj, types.CodeType):
            if id(obj) not in found:
                found[id(obj)] = obj
                for const in obj.co_consts:
                    add(const, depth + 1)
        elif isinstance(obj, types.FunctionType) and _is_labkit(obj):
            add(obj.__code__, depth + 1)
            add(getattr(obj, "__wrapped__", None), depth + 1)
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):
                    add(cell.cell_contents, depth + 1)
        elif isinstance(obj, (staticmethod, classmethod)):
            add(obj.__func__, depth + 1)
        elif isinstance(obj, property):
            for fn in (obj.fget, obj.fset, obj.fdel):
                add(fn, depth + 1)
        elif isinstance(obj, type) and _is_labkit(obj):
            for value in list(vars(obj).values()):
                add(value, depth + 1)
        elif isinstance(obj, dict):
            for value in list(obj.values()):
                add(value, depth + 1)

    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType) and (name == package or name.startswith(package + ".")):
            for value in list(vars(module).values()):
                add(value)
    return found


def install_audit_hook(
    *,
    write_roots: Iterable[str | Path],
    hidden_roots: Iterable[str | Path],
    writable_files: Iterable[str | Path] = (),
    unix_sockets: Iterable[str | Path] = (),
    trusted: Mapping[int, types.CodeType] | None = None,
    violations: list[str] | None = None,
) -> list[str]:
    """Install the grading audit hook (for the rest of the process's life); return its violation log.

    ``write_roots``: folders learner code may create, change or delete files in. ``hidden_roots``:
    folders it may neither read nor list (the course's ``solutions/``). ``unix_sockets``: the only
    sockets it may connect to (the grader's Redis). ``trusted``: code objects of the checks (see
    :func:`check_code`); when the nearest caller outside the standard library is one of them,
    ``os.fork``, ``ctypes`` and writes under ``/dev/shm`` are allowed (a check may use ``multiprocessing``;
    its workers inherit every guard). Each refusal raises :class:`Blocked` in the learner's code
    and appends one line to the returned list.
    """
    for name in _UNAUDITED:
        sys.modules.pop(name, None)
    if "subprocess" in sys.modules:
        sys.modules["subprocess"]._fork_exec = None  # type: ignore[attr-defined]  # the only other handle on it
    writable = tuple(os.path.realpath(p) for p in write_roots)
    files = frozenset(os.path.realpath(p) for p in writable_files) | {"/dev/null"}
    hidden = tuple(os.path.realpath(p) for p in hidden_roots)
    sockets = frozenset(os.path.realpath(p) for p in unix_sockets)
    log: list[str] = violations if violations is not None else []
    me = os.getpid()
    watched, path_writes = _WATCHED, _PATH_WRITES
    codes = dict(trusted or {})
    here = globals()
    stdlib = tuple({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})

    def by_checks() -> bool:
        """Whether the nearest caller outside the standard library is the checks' own code."""
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if codes.get(id(code)) is code:
                return True
            name = code.co_filename
            if frame.f_globals is not here and not name.startswith(stdlib) and not name.startswith("<frozen"):
                return False
            frame = frame.f_back
        return False

    def deny(kind: str, what: str) -> None:
        line = f"{kind}: {what}"[:300]
        if line not in log[-20:]:
            log.append(line)
        raise Blocked(f"labkit grader: {kind} is not allowed while grading ({what})")

    def check_write(path: str | None) -> None:
        if (path is not None and path not in files and not _under(path, writable)
                and not (path.startswith("/dev/shm/") and by_checks())):
            deny("writing outside the submission", path)

    def check_read(path: str | None) -> None:
        if path is None:
            return
        if _under(path, hidden):
            deny("reading the course's solutions", path)
        if _PROC_SECRET.match(path):
            deny("reading a process's environment or memory", path)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in watched:
            return
        if event == "open":
            path = _resolve(args[0])
            check_read(path)
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
            if writing:
                check_write(path)
        elif event == "import":
            name = str(args[0])
            if name == "solutions" or name.startswith("solutions."):
                deny("importing the course's solutions", name)
            if name in _UNAUDITED:
                deny("starting a process", f"import {name}")
        elif event in ("os.listdir", "os.scandir"):
            check_read(_resolve(args[0] if args else "."))
        elif event in path_writes:
            idx, fd_at = path_writes[event]
            dir_fd = args[fd_at] if 0 <= fd_at < len(args) else None
            for i in idx:
                if i < len(args) and not (event == "sqlite3.connect" and str(args[i]) in ("", ":memory:")):
                    check_write(_resolve(args[i], dir_fd))
            if event == "os.link":
                check_read(_resolve(args[0], args[2] if len(args) > 2 else None))
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] not in (socket.AF_UNIX, -1):
                deny("network access", f"socket family {args[1]}")
        elif event in ("os.kill", "os.killpg"):
            if args and args[0] not in (0, me) and not _same_group(int(args[0]), event):
                deny("signalling other processes", f"{event}({args[0]})")
        elif event == "object.__setattr__":
            target, name = args[0], args[1] if len(args) > 1 else ""
            if isinstance(target, types.FunctionType) and (name == "__code__" or (
                    name in ("__defaults__", "__kwdefaults__") and _is_labkit(target))):
                deny("changing the grader's code", f"{target.__qualname__:.80}.{name}")
        elif event == "socket.connect" and isinstance(args[1] if len(args) > 1 else None, (str, bytes)):
            if _resolve(args[1]) not in sockets:
                deny("network access", f"connect to {args[1]!r:.100}")
        elif event in _PROCESS:
            if not (event == "os.fork" and by_checks()):
                deny("starting a process", event)
        elif event in _NETWORK:
            deny("network access", f"{event} {args[:2]!r:.120}")
        elif event in _CTYPES:
            if not by_checks():
                deny("ctypes", event)
        elif event in _INSPECT:
            deny("inspecting the grader", event)
        elif event in _LIMITS:
            deny("changing resource limits", event)

    sys.addaudithook(hook)
    return log


# --------------------------------------------------------------------------- tamper tripwire

Entry = tuple[str, Any, str, Any, Any]  # (path, holder, how, key, object seen)
_MISSING = object()
_FOREIGN_SKIP = frozenset({"sys", "warnings", "__main__"})


def _is_labkit(obj: Any) -> bool:
    mod = getattr(obj, "__module__", None) if not isinstance(obj, types.ModuleType) else obj.__name__
    return isinstance(mod, str) and (mod == "labkit" or mod.startswith("labkit."))


def _read(holder: Any, how: str, key: Any) -> Any:
    try:
        if how == "attr":
            return vars(holder).get(key, _MISSING)
        if how == "item":
            return holder.get(key, _MISSING)
        if how == "fn":
            return getattr(holder, key, _MISSING)
        if how == "cell":
            return holder.cell_contents
    except Exception:  # noqa: BLE001 - anything odd counts as changed
        return _MISSING
    return _MISSING


def snapshot(prefix: str = "labkit") -> tuple[Entry, ...]:
    """Record what labkit's modules hold (deeply), plus builtins and the callables of modules labkit uses.

    Returns an immutable record (keeping the objects alive, so identities cannot be reused);
    :func:`changes` lists what differs later.
    """
    out: list[Entry] = []
    seen: set[int] = set()

    def walk(path: str, obj: Any, depth: int) -> None:
        if id(obj) in seen or depth > 6:
            return
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            if not _is_labkit(obj):
                return
            for name in ("__code__", "__defaults__", "__kwdefaults__"):
                out.append((f"{path}.{name}", obj, "fn", name, getattr(obj, name)))
            for i, cell in enumerate(obj.__closure__ or ()):
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                out.append((f"{path}.<closure {i}>", cell, "cell", None, value))
                walk(f"{path}.<closure {i}>", value, depth + 1)
        elif isinstance(obj, type) or _is_labkit(type(obj)):
            if isinstance(obj, type) and not _is_labkit(obj):
                return
            attrs = obj.__dict__ if isinstance(obj, type) else getattr(obj, "__dict__", None)
            for key, value in list((attrs or {}).items()):
                out.append((f"{path}.{key}", obj, "attr", key, value))
                walk(f"{path}.{key}", value, depth + 1)
        elif isinstance(obj, dict):
            for key, value in list(obj.items()):
                out.append((f"{path}[{key!r:.40}]", obj, "item", key, value))
                walk(f"{path}[{key!r:.40}]", value, depth + 1)
        elif isinstance(obj, (tuple, list)):
            for i, value in enumerate(obj):
                walk(f"{path}[{i}]", value, depth + 1)

    foreign: dict[str, types.ModuleType] = {"builtins": builtins}
    for name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType) or not (name == prefix or name.startswith(prefix + ".")):
            continue
        for key, value in list(vars(module).items()):
            out.append((f"{name}.{key}", module, "attr", key, value))
            if isinstance(value, types.ModuleType):
                if not _is_labkit(value) and value.__name__ not in _FOREIGN_SKIP:
                    foreign[value.__name__] = value
            else:
                walk(f"{name}.{key}", value, 1)
    for name, module in foreign.items():
        for key, value in list(vars(module).items()):
            if not key.startswith("_") and callable(value):  # functions, classes; not settings
                out.append((f"{name}.{key}", module, "attr", key, value))
    return tuple(out)


def changes(before: tuple[Entry, ...], limit: int = 5) -> list[str]:
    """What was replaced or removed since :func:`snapshot` (at most ``limit`` paths)."""
    found: list[str] = []
    for path, holder, how, key, obj in before:
        if _read(holder, how, key) is not obj:
            found.append(path)
            if len(found) >= limit:
                break
    return found
