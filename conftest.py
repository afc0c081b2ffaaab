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


_pristine_workspace()
