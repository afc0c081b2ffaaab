"""Valid alternative solutions, written in another style, must score full marks.

``tests/alternatives/exNN/<name>/<exercise file>.py``: a correct solution that differs from the
reference (classes instead of functions, tenacity instead of a loop, the Responses API, other
wording). A check that fails one of them is a bug in the course.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.checks import get_exercise, run_checks

ALTERNATIVES = Path(__file__).resolve().parent / "alternatives"
CASES = sorted((p.parent.parent.name, p.parent) for p in ALTERNATIVES.glob("ex*/*/ex*.py"))


@pytest.mark.parametrize(("exercise", "folder"), CASES, ids=[f"{e}-{f.name}" for e, f in CASES])
def test_alternative_scores_full_marks(exercise: str, folder: Path) -> None:
    report = run_checks(exercise, folder)
    wrong = [(r.id, r.status, r.detail) for r in report.results if r.status != "pass"]
    assert not wrong, f"{exercise} alternative {folder.name!r} is a valid solution but fails: {wrong}"


def test_alternatives_are_named_like_the_exercise() -> None:
    for exercise, folder in CASES:
        assert (folder / f"{get_exercise(exercise).file}.py").exists(), folder
