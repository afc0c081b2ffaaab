"""Hostile case: tries to start processes: a shell, subprocess, fork, multiprocessing, and a fork
disguised as labkit's own code (compiled under the checks' file name, run in their namespace)."""

import multiprocessing
import os
import subprocess

import labkit.checks.ex01 as checks_module


def attempt(name, fn):
    try:
        pid = fn()
        if pid == 0:  # a forked child: leave at once
            os._exit(0)
        print(f"{name}: started")
    except Exception as err:
        print(f"{name}: {type(err).__name__}")


attempt("os.system", lambda: os.system("echo pwned > /tmp/labkit_spawned"))
attempt("subprocess", lambda: subprocess.run(["true"], check=True))
attempt("os.fork", os.fork)
attempt("multiprocessing", lambda: multiprocessing.get_context("fork").Process(target=print).start())
disguised = compile("import os\npid = os.fork()\n", checks_module.__file__, "exec")
attempt("disguised fork", lambda: exec(disguised, vars(checks_module)) or vars(checks_module).pop("pid", None))


def _raw_fork_exec():
    """The C entry point under subprocess, which raises no audit event of its own."""
    import importlib

    native = importlib.import_module("_posixsubprocess")
    r, w = os.pipe()
    return native.fork_exec([b"/bin/true"], [b"/bin/true"], True, (), None, None, -1, -1, -1, -1, -1, -1,
                            r, w, False, False, False, None, None, None, -1, None, False)


attempt("_posixsubprocess", _raw_fork_exec)
attempt("subprocess._fork_exec", lambda: subprocess._fork_exec([b"/bin/true"], [b"/bin/true"], True, (), None, None,
                                                               -1, -1, -1, -1, -1, -1, -1, -1, False, False, False,
                                                               None, None, None, -1, None, False))
