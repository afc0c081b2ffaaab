"""Meta-tests: every check can fail, solutions pass every check, starters fail every graded check.

A mutant is the reference solution with one deliberate mistake that must make its check fail.
Two forms: ``tests/mutants/<exercise>.toml`` (find/replace pairs on the solution, with a "why"),
or a whole file ``tests/mutants/<exercise>/<check-suffix>.py``. A new check cannot land without one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from labkit.checks import exercise_ids, get_exercise, run_checks
from labkit.paths import exercises_dir

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = Path(__file__).resolve().parent / "mutants"
ALL_CHECKS = [(ex, spec.id) for ex in exercise_ids() for spec in get_exercise(ex).checks]


def toml_mutants(exercise: str) -> dict[str, dict[str, object]]:
    path = MUTANTS / f"{exercise}.toml"
    if not path.exists():
        return {}
    return {m["check"]: m for m in tomllib.loads(path.read_text())["mutant"]}


def materialize(exercise: str, suffix: str, tmp: Path) -> Path | None:
    """The mutant as a file named like the learner's, or None if there is none."""
    whole = MUTANTS / exercise / f"{suffix}.py"
    if whole.exists():
        return whole
    spec = toml_mutants(exercise).get(suffix)
    if spec is None:
        return None
    ex = get_exercise(exercise)
    source = (ROOT / "solutions" / f"{ex.file}.py").read_text()
    for find, replace in spec["replace"]:  # type: ignore[union-attr]
        assert find in source, f"mutant {exercise}/{suffix}: {find!r} no longer occurs in the solution; update the mutant"
        source = source.replace(find, replace, 1)
    out = tmp / f"{ex.file}.py"
    out.write_text(source)
    return out


@pytest.fixture(scope="module")
def solution_reports() -> dict[str, object]:
    return {ex: run_checks(ex, ROOT / "solutions") for ex in exercise_ids()}


@pytest.mark.parametrize("exercise", exercise_ids())
def test_solution_passes_every_check(exercise: str, solution_reports: dict[str, object]) -> None:
    report = solution_reports[exercise]
    failing = [(r.id, r.status, r.detail) for r in report.results if r.status != "pass"]  # type: ignore[attr-defined]
    assert not failing, f"solutions/{get_exercise(exercise).file}.py fails: {failing}"


@pytest.mark.parametrize("exercise", exercise_ids())
def test_starter_fails_every_graded_check(exercise: str) -> None:
    report = run_checks(exercise, exercises_dir())  # pristine starters (see conftest.py)
    passing = [r.id for r in report.results if r.points > 0 and r.status == "pass"]
    assert not passing, f"the starter already passes {passing}: those checks cannot tell work from no work"
    assert report.score == 0


@pytest.mark.parametrize(("exercise", "check_id"), ALL_CHECKS)
def test_mutant_fails_its_check(exercise: str, check_id: str, tmp_path: Path) -> None:
    suffix = check_id.split(".", 1)[1]
    mutant = materialize(exercise, suffix, tmp_path)
    assert mutant, f"no mutant for {check_id}: add it to tests/mutants/{exercise}.toml (the solution with one mistake)"
    report = run_checks(exercise, mutant)
    result = next(r for r in report.results if r.id == check_id)
    assert result.status == "fail", f"mutant {exercise}/{suffix} should fail {check_id} but got {result.status}: {result.detail}"


def test_every_mutant_belongs_to_a_check() -> None:
    known = {(ex, cid.split(".", 1)[1]) for ex, cid in ALL_CHECKS}
    stray = [str(p) for p in MUTANTS.glob("*/*.py") if (p.parent.name, p.stem) not in known]
    stray += [f"{p.stem}.toml:{c}" for p in MUTANTS.glob("*.toml") for c in toml_mutants(p.stem) if (p.stem, c) not in known]
    assert not stray, f"mutants with no check of that id: {stray}"
