"""One error hierarchy: every error labkit raises on purpose is a :class:`LabkitError`.

Each message says what happened and what to do. Subclasses also derive from the built-in
exception a caller would expect (an unknown exercise is a ``LookupError``, a malformed file a
``ValueError``), so ordinary ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "CassetteError",
    "CatalogError",
    "ConfigError",
    "EnvironmentProblem",
    "GradingError",
    "LabkitError",
    "ModeError",
    "StarterError",
    "UnknownExerciseError",
]


class LabkitError(Exception):
    """Base of every error labkit raises on purpose; the message says what to do."""


class ConfigError(LabkitError, ValueError):
    """A setting or a file the user gave is malformed (a model catalog, a ``.env``, an option)."""


class CatalogError(ConfigError):
    """A model catalog file is missing or malformed."""


class CassetteError(ConfigError):
    """A cassette file is missing, unreadable or malformed."""


class ModeError(LabkitError, RuntimeError):
    """The requested mode (replay, live, record) cannot run here, for example live with no key."""


class EnvironmentProblem(LabkitError, RuntimeError):
    """This machine lacks something the course needs (a tokenizer file, a Redis server, a tool).

    Never the learner's fault: graders report it as a course problem, not a wrong answer.
    """


class UnknownExerciseError(LabkitError, LookupError):
    """No exercise has that id."""


class GradingError(LabkitError):
    """A grading run cannot start or cannot be trusted; the message says what to fix."""


class StarterError(LabkitError):
    """A solution's solution markers are malformed, or a starter cannot be written safely."""
