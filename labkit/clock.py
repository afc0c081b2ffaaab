"""Clocks: a fake one for checks and tests, and the course's pinned date for notebooks.

Code that reads the time should take a ``clock`` (a callable returning epoch seconds) and a
``sleep`` so that checks move time instantly and saved notebook outputs never depend on the day
they were run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

#: The date every notebook pretends it is (10 November 2026, 09:00 UTC): outputs that mention a
#: month or a day say the same thing whenever the notebooks are rebuilt or re-run.
COURSE_NOW = datetime(2026, 11, 10, 9, 0, tzinfo=timezone.utc).timestamp()


def course_clock() -> float:
    """The course's pinned time (:data:`COURSE_NOW`); pass ``clock=course_clock`` in notebooks."""
    return COURSE_NOW


@dataclass
class Clock:
    """An injectable clock: ``sleep`` advances time instantly and records each wait."""

    now: float = 1_000.0
    sleeps: list[float] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(float(seconds))
        self.now += max(0.0, float(seconds))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a wait."""
        self.now += seconds

