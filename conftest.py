"""For every pytest run (unit tests and nbval): learner state never leaks in or out.

Model lifecycles are judged on the course's pinned date (``LABKIT_TODAY``). Tests and notebooks
see pristine starters generated from ``solutions/`` into a temporary
folder (``LABKIT_EXERCISES``), never the learner's working copy, and keep progress in a
temporary state folder: ``make test`` passes however far a learner has got, and never
touches their progress.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _pristine_workspace() -> None:
    os.environ["LABKIT_NO_DOTENV"] = "1"  # a key in the course's .env never switches tests or nbval kernels to live
    os.environ["LABKIT_CHECK_SERVER"] = "0"  # no background check server outlives a test run
    if os.environ.get("LABKIT_EXERCISES"):
        return
    from labkit import starters

    tmp = Path(tempfile.mkdtemp(prefix="labkit-test-"))
    atexit.register(shutil.rmtree, tmp, True)
    os.environ["LABKIT_ROOT"] = str(ROOT)
    starters.build(into=tmp / "exercises")
    os.environ["LABKIT_EXERCISES"] = str(tmp / "exercises")
    os.environ["LABKIT_STATE"] = str(tmp / "state")
    from labkit.clock import TODAY_ENV, course_date

    os.environ.setdefault(TODAY_ENV, course_date().isoformat())  # lifecycles judged on the course's date


def _kernel_clock() -> None:
    """With ``LABKIT_KERNEL_CLOCK`` set (``make test`` sets it for nbval), every kernel's Python
    clock starts at that date (``labkit.notebooks.kernel_clock_profile``): a date in a saved output
    fails the build. (libfaketime, used before, made timed lock waits in a kernel never time out.)"""
    when = os.environ.get("LABKIT_KERNEL_CLOCK")  # labkit.notebooks.KERNEL_CLOCK_ENV
    if not when or os.environ.get("IPYTHONDIR"):
        return
    from labkit.notebooks import kernel_clock_profile

    folder = Path(tempfile.mkdtemp(prefix="labkit-ipython-"))
    atexit.register(shutil.rmtree, folder, True)
    os.environ["IPYTHONDIR"] = str(kernel_clock_profile(when, folder))


_pristine_workspace()
_kernel_clock()
