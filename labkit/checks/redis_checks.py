"""Helpers of the ex06 and ex07 checks: a real Redis per check (one connection and a fresh key
prefix, dropped afterwards), and workers run all at once."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from .. import redisd
from . import Context, Outcome, register

#: 2026-11-10 12:00:00 UTC: where the checks' clock starts (a whole minute, mid-month).
START = datetime(2026, 11, 10, 12, 0, tzinfo=UTC).timestamp()
#: A moment of the next month, for checks that span two months.
DECEMBER = datetime(2026, 12, 3, 9, 0, tzinfo=UTC).timestamp()


def redis_check(check_id: str, *, tag: str, start: float) -> Callable[[Callable[..., Any]], Callable[[Context], Any]]:
    """Register ``fn(ctx, r, prefix)`` as check ``check_id``; the check's clock starts at ``start``.

    A Redis that cannot be reached makes the check an ``error`` saying why, never a hang.
    """

    def deco(fn: Callable[..., Any]) -> Callable[[Context], Any]:
        @functools.wraps(fn)
        def run(ctx: Context) -> Any:
            try:
                r = redisd.connect()
            except redisd.RedisUnavailable as err:
                return Outcome("error", str(err))
            prefix = redisd.fresh_prefix(tag)
            ctx.clock.now = start
            try:
                return fn(ctx, r, prefix)
            finally:
                try:
                    redisd.drop_prefix(r, prefix)
                except redis.RedisError:
                    pass
                r.close()

        return register(check_id)(run)

    return deco


def concurrently(work: Callable[[int], None], workers: int = 8) -> list[str]:
    """Run ``work(i)`` for each i in range(workers), all at once in threads; the errors raised, in short."""
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            work(i)
        except Exception as err:  # noqa: BLE001 - reported by the check
            errors.append(f"{type(err).__name__}: {err}"[:200])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
