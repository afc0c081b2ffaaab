"""labkit: run the OpenAI API workbook offline, check exercises, grade a class.

Everything here loads on first use, so ``import labkit`` stays fast (the SDK, the tokenizer
and the checks are imported only when something needs them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import CassetteError, LabkitError

__all__ = [
    "CassetteError",
    "LabkitError",
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
    from . import notebook
    from .checks import check
    from .costs import cost
    from .lint import lint_request
    from .modes import banner, client, current_mode, provenance, transport_of
    from .replay import ReplayMiss
    from .tokens import count_tokens

#: public name -> the module that defines it (imported on first use)
_LAZY = {
    "banner": ".modes",
    "client": ".modes",
    "current_mode": ".modes",
    "provenance": ".modes",
    "transport_of": ".modes",
    "ReplayMiss": ".replay",
    "cost": ".costs",
    "lint_request": ".lint",
    "count_tokens": ".tokens",
    "check": ".checks",
}


def __getattr__(name: str) -> Any:
    if name == "notebook":
        return importlib.import_module(".notebook", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
