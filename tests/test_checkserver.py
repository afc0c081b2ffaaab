"""The warm check server: a served `labkit check` says exactly what a cold one says, and any trouble
falls back to a cold run."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import checkserver

ROOT = Path(__file__).resolve().parent.parent
LABKIT = [sys.executable, "-m", "labkit.cli"]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path (a socket's path must fit in 107 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="lkcs-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tmp_env(short_tmp: Path) -> Iterator[dict[str, str]]:
    """An environment whose servers live under ``short_tmp`` (TMPDIR), stopped afterwards."""
    env = dict(os.environ, TMPDIR=str(short_tmp), LABKIT_CHECK_SERVER="1", COLUMNS="120")
    yield env
    for lock in short_tmp.glob("labkit-checks-*/*.lock"):
        pid = int(lock.read_text().strip() or 0)
        if pid > 0:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LABKIT, "check", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def _wait_for_socket(tmp: Path, timeout: float = 90.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(tmp.glob("labkit-checks-*/*.sock"))
        if found:
            return found[0]
        time.sleep(0.2)
    logs = "\n".join(p.read_text() for p in tmp.glob("labkit-checks-*/*.log"))
    raise AssertionError(f"no check server came up within {timeout} s; its log:\n{logs}")


def _served(env: dict[str, str], sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `labkit check` and prove the server answered (its child is a new process of the server)."""
    before = sock.stat().st_ino
    done = _check(env, *args)
    assert sock.exists() and sock.stat().st_ino == before
    return done


def test_a_served_check_prints_and_exits_as_a_cold_one(tmp_env: dict[str, str], short_tmp: Path) -> None:
    cold_env = dict(tmp_env, LABKIT_CHECK_SERVER="0")
    first = _check(tmp_env, "ex01", "--from", "solutions")  # cold, and starts the server
    sock = _wait_for_socket(short_tmp)
    for args in (("ex01", "--from", "solutions"), ("ex03", "--from", "solutions"), ("ex02",), ("ex07",)):
        cold = _check(cold_env, *args)
        served = _served(tmp_env, sock, *args)
        assert (served.returncode, served.stdout) == (cold.returncode, cold.stdout), args
    assert first.returncode == 0


def test_a_learners_print_reaches_the_callers_terminal_and_a_dying_child_falls_back(
        tmp_env: dict[str, str], short_tmp: Path, tmp_path: Path) -> None:
    learner = tmp_path / "learner"
    learner.mkdir()
    source = (ROOT / "solutions" / "ex01_first_call.py").read_text(encoding="utf-8")
    (learner / "ex01_first_call.py").write_text(source + "\nprint('hello from the learner file')\n", encoding="utf-8")
    _check(tmp_env, "ex01", "--from", "solutions")
    sock = _wait_for_socket(short_tmp)
    served = _served(tmp_env, sock, "ex01", "--from", str(learner))
    assert served.returncode == 0 and "hello from the learner file" in served.stdout

    (learner / "ex01_first_call.py").write_text(source + "\nimport os\nos._exit(7)\n", encoding="utf-8")
    dying = _check(tmp_env, "ex01", "--from", str(learner))
    cold = _check(dict(tmp_env, LABKIT_CHECK_SERVER="0"), "ex01", "--from", str(learner))
    assert dying.returncode == cold.returncode == 7  # the server's child died; the caller ran it itself


def test_a_socket_left_by_a_killed_server_is_replaced(tmp_env: dict[str, str], short_tmp: Path) -> None:
    _check(tmp_env, "ex01", "--from", "solutions")
    sock = _wait_for_socket(short_tmp)
    old = (int(sock.with_suffix(".lock").read_text()), sock.stat().st_ino)
    os.kill(old[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while checkserver._held(sock.with_suffix(".lock")) and time.monotonic() < deadline:
        time.sleep(0.02)  # the lock is released once the kernel has reaped the server
    assert sock.exists() and not checkserver._held(sock.with_suffix(".lock"))  # left behind, nobody home
    assert _check(tmp_env, "ex01", "--from", "solutions").returncode == 0  # ran cold, started a new server
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if sock.stat().st_ino != old[1]:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert int(sock.with_suffix(".lock").read_text()) != old[0]
    assert _served(tmp_env, sock, "ex01", "--from", "solutions").returncode == 0


def test_no_server_in_a_folder_others_can_enter(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_CHECK_SERVER", "1")
    monkeypatch.setattr("tempfile.tempdir", str(short_tmp))
    folder = short_tmp / f"labkit-checks-{os.getuid()}"
    folder.mkdir()
    folder.chmod(0o777)
    assert checkserver.socket_path() is None
    assert checkserver.run_remote("ex01") is None
    folder.chmod(0o700)
    path = checkserver.socket_path()
    assert path is not None and path.parent == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("0", "off", "false", "no"):
        monkeypatch.setenv("LABKIT_CHECK_SERVER", value)
        assert not checkserver.enabled()
        assert checkserver.run_remote("ex01") is None
    monkeypatch.setenv("LABKIT_CHECK_SERVER", "1")
    assert checkserver.enabled()


def test_a_changed_labkit_file_means_another_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = checkserver.fingerprint()
    assert checkserver.fingerprint() == before  # stable while nothing changes
    target = Path(checkserver.__file__)
    st = target.stat()
    try:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert checkserver.fingerprint() != before
    finally:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setenv("LABKIT_EXERCISES", str(tmp_path))
    assert checkserver.fingerprint() != before


def test_ctrl_c_stops_the_served_run(tmp_env: dict[str, str], short_tmp: Path, tmp_path: Path) -> None:
    learner = tmp_path / "learner"
    learner.mkdir()
    pidfile = tmp_path / "pid"
    source = (ROOT / "solutions" / "ex01_first_call.py").read_text(encoding="utf-8")
    (learner / "ex01_first_call.py").write_text(
        source + f"\nimport os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(8)\n", encoding="utf-8")
    _check(tmp_env, "ex01", "--from", "solutions")
    _wait_for_socket(short_tmp)
    caller = subprocess.Popen([*LABKIT, "check", "ex01", "--from", str(learner)], env=tmp_env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert child != caller.pid  # the server's child ran the learner's file
    caller.send_signal(signal.SIGINT)
    caller.wait(timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the server's child went on after Ctrl-C")


def test_doctor_says_whether_a_server_runs(monkeypatch: pytest.MonkeyPatch, short_tmp: Path) -> None:
    from labkit import doctor

    monkeypatch.setenv("LABKIT_CHECK_SERVER", "0")
    assert doctor._check_server().ok and "off" in doctor._check_server().detail
    monkeypatch.setenv("LABKIT_CHECK_SERVER", "1")
    monkeypatch.setattr("tempfile.tempdir", str(short_tmp))
    found = doctor._check_server()
    assert found.ok and "not running" in found.detail
