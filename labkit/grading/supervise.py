"""The parent's side of the sandbox: start the slots, grade the references, hand out learners, collect results.

Each :class:`Slot` is one zygote (in ``bwrap`` unless the run is unsandboxed) talking to the
parent over a private socket. The parent sends a learner's files and a fresh status pipe; the
learner's supervisor answers on that pipe with one :class:`~labkit.grading.protocol.JobEnd`,
which the parent reads size-capped and parses strictly (:mod:`labkit.grading.verdict`), then
writes ``results/<learner>.json`` itself. Nothing inside a slot can write the parent's files:
``--out`` is not in its view, and only the parent writes it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GradingError
from . import jail, protocol
from .plan import Learner
from .protocol import Config, Job, JobEnd, ProtocolError

READY_S = 300.0  # a slot warms up within this (the course's imports, its tokenizer, its cassettes)
GRACE_S = 30.0  # beyond the learner's time limit, for setting up and reporting
MAX_END = 3 * protocol.MAX_BYTES  # a JobEnd frame (the base64 result, two output tails)


@dataclass
class Running:
    """A job in flight on a slot."""

    learner: Learner
    job: Job
    reader: int
    deadline: float
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class Slot:
    """One warm zygote, in its own sandbox."""

    def __init__(self, index: int, cfg: Config, command: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.index, self.cfg, self.log = index, cfg, log
        ours, theirs = socket.socketpair()
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([*command, sys.executable, "-m", "labkit.grading.zygote", str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, start_new_session=True, preexec_fn=_die_with_parent)
        theirs.close()
        self.sock = ours
        self.running: Running | None = None
        self.fingerprint = ""
        with contextlib.suppress(OSError):  # a slot that died at once is reported by expect(), with its log
            protocol.send_frame(self.sock, protocol.model_json(cfg))

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """The slot's next message, which must be ``kind``; a GradingError saying what went wrong otherwise."""
        import json

        self.sock.settimeout(timeout)
        try:
            got = protocol.recv_frame(self.sock, 2**20)
        except (TimeoutError, OSError, ProtocolError) as err:
            got, why = None, f"{type(err).__name__}: {err}"
        else:
            why = ""
        finally:
            self.sock.settimeout(None)
        if got is None:
            self.stop()
            raise GradingError(f"grading slot {self.index} failed to start ({why or self._last_log()})")
        msg = json.loads(got[0])
        if msg.get("type") == "failed":
            self.stop()
            raise GradingError(f"grading slot {self.index} failed: {protocol.load(protocol.Failed, got[0], 'slot').message}")
        if msg.get("type") != kind:
            self.stop()
            raise GradingError(f"grading slot {self.index} said {msg.get('type')!r} instead of {kind!r}")
        return dict(msg)

    def _last_log(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1][:300] if lines else "no message"

    def start(self, observations: dict[str, str]) -> None:
        import json

        with contextlib.suppress(OSError):
            protocol.send_frame(self.sock, json.dumps({"type": "start", "observations": observations}).encode())
        ready = protocol.load(protocol.Ready, json.dumps(self.expect("ready", READY_S)).encode(), "the slot's ready message")
        self.fingerprint = ready.fingerprint

    def submit(self, ln: Learner, reference: bool = False) -> Running:
        """Send a learner's files; the slot answers on a fresh pipe (returned in :class:`Running`)."""
        files = {rel: base64.b64encode((ln.src / rel).read_bytes()).decode() for rel in ln.files}
        job = Job(id=secrets.randbits(31), token=secrets.token_hex(16), files=files, reference=reference)
        r, w = os.pipe()
        try:
            protocol.send_frame(self.sock, protocol.model_json(job), [w])
        finally:
            os.close(w)
        os.set_blocking(r, False)
        self.running = Running(ln, job, r, time.monotonic() + self.cfg.timeout + GRACE_S)
        return self.running

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()


def _die_with_parent() -> None:
    """In a slot's first process: die when the grader dies (bwrap's --die-with-parent covers the rest)."""
    with contextlib.suppress(OSError):
        jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)


#: Called as each job ends: (learner, report or None, the job's token, why there is no report, the slot's fingerprint).
Done = Callable[[Learner, JobEnd | None, str, str, str], None]


