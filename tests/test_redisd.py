"""labkit.redisd: a private redis-server without REDIS_URL, the given server with it, fast clear failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from labkit import redisd

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def external() -> redisd.Server:
    """A second, separately started server (as a learner's own Redis would be)."""
    server = redisd.start_server()
    yield server
    server.stop()


def test_private_server_starts_and_stops_at_exit() -> None:
    code = (
        "from labkit import redisd\n"
        "r = redisd.connect(); r.set('k', 'v'); assert r.get('k') == b'v'\n"
        "s = redisd._PRIVATE; print(s.folder, s.process.pid)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30, check=True)
    folder, pid = out.stdout.split()
    assert not Path(folder).exists(), "the private server's folder should be removed at exit"
    for _ in range(100):
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"redis-server {pid} still runs after its owner exited")


def test_private_server_is_shared_within_a_process() -> None:
    a, b = redisd.connect(), redisd.connect()
    prefix = redisd.fresh_prefix("test")
    a.set(prefix + "x", 1)
    assert b.get(prefix + "x") == b"1"
    assert redisd.is_private() and redisd.url().startswith("unix://")
    redisd.drop_prefix(a, prefix)


def test_redis_url_is_used(monkeypatch: pytest.MonkeyPatch, external: redisd.Server) -> None:
    monkeypatch.setenv("REDIS_URL", external.url)
    assert not redisd.is_private() and redisd.url() == external.url
    r = redisd.connect()
    r.set("seen-by-external", "yes")
    direct = redis.Redis(unix_socket_path=str(external.socket))
    assert direct.get("seen-by-external") == b"yes"
    assert "REDIS_URL" in redisd.describe(r)


def test_db_number_overrides_the_url(monkeypatch: pytest.MonkeyPatch, external: redisd.Server) -> None:
    monkeypatch.setenv("REDIS_URL", external.url)
    redisd.connect(db=5).set("in-five", 1)
    assert redis.Redis(unix_socket_path=str(external.socket), db=5).get("in-five") == b"1"
    assert redis.Redis(unix_socket_path=str(external.socket), db=0).get("in-five") is None


@pytest.mark.parametrize("url", ["unix:///nonexistent/labkit/redis.sock", "redis://127.0.0.1:{closed}/0"])
def test_down_server_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", url.format(closed=closed))
    t = time.monotonic()
    with pytest.raises(redisd.RedisUnavailable, match="not reachable.*unset REDIS_URL"):
        redisd.connect()
    assert time.monotonic() - t < 2.0


def test_hung_server_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
        t = time.monotonic()
        with pytest.raises(redisd.RedisUnavailable, match="Timeout"):
            redisd.connect()
        assert time.monotonic() - t < 3.5


def test_bad_url_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://example.com")
    with pytest.raises(redisd.RedisUnavailable, match="not a Redis URL"):
        redisd.connect()


def test_drop_prefix_only_touches_its_prefix() -> None:
    r = redisd.connect()
    mine, other = redisd.fresh_prefix("test"), redisd.fresh_prefix("test")
    r.mset({f"{mine}{i}": i for i in range(1200)} | {f"{other}keep": 1})
    assert redisd.drop_prefix(r, mine) == 1200
    assert r.get(f"{other}keep") == b"1"
    redisd.drop_prefix(r, other)
    with pytest.raises(ValueError):
        redisd.drop_prefix(r, "")


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by PID 1, which may take its time)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_stale_folders_of_killed_processes_are_swept(tmp_path: Path) -> None:
    code = "from labkit import redisd; s = redisd.start_server(); print(s.folder, s.process.pid, flush=True); import time; time.sleep(60)"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    folder, server_pid = owner.stdout.readline().split()  # type: ignore[union-attr]
    owner.kill()  # no atexit: the folder and the server are left behind
    owner.wait()
    assert Path(folder).exists()
    fresh = redisd.start_server()  # sweeps before starting
    try:
        assert not Path(folder).exists()
        for _ in range(250):
            if not _running(int(server_pid)):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the orphaned redis-server was not stopped")
    finally:
        fresh.stop()
