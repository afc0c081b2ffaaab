"""Clocks: a fake one for checks and tests, and the course's pinned date for notebooks.

Code that reads the time should take a ``clock`` (a callable returning epoch seconds) and a
``sleep`` so that checks move time instantly and saved notebook outputs never depend on the day
they were run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

#: The moment every notebook pretends it is (1 December 2026, 09:00 UTC, the date of the course's
#: model line-up): outputs that mention a month or a day say the same whenever they are rebuilt.
COURSE_NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()
#: Set to a date (YYYY-MM-DD) to make :func:`today` return it: saved outputs and tests pin it.
TODAY_ENV = "LABKIT_TODAY"


def course_date() -> date:
    """The day of :data:`COURSE_NOW`."""
    return datetime.fromtimestamp(COURSE_NOW, UTC).date()


def today() -> date:
    """The day model lifecycles are judged on: ``LABKIT_TODAY`` if set, else the real date.

    ``make test`` and the notebook builds pin it to :func:`course_date`, so a model that shuts
    down next month does not change a saved output; a learner's own runs use the real date.
    """
    pinned = os.environ.get(TODAY_ENV)
    if pinned:
        try:
            return date.fromisoformat(pinned)
        except ValueError:
            from .errors import ConfigError

            raise ConfigError(f"{TODAY_ENV}={pinned!r} is not a date: use YYYY-MM-DD, or unset it.") from None
    return date.today()


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

