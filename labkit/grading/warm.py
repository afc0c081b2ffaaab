"""Warm the parent before the first fork: load and exercise everything a child needs, then freeze it."""

from __future__ import annotations

import contextlib
import gc
import io
import linecache
import os
import sys

from .redis_slots import RedisSlots
from .settings import Settings


def warm(s: Settings, slots: RedisSlots | None) -> None:
    """Grade the reference solutions in-process (so forked children start warm), then forget them.

    Nothing of the references may stay reachable by name (children must not find them), and
    ``gc.freeze()`` keeps children from copying the warm objects in their collections.
    """
    import ctypes  # noqa: F401 - loaded now for prctl in children (the audit hook forbids it later)

    import tqdm

    from .. import checks, tokens
    from ..course.models import FAST
    from ..modes import client

    tqdm.tqdm.monitor_interval = 0  # a solution's progress bar must not leave a monitor thread behind
    tokens.ensure_encodings()
    tokens.encoding_for(FAST).encode("warm up")
    with contextlib.suppress(ImportError):
        import labkit.faults  # noqa: F401 - loaded now, so children start with it (checks reach it via ctx.faults)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    old_redis = os.environ.get("REDIS_URL")
    if slots:
        os.environ["REDIS_URL"] = slots.url(0)
    try:
        for ex in s.exercises:
            spec = checks.get_exercise(ex)
            ref = s.root / "solutions" / f"{spec.file}.py"
            with contextlib.suppress(Exception):  # warming is best effort
                if ref.exists():
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        checks.run_checks(ex, ref, time_limit=s.check_limit)
                else:
                    client(ex, mode="replay")
    finally:
        sys.dont_write_bytecode = old
        if slots:
            if old_redis is None:
                os.environ.pop("REDIS_URL", None)
            else:
                os.environ["REDIS_URL"] = old_redis
            slots.wipe(0)
    _forget(s)
    gc.freeze()


def _forget(s: Settings) -> None:
    """Drop every module and cached line of the reference solutions, and collect them."""
    hidden = tuple(str(h) for h in s.hidden)
    gone = [name for name, module in list(sys.modules.items())
            if name.startswith("_labkit_learner_") or str(getattr(module, "__file__", "") or "").startswith(hidden)]
    for name in gone:
        del sys.modules[name]
    for folder in s.hidden:
        sys.path_importer_cache.pop(str(folder), None)
    linecache.clearcache()
    for _ in range(4):  # objects with finalizers can take more than one collection to go
        if not gc.collect():
            break
    left = [o for o in gc.get_objects()
            if type(o).__name__ == "function" and str(getattr(o.__code__, "co_filename", "")).startswith(hidden)]
    if left:
        print(f"labkit grade: warning: {len(left)} object(s) of the reference solutions stayed in memory", file=sys.stderr)
    del left
