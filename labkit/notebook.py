"""Helpers every notebook uses: the opening banner, live-cost estimate and the learner's module."""

from __future__ import annotations

import ast
import json
import re
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
            if re.match(r'\{\s*"id"\s*:\s*"batch_req_', text):  # a batch's output file: each line at batch prices
                usd += _batch_output_cost(text)
                continue
            if text.startswith("{"):
                data = json.loads(text)
                if data.get("object") == "batch":  # its usage is its output file's, counted there
                    continue
            else:  # a stream: the usage rides on the last event that has one
                events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
                data = next((e.get("response", e) for e in reversed(events) if e.get("usage") or (e.get("response") or {}).get("usage")), {})
            if data.get("usage") and data.get("model"):
                try:
                    usd += cost(data["usage"], data["model"]).total_usd
                except UnknownModelError:
                    pass
    return n, usd


def _batch_output_cost(text: str) -> float:
    """What the answered lines of a Batch API output file cost, at batch prices."""
    from .catalog import UnknownModelError
    from .costs import cost

    usd = 0.0
    for line in text.splitlines():
        body = ((json.loads(line) if line.strip() else {}).get("response") or {}).get("body") or {}
        if body.get("usage") and body.get("model"):
            try:
                usd += cost(body["usage"], body["model"], tier="batch").total_usd
            except UnknownModelError:
                pass
    return usd


def notebook_cassettes(folder: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Each notebook's own cassettes: the names its ``labkit.notebook.intro(...)`` call lists.

    Read from the notebooks' sources (``notebooks/src/NN_*.py``, else the ``.ipynb`` files), so
    cassettes only the tests or the checks use (selftest, hidden-check variants) never count.
    """
    base = folder or paths.course_root() / "notebooks"
    src = base / "src"
    found: dict[str, tuple[str, ...]] = {}
    files = sorted(src.glob("[0-9][0-9]_*.py")) if src.is_dir() else sorted(base.glob("[0-9][0-9]_*.ipynb"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            cells = json.loads(text).get("cells", [])
            text = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("notebook.intro"):
                names = tuple(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
                found[path.stem] = found.get(path.stem, ()) + names
    return found


def course_live_cost(folder: Path | None = None) -> list[tuple[str, int, float]]:
    """``(notebook, requests, USD)`` for every notebook with cassettes of its own (see :func:`notebook_cassettes`)."""
    return [(name, *live_cost(*names)) for name, names in notebook_cassettes(folder).items() if names]


def intro(*cassettes: str) -> None:
    """Print the mode banner and what running this notebook live would cost.

    ``cassettes`` are the notebook's own recordings (the ones it answers from); notebook 00's
    course total adds up exactly these, notebook by notebook.
    """
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