class Pool:
    """The slots of one run: started together, each grading one learner at a time."""

    def __init__(self, n: int, cfg: Config, command: Sequence[str], env: dict[str, str], work: Path) -> None:
        self.cfg, self.command, self.env, self.work = cfg, list(command), env, work
        self.slots: list[Slot] = []
        self.observations: dict[str, str] = {}
        try:
            for i in range(n):
                self.slots.append(Slot(i, cfg, self.command, env, work / f"slot{i}.log"))
            for slot in self.slots:
                slot.expect("warm", READY_S)
        except BaseException:
            self.stop()
            raise

    def start(self, observations: dict[str, str]) -> None:
        """Hand every slot the reference observations; each then binds its runner and its tripwire."""
        self.observations = observations
        for slot in self.slots:
            slot.start(observations)

    def reference(self, ln: Learner) -> tuple[JobEnd | None, str, str]:
        """Grade the reference solutions in slot 0 (the same sandbox as every learner), before any learner."""
        slot = self.slots[0]
        slot.fingerprint = ""
        with contextlib.suppress(OSError):
            protocol.send_frame(slot.sock, b'{"type": "start", "observations": {}}')
        slot.fingerprint = protocol.load(protocol.Ready, _dumps(slot.expect("ready", READY_S)), "ready").fingerprint
        results: list[tuple[JobEnd | None, str, str]] = []
        self._run([(ln, True)], [slot], lambda _ln, end, token, why, fingerprint: results.append((end, token, fingerprint)))
        return results[0]

    def run(self, todo: Sequence[Learner], done: Done, tick: Callable[[], None] = lambda: None) -> None:
        def both(ln: Learner, end: JobEnd | None, token: str, why: str, fingerprint: str) -> None:
            done(ln, end, token, why, fingerprint)
            tick()

        self._run([(ln, False) for ln in todo], self.slots, both)

    def _run(self, todo: Sequence[tuple[Learner, bool]], slots: list[Slot], done: Done) -> None:
        pending = list(reversed(todo))
        sel = selectors.DefaultSelector()
        try:
            while pending or any(s.running for s in slots):
                for i, slot in enumerate(slots):
                    if slot.running is None and pending:
                        ln, ref = pending.pop()
                        try:
                            running = slot.submit(ln, ref)
                        except OSError:  # the slot died between two learners: a new one takes the job
                            slot = slots[i] = self._replace(slot)
                            running = slot.submit(ln, ref)
                        sel.register(running.reader, selectors.EVENT_READ, slot)
                for key, _ in sel.select(timeout=0.5):
                    slot = key.data
                    run = slot.running
                    assert run is not None
                    try:
                        chunk = os.read(run.reader, 2**16)
                    except BlockingIOError:
                        continue
                    run.chunks.append(chunk)
                    run.size += len(chunk)
                    if chunk and run.size <= MAX_END:
                        continue
                    sel.unregister(run.reader)
                    os.close(run.reader)
                    slot.running = None
                    data = b"".join(run.chunks)
                    try:
                        if run.size > MAX_END:
                            raise ProtocolError(f"the supervisor's report is larger than {MAX_END // 2**20} MB")
                        end: JobEnd | None = protocol.load(JobEnd, data, "the supervisor's report")
                        why = ""
                        if end is not None and end.job != run.job.id:
                            raise ProtocolError("the supervisor's report names another job")
                    except ProtocolError as err:
                        end, why = None, str(err)
                    done(run.learner, end, run.job.token, why, slot.fingerprint)
                now = time.monotonic()
                for i, slot in enumerate(slots):
                    run = slot.running
                    if run is not None and now > run.deadline:
                        sel.unregister(run.reader)
                        os.close(run.reader)
                        slot.running = None
                        done(run.learner, None, run.job.token, "the sandbox stopped answering", slot.fingerprint)
                        slots[i] = self._replace(slot)
        finally:
            sel.close()

    def _replace(self, slot: Slot) -> Slot:
        """A new slot in place of one that stopped answering."""
        slot.stop()
        new = Slot(slot.index, self.cfg, self.command, self.env, slot.log)
        new.expect("warm", READY_S)
        new.start(self.observations)
        if slot in self.slots:
            self.slots[self.slots.index(slot)] = new
        return new

    def stop(self) -> None:
        for slot in self.slots:
            slot.stop()


def _dumps(msg: dict[str, Any]) -> bytes:
    import json

    return json.dumps(msg).encode()
