"""A grading run's settings: limits, the exercises, the child's environment and the grader key."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__, paths
from ..errors import GradingError, UnknownExerciseError
from .environ import clean_environ

GRADER_VERSION = "3"
OUTPUT_CAP_MB = 8  # per output file: stdout, stderr, anything the submission writes
TMP_MB = 64  # a learner's private /tmp (its copy, its home, everything it writes), in memory
MAX_SUBMISSION_MB = 50
PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Settings:
    """Everything a child needs, fixed before the first fork.

    ``key`` names what decides a result (grader, checks, cassettes, limits): a stored result
    with another key is graded again.
    """

    exercises: tuple[str, ...]
    timeout: float
    memory_mb: int
    check_limit: float
    root: Path
    hidden: tuple[Path, ...]
    env: dict[str, str]
    key: str
    sandboxed: bool = True
    tmp_mb: int = TMP_MB


def build(exercises: list[str] | None, timeout: float, memory_mb: int, sandboxed: bool = True) -> Settings:
    """Load the selected exercises' checks (a clear error if one cannot load) and fix the settings."""
    from ..checks import CHECKS_DIR, exercise_ids, get_exercise

    asked = [e.strip().lower() for e in exercises or []]
    twice = sorted({e for e in asked if asked.count(e) > 1})
    if twice:
        raise GradingError(f"--exercise {twice[0]} is given more than once: give each exercise once.")
    ids = tuple(asked or exercise_ids())
    for ex in ids:
        try:
            get_exercise(ex)
        except UnknownExerciseError as err:
            raise GradingError(str(err)) from None
        except Exception as err:  # noqa: BLE001 - a broken check module
            raise GradingError(f"The checks of {ex} cannot be loaded ({type(err).__name__}: {err}): fix "
                               f"labkit/checks/{ex}.py/.toml, or grade other exercises with --exercise.") from None
    ids = tuple(get_exercise(e).id for e in ids)
    root = paths.course_root()
    h = hashlib.sha256(f"{GRADER_VERSION}|{__version__}|{','.join(ids)}|{timeout}|{memory_mb}|{sandboxed}".encode())
    used = [CHECKS_DIR / "__init__.py", *sorted(PACKAGE.glob("*.py"))]
    for ex in ids:  # what decides this exercise's results: its checks and its cassettes
        used += [CHECKS_DIR / f"{ex}.py", CHECKS_DIR / f"{ex}.toml", *sorted(paths.cassette_dir().glob(f"{ex}*.json"))]
    for p in used:
        h.update(p.name.encode() + b"\0" + (p.read_bytes() if p.exists() else b""))
    env = clean_environ(os.environ) | {
        "LABKIT_MODE": "replay", "LABKIT_ROOT": str(root), "LABKIT_CASSETTES": str(paths.cassette_dir()),
        "LABKIT_NO_DOTENV": "1",  # an instructor's .env key must never reach learner code
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    hidden = tuple(dict.fromkeys([root / "solutions", PACKAGE.parent.parent / "solutions"]))
    models = os.environ.get("LABKIT_MODELS")
    if models and Path(models).is_file():  # an instructor's catalog decides results too
        h.update(b"LABKIT_MODELS\0" + Path(models).read_bytes())
    return Settings(ids, float(timeout), int(memory_mb), min(10.0, max(0.5, timeout / 3)), root, hidden, env,
                    h.hexdigest(), sandboxed)
