"""Hostile case: reaches the audit hook's own frame through a refusal's traceback and tries to widen its
allow-lists (writable folders, sockets, trusted code), then to add an audit hook of its own, then
writes a marker outside its folder and opens a TCP socket."""

import socket
import sys

MARKER = "/tmp/labkit_hostile_marker_widen"


def widen(err):
    tb = err.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if "labkit" not in frame.f_code.co_filename:  # the hook's frames only
            tb = tb.tb_next
            continue
        for name, value in list(frame.f_locals.items()):
            try:
                if isinstance(value, list):
                    value.clear()
                elif isinstance(value, (set, dict)):
                    value.clear() if isinstance(value, dict) else value.add("/")
            except Exception:
                pass
        tb = tb.tb_next


try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
except PermissionError as err:
    widen(err)
try:
    sys.addaudithook(lambda event, args: None)
except BaseException as err:
    print("widen: addaudithook", type(err).__name__)
for attempt in ("write", "socket"):
    try:
        if attempt == "write":
            with open(MARKER, "w") as fh:
                fh.write("pwned")
        else:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 9))
    except BaseException as err:
        print("widen:", attempt, type(err).__name__)


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
