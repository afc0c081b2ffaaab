"""Private Redis servers for the children, one per job slot, for exercises whose checks need Redis."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ..errors import GradingError


class RedisSlots:
    """One private redis-server per job slot, for exercises whose checks need Redis.

    Children connect over a unix socket (the only socket the audit hook lets them reach).
    Admin commands are disabled (no CONFIG/SAVE file writes, no FLUSHALL, no MONITOR), and the
    parent empties a slot's server between two learners, so learners never see each other's keys.
    """

    DISABLED = ("FLUSHALL", "FLUSHDB", "CONFIG", "SAVE", "BGSAVE", "BGREWRITEAOF", "SHUTDOWN", "DEBUG", "MODULE",
                "MONITOR", "SYNC", "PSYNC", "REPLICAOF", "SLAVEOF", "MIGRATE", "ACL", "FAILOVER")

    def __init__(self, n: int, folder: Path, memory_mb: int) -> None:
        from .. import redisd

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
        """The ``REDIS_URL`` of a slot's server."""
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
        """Stop every server (killed if it does not stop within 5 s)."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
