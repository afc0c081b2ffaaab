"""Warm a zygote before its first fork: load and exercise everything a runner needs, with no answer in sight.

The zygote never holds a reference solution: it warms on the pristine starters (public: they
are what every learner started from) and on replay clients over every cassette. The reference
observations that differential checks compare against come from the reference job, graded in
a sandbox like any learner (:mod:`labkit.grading.supervise`), and are loaded afterwards.
"""

from __future__ import annotations

import contextlib
import gc
import io
import linecache
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..checks import Exercise


def warm(exercise_ids: tuple[str, ...], starters: Path | None, check_limit: float,
         unicode: Path | None = None) -> tuple[Exercise, ...]:
    """Import and exercise the checks of ``exercise_ids``; return their :class:`~labkit.checks.Exercise` objects.

    ``unicode``: a folder holding hypothesis's Unicode tables (:func:`unicode_tables`), read instead of
    built (built here, they take seconds)."""
    import tqdm

    from .. import checks, tokens
    from ..course.models import FAST
    from ..modes import client

    tqdm.tqdm.monitor_interval = 0  # a progress bar must not leave a monitor thread behind
    _platform()
    tokens.ensure_encodings()
    tokens.encoding_for(FAST).encode("warm up")
    with contextlib.suppress(ImportError):
        import labkit.faults  # noqa: F401 - checks reach it via ctx.faults
    exercises = tuple(checks.get_exercise(e) for e in exercise_ids)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        for ex in exercises:
            with contextlib.suppress(Exception):  # warming is best effort
                c = client(ex.id, mode="replay")
                for name in ("chat", "responses", "embeddings", "moderations", "batches", "files", "models"):
                    getattr(c, name, None)
                _ = c.chat.completions
            if starters is not None and (starters / f"{ex.file}.py").exists():
                with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    checks.run_checks(ex.id, starters, time_limit=check_limit)
    finally:
        sys.dont_write_bytecode = old
    _hypothesis(unicode)
    forget_learners()
    return exercises


def forget_references() -> None:
    """Drop any reference module or observation a warm-up loaded (without a sandbox, solutions/ is readable):
    observations come from the sandboxed reference job, and a learner must never reach a reference module."""
    from ..checks import differential

    differential._REFERENCE.clear()
    differential._CACHE.clear()


def _hypothesis(unicode: Path | None = None) -> None:
    """Run trivial property checks, so every module hypothesis loads lazily is loaded now (and known), and
    its Unicode tables are in memory: a learner's runner has a fresh, empty hypothesis folder, where building
    them again for ``st.characters(codec=...)`` takes over a second per learner. ``unicode``: a folder
    where hypothesis finds them already built (see :func:`unicode_tables`)."""
    with contextlib.suppress(Exception):
        from hypothesis import configuration, strategies

        from ..checks.props import check_property

        home = configuration.storage_directory(intent_to_write=False).home_directory
        configuration.set_hypothesis_home_dir(unicode or home)
        try:
            _unicode_tables()
        finally:
            configuration.set_hypothesis_home_dir(home)

        def holds(n: int, s: str) -> None:
            assert n == n and s == s

        check_property(holds, max_examples=3, n=strategies.integers(),
                       s=strategies.text(strategies.characters(codec="utf-8"), max_size=4))


def _unicode_tables() -> None:
    """Load (or build) hypothesis's Unicode tables: by category, and what UTF-8 encodes."""
    from hypothesis.internal import charmap

    charmap.charmap()
    charmap.categories()
    charmap.intervals_from_codec("utf-8")


def unicode_tables() -> dict[str, str]:
    """hypothesis's Unicode table files (path under its storage folder -> base64), for a slot to read
    instead of building them: built once per machine into ``~/.cache/labkit/hypothesis`` (in a child
    process, so this process's own hypothesis state is untouched); {} if they cannot be made."""
    import base64
    import subprocess
    import unicodedata

    import hypothesis

    from .environ import clean_environ

    folder = Path.home() / ".cache" / "labkit" / "hypothesis"
    done = folder / f"built-{hypothesis.__version__}-{unicodedata.unidata_version}"
    try:
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            code = "from labkit.grading.warm import _unicode_tables; _unicode_tables()"
            subprocess.run([sys.executable, "-c", code], env=clean_environ(os.environ) | {
                "HYPOTHESIS_STORAGE_DIRECTORY": str(folder)}, capture_output=True, timeout=300, check=True)
            done.touch()
        tables = folder / "unicode_data" / unicodedata.unidata_version
        return {p.relative_to(folder).as_posix(): base64.b64encode(p.read_bytes()).decode()
                for p in sorted(tables.glob("*.json.gz")) if p.is_file()}
    except (OSError, subprocess.SubprocessError):
        return {}


def _platform() -> None:
    """The SDK's platform headers run ``uname -p`` once (a subprocess, refused to learners): run it now, cached."""
    import platform

    platform.uname()
    platform.processor()
    with contextlib.suppress(Exception):
        from openai import _base_client

        _base_client.platform_headers("warm", platform=None)
        _base_client.get_platform()
        _base_client.get_architecture()


def forget_learners() -> None:
    """Drop every module a learner's (or a starter's, or a reference's) file was loaded as, and collect them."""
    forget_references()
    for name in [n for n in sys.modules if n.startswith("_labkit_learner_")]:
        del sys.modules[name]
    linecache.clearcache()
    for _ in range(4):  # objects with finalizers can take more than one collection to go
        if not gc.collect():
            break
