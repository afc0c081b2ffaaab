"""Checks that need a real Redis: one connection and a fresh key prefix per check, dropped afterwards."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import redis

from .. import redisd
from . import Context, Outcome, register


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
