"""Where the course lives: its root, cassettes, data and learner state."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_MARKERS = ("cassettes", "labkit")


def course_root(start: Path | None = None) -> Path:
    """The course checkout: ``LABKIT_ROOT``, else the nearest folder above ``start``
    (default: the working directory) holding ``cassettes/`` and ``labkit/``, else the
    folder this package was installed from."""
    env = os.environ.get("LABKIT_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / m).is_dir() for m in _MARKERS):
            return folder
    return Path(__file__).resolve().parent.parent


def cassette_dir() -> Path:
    """Folder of cassettes: ``LABKIT_CASSETTES`` or ``<root>/cassettes``."""
    env = os.environ.get("LABKIT_CASSETTES")
    return Path(env).resolve() if env else course_root() / "cassettes"


def exercises_dir() -> Path:
    """The learner's working folder: ``LABKIT_EXERCISES`` or ``<root>/exercises``.

    ``make test`` points it at pristine starters, so saved notebook outputs and tests never
    depend on how far the learner has got.
    """
    env = os.environ.get("LABKIT_EXERCISES")
    return Path(env).resolve() if env else course_root() / "exercises"


def solutions_dir() -> Path:
    """The reference solutions."""
    return course_root() / "solutions"


def data_dir() -> Path:
    """Folder of the course's data sets."""
    return course_root() / "data"


def state_dir() -> Path:
    """Folder for learner state (progress), ignored by git."""
    env = os.environ.get("LABKIT_STATE")
    return Path(env).resolve() if env else course_root() / ".labkit"


#: The longest unix socket path Linux accepts (``sun_path`` is 108 bytes with the final NUL).
MAX_SOCKET_PATH = 107


def socket_tempdir(room: int) -> str:
    """The temporary folder, or /tmp when its path leaves fewer than ``room`` bytes for a socket's name."""
    base = tempfile.gettempdir()
    if len(os.fsencode(base)) + room > MAX_SOCKET_PATH and os.access("/tmp", os.W_OK):
        return "/tmp"
    return base
