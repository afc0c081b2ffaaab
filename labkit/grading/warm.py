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
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..checks import Exercise


def warm(exercise_ids: tuple[str, ...], starters: Path | None, check_limit: float) -> tuple[Exercise, ...]:
    """Import and exercise the checks of ``exercise_ids``; return their :class:`~labkit.checks.Exercise` objects."""
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
    _hypothesis()
    forget_learners()
    return exercises


def forget_references() -> None:
    """Drop any reference module or observation a warm-up loaded (without a sandbox, solutions/ is readable):
    observations come from the sandboxed reference job, and a learner must never reach a reference module."""
    from ..checks import differential

    differential._REFERENCE.clear()
    differential._CACHE.clear()


def _hypothesis() -> None:
    """Run one trivial property check, so every module hypothesis loads lazily is loaded now (and known)."""
    with contextlib.suppress(Exception):
        from hypothesis import strategies

        from ..checks.props import check_property

        def holds(n: int) -> None:
            assert n == n

        check_property(holds, max_examples=3, n=strategies.integers())


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
