"""Helpers every notebook uses: the opening banner, live-cost estimate and the learner's module."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from . import paths
from .modes import banner
from .replay import load_cassette, resolve_cassette


def live_cost(*cassettes: str) -> tuple[int, float]:
    """Requests and USD a live run of these cassettes' requests would cost at catalog prices."""
    from .catalog import UnknownModelError
    from .costs import cost

    n, usd = 0, 0.0
    for name in cassettes:
        for inter in load_cassette(resolve_cassette(name)).interactions:
            n += 1
            if inter.status != 200 or not inter.content:
                continue
            text = inter.content.decode("utf-8", "replace")
            if text.startswith("{"):
                data = json.loads(text)
            else:  # a stream: the usage rides on the last event that has one
                events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
                data = next((e.get("response", e) for e in reversed(events) if e.get("usage") or (e.get("response") or {}).get("usage")), {})
            if data.get("usage") and data.get("model"):
                try:
                    usd += cost(data["usage"], data["model"]).total_usd
                except UnknownModelError:
                    pass
    return n, usd


def intro(*cassettes: str) -> None:
    """Print the mode banner and what running this notebook live would cost."""
    print(banner())
    if cassettes:
        n, usd = live_cost(*cassettes)
        print(f"Running this notebook live sends about {n} requests, roughly ${usd:.4f} at the catalog's prices.")


def exercise(exercise_id: str, folder: Path | None = None) -> ModuleType:
    """Your exercise module, freshly loaded from exercises/ (so edits show without restarting)."""
    from .checks import get_exercise, load_learner_module

    ex = get_exercise(exercise_id)
    return load_learner_module((folder or paths.exercises_dir()) / f"{ex.file}.py")


def solution(exercise_id: str) -> ModuleType:
    """The reference solution (for comparison after you have tried)."""
    return exercise(exercise_id, paths.solutions_dir())


def data_path(name: str) -> Path:
    return paths.data_dir() / name
