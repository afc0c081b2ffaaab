"""Property checks with hypothesis, reproducible for grading.

Grades must not change from run to run, so every property runs under one derandomized profile
(a fixed seed, no example database, no deadline) with a small, bounded number of examples. A
failing property becomes a failing check whose detail shows hypothesis's shrunk counter-example.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import HypothesisException

#: One profile for every check: reproducible, fast, no files written.
GRADING = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=40,
    suppress_health_check=list(HealthCheck),
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    print_blob=False,
)


class Counterexample(AssertionError):
    """A property failed; ``example`` is the shrunk input that shows it."""

    def __init__(self, message: str, example: str) -> None:
        super().__init__(message)
        self.example = example


def check_property(test: Callable[..., None], *, max_examples: int = 40, **strategies: Any) -> tuple[bool, str]:
    """Run ``test(**drawn)`` for drawn examples; ``(True, summary)`` or ``(False, counter-example)``.

    ``test`` raises ``AssertionError`` with a learner-readable message when the property fails.
    """
    from hypothesis import given

    failures: list[tuple[str, dict[str, Any]]] = []

    def probe(**drawn: Any) -> None:
        try:
            test(**drawn)
        except AssertionError as err:
            failures.append((str(err), drawn))
            raise

    runner = settings(GRADING, max_examples=max_examples)(given(**strategies)(probe))
    try:
        runner()
    except AssertionError:
        message, drawn = failures[-1]  # the last failure is hypothesis's shrunk example
        shown = ", ".join(f"{k}={v!r:.120}" for k, v in drawn.items())
        return False, f"{message} (smallest failing example: {shown})"
    except HypothesisException as err:
        return False, f"the property could not be checked ({type(err).__name__}): {err}"
    return True, f"held for {max_examples} generated examples"
