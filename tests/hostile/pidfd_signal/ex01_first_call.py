"""Hostile case: looks for the grader's processes and sends them SIGSTOP and SIGKILL through pidfds
(signal.pidfd_send_signal raises no audit event), from pidfd_open and from /proc directory fds."""

import os
import signal

me = os.getpid()
targets = {os.getppid(), 1, 2, 3} | set(range(2, 400))
sent = 0
for pid in sorted(targets - {me, 0}):
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for how in ("pidfd_open", "/proc"):
            try:
                fd = os.pidfd_open(pid) if how == "pidfd_open" else os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
                signal.pidfd_send_signal(fd, sig)
                os.close(fd)
                sent += 1
            except (OSError, AttributeError):
                pass
print("PIDFD-SIGNAL-RAN, signals sent:", sent)


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
