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


def toml_mutants(exercise: str) -> list[dict[str, object]]:
    """Every mutant of an exercise, in file order (several may target one check)."""
    path = MUTANTS / f"{exercise}.toml"
    if not path.exists():
        return []
    return list(tomllib.loads(path.read_text())["mutant"])


ALL_MUTANTS = [(ex, str(m["check"]), i) for ex in exercise_ids() for i, m in enumerate(toml_mutants(ex))]


def materialize(exercise: str, index: int, tmp: Path) -> Path:
    """The exercise's ``index``-th TOML mutant as a file named like the learner's."""
    spec = toml_mutants(exercise)[index]
    ex = get_exercise(exercise)
    source = (ROOT / "solutions" / f"{ex.file}.py").read_text()
    for find, replace in spec["replace"]:  # type: ignore[attr-defined]
        assert find in source, f"mutant {exercise}#{index} ({spec['check']}): {find!r} no longer occurs in the solution; update it"
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
def test_every_check_has_a_mutant(exercise: str, check_id: str) -> None:
    suffix = check_id.split(".", 1)[1]
    whole = (MUTANTS / exercise / f"{suffix}.py").exists()
    assert whole or any(m["check"] == suffix for m in toml_mutants(exercise)), (
        f"no mutant for {check_id}: add one to tests/mutants/{exercise}.toml (the solution with one mistake)")


@pytest.mark.parametrize(("exercise", "check", "index"), ALL_MUTANTS, ids=[f"{e}-{c}-{i}" for e, c, i in ALL_MUTANTS])
def test_mutant_fails_its_check(exercise: str, check: str, index: int, tmp_path: Path) -> None:
    spec = toml_mutants(exercise)[index]
    report = run_checks(exercise, materialize(exercise, index, tmp_path))
    result = next(r for r in report.results if r.id == f"{exercise}.{check}")
    assert result.status == "fail", f"mutant {exercise}#{index} ({spec.get('why', '')}) should fail {result.id} but got {result.status}: {result.detail}"
    expect = spec.get("expect")
    if expect:  # the mutant is caught for the stated reason, not by accident
        assert str(expect).lower() in result.detail.lower(), f"{result.id} failed for another reason: {result.detail}"


@pytest.mark.parametrize("path", sorted(MUTANTS.glob("*/*.py")), ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_whole_file_mutant_fails_its_check(path: Path) -> None:
    report = run_checks(path.parent.name, path)
    result = next(r for r in report.results if r.id == f"{path.parent.name}.{path.stem}")
    assert result.status == "fail", f"{path} should fail {result.id} but got {result.status}: {result.detail}"


def test_every_mutant_belongs_to_a_check() -> None:
    known = {(ex, cid.split(".", 1)[1]) for ex, cid in ALL_CHECKS}
    stray = [str(p) for p in MUTANTS.glob("*/*.py") if (p.parent.name, p.stem) not in known]
    stray += [f"{ex}.toml:{c}" for ex, c, _ in ALL_MUTANTS if (ex, c) not in known]
    assert not stray, f"mutants with no check of that id: {stray}"
