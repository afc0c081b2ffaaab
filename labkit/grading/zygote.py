"""The warm grader inside a slot: ``python -m labkit.grading.zygote FD``.

It reads the run's :class:`~labkit.grading.protocol.Config` from the control socket ``FD``,
warms up (:mod:`labkit.grading.warm`), starts the slot's Redis if the checks need one, proves
that it can build a learner's sandbox, and says ``warm``. It then takes a ``start`` frame (the
reference observations), binds the runner's functions and the tripwire (:func:`labkit.grading.
child.bind`), says ``ready`` with the tripwire's fingerprint, and forks one supervisor per
``job`` frame (:func:`labkit.grading.child.supervise`). It exits when the control socket closes;
in a sandbox, bwrap's ``--die-with-parent`` ends everything with the grader.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import child, jail, protocol
from .protocol import Config, Failed, Job, Ready
from .redis_slots import SlotRedis


def _reply(sock: socket.socket, msg: Any) -> None:
    protocol.send_frame(sock, protocol.model_json(msg))


def _self_test(tmp_mb: int) -> None:
    """Build a learner's sandbox once, so a machine that cannot is refused before any learner."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            jail.enter_learner_namespaces(tmp_mb)
            inner = os.fork()
            if inner == 0:
                try:
                    jail.drop_privileges(jail.last_cap())
                    os._exit(0)
                finally:
                    os._exit(2)
            _, status = os.waitpid(inner, 0)
            code = os.waitstatus_to_exitcode(status)
        except BaseException as err:  # noqa: BLE001 - said to the parent
            os.write(2, f"labkit grader: cannot build a learner's sandbox: {err}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("the slot cannot create a learner's namespaces (unshare or mount was refused)")


def main(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
    jail.prctl(jail.PR_SET_DUMPABLE, 0)
    got = protocol.recv_frame(sock)
    if got is None:
        return
    cfg: Config = protocol.load(Config, got[0], "the grader's configuration")
    redis: SlotRedis | None = None
    try:
        os.environ.clear()
        os.environ.update(cfg.env | {"HOME": cfg.work, "TMPDIR": cfg.work})
        tempfile.tempdir = cfg.work
        from .. import checks

        for ex in cfg.exercises:
            checks.get_exercise(ex)
        if "labkit.redisd" in sys.modules:
            folder = Path(jail.RUN_DIR if cfg.sandboxed else tempfile.mkdtemp(dir=cfg.work, prefix="redis-"))
            last = jail.last_cap()

            def before_exec() -> None:
                jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
                if cfg.sandboxed:
                    jail.drop_privileges(last)

            redis = SlotRedis(folder, cfg.memory_mb, before_exec)
            os.environ["REDIS_URL"] = redis.url
        starters = Path(tempfile.mkdtemp(dir=cfg.work, prefix="starters-"))
        for name, text in cfg.starters.items():
            (starters / Path(name).name).write_text(text, encoding="utf-8")
        from .warm import warm

        unicode = Path(tempfile.mkdtemp(dir=cfg.work, prefix="hypothesis-"))
        child.write_files(unicode, cfg.unicode)
        exercises = warm(cfg.exercises, starters, cfg.check_limit, unicode)
        if redis:
            redis.wipe()
        if cfg.sandboxed:
            _self_test(cfg.tmp_mb)
        protocol.send_frame(sock, json.dumps({"type": "warm"}).encode())
    except BaseException as err:  # noqa: BLE001 - every failure is said to the parent, in one line
        _reply(sock, Failed(type="failed", message=f"{type(err).__name__}: {err}"[:2000]))
        if redis:
            redis.stop()
        return
    bound: child.Bound | None = None
    children: set[int] = set()
    try:
        while True:
            ready, _, _ = select.select([sock], [], [], 0.5)
            for pid in list(children):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    children.discard(pid)
            if not ready:
                continue
            got = protocol.recv_frame(sock)
            if got is None:
                return
            data, fds = got
            kind = json.loads(data).get("type")
            if kind == "start":
                from ..checks import differential

                differential.restore(json.loads(data)["observations"])
                bound = child.bind(exercises)
                gc.freeze()
                _reply(sock, Ready(type="ready", fingerprint=bound.fingerprint, redis=redis is not None))
            elif kind == "job" and bound is not None and len(fds) == 1:
                job = protocol.load(Job, data, "a job")
                pid = os.fork()
                if pid == 0:
                    sock.close()
                    child.supervise(job, fds[0], cfg, bound, redis)
                os.close(fds[0])
                children.add(pid)
            else:
                for f in fds:
                    os.close(f)
    finally:
        if redis:
            redis.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
