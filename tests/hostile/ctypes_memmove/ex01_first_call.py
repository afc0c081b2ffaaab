"""Hostile case: ctypes.memmove reads and writes raw memory with no audit event of its own; with it,
try to read the interpreter's memory and call libc's system() to leave a marker outside the sandbox."""

import importlib.machinery
import importlib.util
import os
import sys

MARKER = "/tmp/labkit_hostile_marker_ctypes"
ctypes = sys.modules.get("ctypes")
for attempt in ("import", "sys.modules", "other module", "file"):
    if ctypes is not None:
        break
    try:
        if attempt == "import":
            import ctypes
        elif attempt == "other module":
            for mod in list(sys.modules.values()):
                found = getattr(mod, "ctypes", None)
                if found is not None and hasattr(found, "memmove"):
                    ctypes = found
                    break
        elif attempt == "file":
            for folder in sys.path:
                for name in (os.listdir(folder) if os.path.isdir(folder) else []):
                    if name.startswith("_ctypes.") and name.endswith(".so"):
                        loader = importlib.machinery.ExtensionFileLoader("not_ctypes", os.path.join(folder, name))
                        loader.create_module(importlib.util.spec_from_loader("not_ctypes", loader))
    except BaseException as err:
        print("ctypes", attempt, type(err).__name__)
if ctypes is not None:
    buf = ctypes.create_string_buffer(64)
    ctypes.memmove(buf, id(sys) , 64)  # read raw memory
    ctypes.CDLL(None).system(f"id > {MARKER}".encode())
    print("ctypes: memmove and system() worked")


def build_messages(prompt=""):
    raise NotImplementedError


def first_completion(client):
    raise NotImplementedError


def summarize(completion):
    raise NotImplementedError
