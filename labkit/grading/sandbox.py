"""In-process guards for learner code: the second layer, inside the OS sandbox (:mod:`labkit.grading.jail`).

Used by the runner (:mod:`labkit.grading.child`). They are not the boundary (PEP 578: audit
hooks are not a sandbox; code in the same process can always study and fool them); they turn
what the sandbox would stop anyway into a clear message ("network access is not allowed
here"), and notice ordinary gaming.

* :func:`set_limits`: memory, CPU time, file size and core-dump limits (``resource``).
* :func:`install_audit_hook`: a ``sys.addaudithook`` hook that refuses network access,
  new processes, ``ctypes``, tracing, memory inspection, reads of hidden folders and of
  ``/proc/*/environ|mem``, writes outside the folders the submission may use, and changes to
  labkit's classes and functions. Its allow-lists are immutable, so reaching the hook's frame
  (through a refusal's traceback) cannot widen them.
* :func:`snapshot` / :func:`changes` / :func:`fingerprint`: a tripwire that notices learner code
  replacing labkit's functions, classes or data (or builtins); the parent holds the
  fingerprint of the untouched state, out of the runner's reach.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import resource
import socket
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["Blocked", "changes", "check_code", "fingerprint", "install_audit_hook", "set_limits", "snapshot"]


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


def set_limits(*, memory_mb: int, cpu_s: float, file_mb: int, base: int = 0) -> None:
    """Cap address space (``base`` or the current size, + ``memory_mb``), CPU seconds, file size; no core dumps."""
    mem = (base or vm_size()) + memory_mb * 2**20
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
_INSPECT = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
                      "sys._current_frames", "sys.addaudithook"})
_LIMITS = frozenset({"resource.setrlimit", "resource.prlimit"})
#: C modules that start processes without raising an audit event: made unreachable, then refused.
_UNAUDITED = frozenset({"_posixsubprocess"})
#: Modules that read and write raw memory (``ctypes.memmove`` raises no audit event at all).
_RAW_MEMORY = frozenset({"ctypes", "_ctypes"})
#: Events that change a path: ``event -> (indexes of path arguments, index of their dir_fd or -1)``.
_PATH_WRITES: Mapping[str, tuple[tuple[int, ...], int]] = MappingProxyType({
    "os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.rename": ((0, 1), 2),
    "os.link": ((1,), 3), "os.symlink": ((1,), 2), "os.truncate": ((0,), -1), "os.chmod": ((0,), 2),
    "os.chown": ((0,), 3), "os.utime": ((0,), 3), "os.chflags": ((0,), -1), "os.lchflags": ((0,), -1),
    "os.setxattr": ((0,), -1), "os.removexattr": ((0,), -1), "shutil.rmtree": ((0,), 1),
    "sqlite3.connect": ((0,), -1),
})
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


def _signature(code: types.CodeType) -> tuple[Any, ...]:
    """What a code object does: its bytecode, names, constants (nested code by signature) and name."""
    consts = tuple(_signature(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts)
    return (code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts, code.co_qualname)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r + os.sep) for r in roots)


def _resolve(path: Any, dir_fd: Any = None, by_dev: Mapping[int, str] | None = None) -> str | None:
    """An absolute, symlink-free path for an audit argument (None for file descriptors).

    A path relative to a directory fd is resolved through ``/proc/self/fd``; in the sandbox there
    is no ``/proc``, and a directory on one of the submission's own file systems (``by_dev``: its
    private tmpfs, device -> folder) counts as inside that folder.
    """
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
            try:
                dev = os.fstat(dir_fd).st_dev
            except OSError:
                dev = -1
            if by_dev and dev in by_dev and ".." not in raw.split("/"):
                return os.path.join(by_dev[dev], raw)
            return "/unknown-dir-fd/" + raw
    return os.path.realpath(raw)


def check_code(prefixes: tuple[str, ...] = ("labkit.checks",)) -> dict[int, types.CodeType]:
    """Every code object of the modules named by ``prefixes`` (by id), to recognise their own frames.

    Identity, not file names: learner code can compile anything under any file name, but it
    cannot produce these objects.
    """
    found: dict[int, types.CodeType] = {}

    def ours(obj: Any) -> bool:
        mod = getattr(obj, "__module__", None)
        return isinstance(mod, str) and any(mod == p or mod.startswith(p + ".") for p in prefixes)

    def add(obj: Any, depth: int = 0) -> None:
        if depth > 8:
            return
        if isinstance(obj, types.CodeType):
            if id(obj) not in found:
                found[id(obj)] = obj
                for const in obj.co_consts:
                    add(const, depth + 1)
        elif isinstance(obj, types.FunctionType) and ours(obj):
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
        elif isinstance(obj, type) and ours(obj):
            for value in list(vars(obj).values()):
                add(value, depth + 1)
        elif isinstance(obj, dict):
            for value in list(obj.values()):
                add(value, depth + 1)

    for name, module in list(sys.modules.items()):
        if isinstance(module, types.ModuleType) and any(name == p or name.startswith(p + ".") for p in prefixes):
            for value in list(vars(module).values()):
                add(value)
    return found


#: Modules a check may drive to fork, share memory or rewrite a function (ex06's multiprocessing,
#: hypothesis for property checks): their own code objects, as loaded before any learner code (never
#: their file names), are walked through to find the check that called them.
PASS_THROUGH = ("multiprocessing", "tempfile", "threading", "hypothesis", "concurrent.futures")


def install_audit_hook(
    *,
    write_roots: Iterable[str | Path],
    hidden_roots: Iterable[str | Path],
    writable_files: Iterable[str | Path] = (),
    unix_sockets: Iterable[str | Path] = (),
    trusted: Mapping[int, types.CodeType] | None = None,
    walk: frozenset[int] | None = None,
) -> Callable[[], tuple[str, ...]]:
    """Install the grading audit hook (for the rest of the process's life); return a function that reads its log.

    ``write_roots``: folders learner code may create, change or delete files in. ``hidden_roots``:
    folders it may neither read nor list. ``unix_sockets``: the only sockets it may connect to
    (the slot's Redis). ``trusted``: code objects of the checks (see :func:`check_code`); when
    the nearest caller outside :data:`PASS_THROUGH`'s own code is one of them, ``os.fork``,
    ``ctypes`` and writes under ``/dev/shm`` are allowed (a check may use ``multiprocessing``;
    its workers inherit every guard); ``walk``: the pass-through code ids (computed if not given).
    Each refusal raises :class:`Blocked` in the learner's code
    and adds one line to the log (an immutable tuple, so code that reaches the hook's frame cannot
    empty it). Every allow-list is immutable.
    """
    for name in _UNAUDITED:
        sys.modules.pop(name, None)
    if "subprocess" in sys.modules:
        sys.modules["subprocess"]._fork_exec = None  # type: ignore[attr-defined]  # the only other handle on it
    writable = tuple(os.path.realpath(p) for p in write_roots)
    files = frozenset(os.path.realpath(p) for p in writable_files) | {"/dev/null"}
    hidden = tuple(os.path.realpath(p) for p in hidden_roots)
    sockets = frozenset(os.path.realpath(p) for p in unix_sockets)
    log: tuple[str, ...] = ()
    me = os.getpid()
    watched, path_writes = _WATCHED, _PATH_WRITES
    checks_code = frozenset((trusted or {}).keys())
    # A library may rebuild a check's code object (hypothesis rewrites co_filename): the same bytecode,
    # names and constants running in a checks module's own globals is still the checks' code.
    sigs = frozenset(_signature(c) for c in (trusted or {}).values())
    checks_globals = frozenset(id(vars(m)) for n, m in list(sys.modules.items())
                               if isinstance(m, types.ModuleType) and (n == "labkit.checks" or n.startswith("labkit.checks.")))
    walk_code = walk if walk is not None else frozenset(check_code(PASS_THROUGH))
    by_dev: Mapping[int, str] = MappingProxyType({os.stat(r).st_dev: r for r in writable if os.path.isdir(r)})
    alive = (tuple((trusted or {}).values()),)  # keeps the trusted code objects (and so their ids) alive
    own: frozenset[int] = frozenset()  # the hook's own code (set below)

    def by_checks() -> bool:
        """Whether the nearest caller outside the pass-through modules is the checks' own code."""
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None:
            key = id(frame.f_code)
            if key in checks_code or (id(frame.f_globals) in checks_globals and _signature(frame.f_code) in sigs):
                return bool(alive)
            if key not in own and key not in walk_code:
                return False
            frame = frame.f_back
        return False

    def deny(kind: str, what: str) -> None:
        nonlocal log
        line = f"{kind}: {what}"[:300]
        if line not in log[-20:]:
            log = (*log, line)
        raise Blocked(f"labkit grader: {kind} is not allowed while grading ({what})")

    def check_write(path: str | None) -> None:
        if (path is not None and path not in files and not _under(path, writable)
                and not (path.startswith("/dev/shm/") and by_checks())):
            deny("writing outside the submission", path)

    def check_read(path: str | None) -> None:
        if path is None:
            return
        if _under(path, hidden):
            deny("reading the course's private files", path)
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
            if name in _UNAUDITED or name in _RAW_MEMORY:
                deny("starting a process" if name in _UNAUDITED else "ctypes",
                     f"import {name}" if name in _UNAUDITED else
                     f"import {name} (raw memory access; numpy and other libraries that load ctypes cannot be graded: "
                     "use the standard library)")
        elif event in ("os.listdir", "os.scandir"):
            check_read(_resolve(args[0] if args else "."))
        elif event in path_writes:
            idx, fd_at = path_writes[event]
            dir_fd = args[fd_at] if 0 <= fd_at < len(args) else None
            for i in idx:
                if i < len(args) and not (event == "sqlite3.connect" and str(args[i]) in ("", ":memory:")):
                    check_write(_resolve(args[i], dir_fd, by_dev))
            if event == "os.link":
                check_read(_resolve(args[0], args[2] if len(args) > 2 else None, by_dev))
        elif event == "socket.__new__":
            if len(args) > 1 and args[1] not in (socket.AF_UNIX, -1):
                deny("network access", f"socket family {args[1]}")
        elif event in ("os.kill", "os.killpg"):
            if args and args[0] not in (0, me) and not _same_group(int(args[0]), event):
                deny("signalling other processes", f"{event}({args[0]})")
        elif event == "object.__setattr__":
            target, name = args[0], args[1] if len(args) > 1 else ""
            # labkit's own functions and methods (not the throw-away closures a library may rewrite, as
            # hypothesis does with a property check's wrapper); learner code may rewrite its own functions
            if (isinstance(target, types.FunctionType) and name in ("__code__", "__defaults__", "__kwdefaults__")
                    and _is_labkit(target) and "<locals>" not in target.__qualname__):
                deny("changing the grader's code", f"{target.__qualname__:.80}.{name}")
            if isinstance(target, type) and _is_labkit(target):
                deny("changing the grader's code", f"{target.__qualname__:.80}.{name}")
            if isinstance(target, types.ModuleType) and _is_labkit(target) and name == "__class__":
                deny("changing the grader's code", f"{target.__name__:.80}.__class__")
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

    def read() -> tuple[str, ...]:
        return log

    own = frozenset(id(f.__code__) for f in (hook, check_write, check_read, deny, by_checks))
    sys.addaudithook(hook)
    return read


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


def snapshot(prefix: str = "labkit", skip: tuple[str, ...] = ()) -> tuple[Entry, ...]:
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
        if not isinstance(module, types.ModuleType) or not (name == prefix or name.startswith(prefix + ".")) or name in skip:
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


def fingerprint(before: tuple[Entry, ...], *, read: Any = None, digest: Any = None) -> str:
    """A digest of what each snapshot path holds now (object identities): equal to the untouched
    state's digest, which the parent keeps, only if nothing was replaced."""
    import hashlib

    read, h = read or _read, (digest or hashlib.sha256)()
    for path, holder, how, key, _ in before:
        h.update(f"{path}\0{id(read(holder, how, key))}\n".encode("utf-8", "replace"))
    return h.hexdigest()
