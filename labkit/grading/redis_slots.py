"""A slot's private Redis server, for exercises whose checks need Redis.

The zygote starts it inside its sandbox (so it lives and dies with the slot, and a Redis bug
is contained like learner code), without capabilities, listening only on a unix socket in a
folder learners see read-only. Admin commands are disabled (no CONFIG/SAVE file writes, no
FLUSHALL, no MONITOR), and each learner's supervisor empties it before the learner starts, so
learners never see each other's keys.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import GradingError


class SlotRedis:
    """One private redis-server listening on ``folder/redis.sock``."""

    DISABLED = ("FLUSHALL", "FLUSHDB", "CONFIG", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "DEBUG", "MODULE",
                "MONITOR", "SYNC", "PSYNC", "REPLICAOF", "SLAVEOF", "MIGRATE", "ACL", "FAILOVER")

    def __init__(self, folder: Path, memory_mb: int, before_exec: Callable[[], None] | None = None) -> None:
        from .. import redisd

        try:
            exe = redisd.server_binary()
        except redisd.RedisUnavailable as err:
            raise GradingError(f"{err} (needed by the checks of an exercise; or grade the others with --exercise)") from None
        folder.mkdir(parents=True, exist_ok=True)
        self.socket = folder / "redis.sock"
        cmd = [exe, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "777",
               "--dir", str(folder), "--save", "", "--appendonly", "no", "--databases", "1", "--loglevel", "warning",
               "--logfile", "", "--maxmemory", f"{memory_mb}mb", "--maxmemory-policy", "noeviction"]
        for name in self.DISABLED:
            cmd += ["--rename-command", name, ""]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=before_exec, close_fds=True)
        try:
            self.wipe(wait=10.0)
        except GradingError:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def wipe(self, wait: float = 2.0) -> None:
        """Delete every key and script; a clear error if the server does not answer within ``wait`` seconds."""
        import redis

        deadline = time.monotonic() + wait
        while True:
            try:
                r = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5, socket_connect_timeout=1)
                keys = list(r.scan_iter(count=1000))
                if keys:
                    r.unlink(*keys)
                r.script_flush()
                r.close()
                return
            except (redis.RedisError, OSError) as err:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise GradingError(f"the grader's Redis server does not answer ({type(err).__name__}: {err})") from None
                time.sleep(0.01)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
