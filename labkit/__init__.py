"""labkit: run the OpenAI API workbook offline, check exercises, grade a class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import banner, client, current_mode, provenance, transport_of
from .replay import CassetteError, ReplayMiss

__all__ = [
    "CassetteError",
    "ReplayMiss",
    "banner",
    "check",
    "client",
    "cost",
    "count_tokens",
    "current_mode",
    "lint_request",
    "notebook",
    "provenance",
    "transport_of",
]
__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from .costs import cost
    from .lint import lint_request
    from .tokens import count_tokens


def __getattr__(name: str) -> Any:
    """Import the heavier helpers on first use, so ``import labkit`` stays fast."""
    if name == "cost":
        from .costs import cost

        return cost
    if name == "lint_request":
        from .lint import lint_request

        return lint_request
    if name == "count_tokens":
        from .tokens import count_tokens

        return count_tokens
    if name == "notebook":
        import importlib

        return importlib.import_module(".notebook", __name__)
    if name == "check":
        from .checks import check

        return check
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
