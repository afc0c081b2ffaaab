"""Differential checks: the same scenario through the learner's code and the reference.

A scenario is a function ``(module) -> observation``: it drives one exercise module (the
learner's or the reference solution) through a scripted situation and returns what can be
observed from outside as plain JSON data (requests sent, waits, the exception raised, rows in a
database, keys in Redis). The check compares the two observations and names the first
difference. Observations of the reference are computed once per process and cached; the grader
computes them before it runs any learner code (:func:`precompute`), so a graded child never
needs to read ``solutions/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import paths

Observation = Any
Scenario = Callable[[ModuleType], Observation]

_CACHE: dict[tuple[str, str], str] = {}
_REFERENCE: dict[str, ModuleType] = {}


def reference_module(exercise_id: str, file_stem: str) -> ModuleType:
    """The reference solution of an exercise, loaded once per process."""
    from . import load_learner_module

    if exercise_id not in _REFERENCE:
        _REFERENCE[exercise_id] = load_learner_module(paths.solutions_dir() / f"{file_stem}.py")
    return _REFERENCE[exercise_id]


def observe(module: ModuleType, scenario: Scenario) -> Observation:
    """Run a scenario and return its observation as canonical JSON data (exceptions observed too)."""
    try:
        seen = scenario(module)
    except Exception as err:  # noqa: BLE001 - an exception is an observation
        seen = {"raised": type(err).__name__}
    return json.loads(json.dumps(seen, sort_keys=True, default=str))


def reference_observation(exercise_id: str, file_stem: str, name: str, scenario: Scenario) -> Observation:
    """What the reference solution shows in this scenario (cached; precomputed under the grader)."""
    key = (exercise_id, name)
    if key not in _CACHE:
        _CACHE[key] = json.dumps(observe(reference_module(exercise_id, file_stem), scenario), sort_keys=True)
    return json.loads(_CACHE[key])


def first_difference(mine: Observation, ref: Observation, where: str = "") -> str | None:
    """A short description of the first place two observations differ, or None if equal."""
    if isinstance(mine, dict) and isinstance(ref, dict):
        for key in sorted(set(mine) | set(ref), key=str):
            if key not in mine:
                return f"{where}{key}: missing (the reference has {_short(ref[key])})"
            if key not in ref:
                return f"{where}{key}: unexpected {_short(mine[key])}"
            found = first_difference(mine[key], ref[key], f"{where}{key}.")
            if found:
                return found
        return None
    if isinstance(mine, list) and isinstance(ref, list):
        for i, (a, b) in enumerate(zip(mine, ref)):
            found = first_difference(a, b, f"{where}[{i}].")
            if found:
                return found
        if len(mine) != len(ref):
            return f"{where.rstrip('.') or 'list'}: {len(mine)} item(s), the reference has {len(ref)}"
        return None
    if mine != ref:
        return f"{where.rstrip('.') or 'value'}: yours {_short(mine)}, the reference {_short(ref)}"
    return None


def _short(value: Any, width: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def snapshot() -> dict[str, str]:
    """The cached reference observations, to hand to a graded child process."""
    return {f"{ex}\x1f{name}": value for (ex, name), value in _CACHE.items()}


def restore(data: dict[str, str]) -> None:
    """Load reference observations computed by the grader's parent process."""
    for key, value in data.items():
        ex, _, name = key.partition("\x1f")
        _CACHE[(ex, name)] = value


def precompute(exercise_id: str, folder: Path | None = None) -> None:
    """Grade the reference once, so every differential scenario's observation is cached."""
    from . import run_checks

    run_checks(exercise_id, folder or paths.solutions_dir())
