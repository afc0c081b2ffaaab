"""What a learner meets: hint order and marks, progress counted as `labkit check` counts, the
exercise-to-lesson map, a quiet `make setup` and JupyterLab without the news prompt."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from labkit.checks import exercise_ids, get_exercise

ROOT = Path(__file__).resolve().parent.parent
LABKIT = [sys.executable, "-m", "labkit.cli"]


def labkit(*args: str, folder: Path, state: Path) -> subprocess.CompletedProcess[str]:
    """Run the command on a learner folder with its own progress file, wide enough not to wrap."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LABKIT_MODE"))}
    env.update(LABKIT_EXERCISES=str(folder), LABKIT_STATE=str(state), COLUMNS="200")
    return subprocess.run([*LABKIT, *args], check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def one_check_broken(folder: Path) -> tuple[str, str]:
    """Write ex01's solution with one mutant applied; return (metric that passes, metric that fails).

    The failing check comes after the passing one in the exercise's own order, so a hint that
    lists failures first has to move it up.
    """
    ex = get_exercise("ex01")
    visible = [s for s in ex.checks if not s.hidden and s.points]
    first, later = visible[0], visible[1:]
    mutants = tomllib.loads((ROOT / "tests" / "mutants" / "ex01.toml").read_text(encoding="utf-8"))["mutant"]
    mutant = next(m for m in reversed(mutants) for s in later if f"ex01.{m['check']}" == s.id)
    broken = next(s for s in later if s.id == f"ex01.{mutant['check']}")
    text = (ROOT / "solutions" / f"{ex.file}.py").read_text(encoding="utf-8")
    for find, replace in mutant["replace"]:
        text = text.replace(find, replace)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ex.file}.py").write_text(text, encoding="utf-8")
    return first.metric, broken.metric


def test_hint_lists_the_failing_check_first_with_its_mark(tmp_path: Path) -> None:
    folder, state = tmp_path / "exercises", tmp_path / "state"
    passing, failing = one_check_broken(folder)

    before = labkit("hint", "ex01", folder=folder, state=state)
    assert before.returncode == 0 and "No run of ex01 to go on yet" in before.stdout
    assert before.stdout.index(passing) < before.stdout.index(failing)  # the exercise's own order

    assert labkit("check", "ex01", folder=folder, state=state).returncode == 1
    after = labkit("hint", "ex01", folder=folder, state=state).stdout
    lines = after.splitlines()
    fail_line = next(i for i, line in enumerate(lines) if failing in line)
    pass_line = next(i for i, line in enumerate(lines) if passing in line)
    assert fail_line < pass_line, after
    assert lines[fail_line].startswith("✗") and lines[pass_line].startswith("✓"), after
    assert "failing checks first" in after and "No run" not in after


def test_progress_counts_what_check_counts(tmp_path: Path) -> None:
    folder, state = tmp_path / "exercises", tmp_path / "state"
    one_check_broken(folder)
    checked = labkit("check", "ex01", folder=folder, state=state).stdout
    score, most = re.search(r"\((\d+)/(\d+) points\)", checked).groups()  # type: ignore[union-attr]
    report = json.loads(labkit("check", "ex01", "--json", folder=folder, state=state).stdout)
    visible = [r for r in report["results"] if not r["hidden"]]
    passed = sum(r["status"] == "pass" for r in visible)

    shown = labkit("progress", folder=folder, state=state).stdout
    row = next(line for line in shown.splitlines() if line.lstrip().startswith("ex01"))
    assert f"{score}/{most}" in row and f"{passed}/{len(visible)}" in row and "in progress" in row, shown
    assert f"Your progress: {score}/" in shown


def test_every_exercise_says_which_part_of_the_lesson_it_is() -> None:
    lessons = {i: get_exercise(i).lesson for i in exercise_ids()}
    assert all(lessons.values()), lessons
    assert lessons["ex02"].startswith("Exercise 1")
    assert lessons["ex03"].startswith("Exercise 2")
    assert lessons["ex06"].startswith("Exercise 3")


def test_pyproject_license_is_an_spdx_string() -> None:
    """The TOML-table form makes setuptools print a 13-line deprecation warning on every install."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["license"] == "MIT"
    assert any(r.startswith("setuptools>=") and int(r.split(">=")[1].split(".")[0]) >= 77
               for r in data["build-system"]["requires"])


def test_jupyterlab_overrides_switch_off_the_news_prompt() -> None:
    """The key exists in the installed JupyterLab's schema, and `make setup` installs the file where it reads it."""
    overrides = json.loads((ROOT / ".jupyter" / "lab" / "settings" / "overrides.json").read_text(encoding="utf-8"))
    plugin = "@jupyterlab/apputils-extension:notification"
    assert overrides[plugin]["fetchNews"] == "false"
    schema_file = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas" / "@jupyterlab" / "apputils-extension" / "notification.json"
    if not schema_file.exists():
        pytest.skip("JupyterLab is not installed in this environment")
    props = json.loads(schema_file.read_text(encoding="utf-8"))["properties"]
    assert set(overrides[plugin]) <= set(props)
    assert "false" in {c["const"] for c in props["fetchNews"]["oneOf"]}
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "share/jupyter/lab/settings/overrides.d/" in makefile and ".jupyter/lab/settings/overrides.json" in makefile
