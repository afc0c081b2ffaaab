"""Starters are generated from solutions: markers, fingerprints, and a learner's edits kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labkit import starters
from labkit.errors import StarterError

SOLUTION = '''"""Exercise 99."""

MODEL = "m"
### BEGIN SOLUTION
### TODO: write the system message
### STARTER: SYSTEM = ""
SYSTEM = "be brief"
### END SOLUTION

### BEGIN SOLUTION
_HELPER = 1
### END SOLUTION


def answer(x: int) -> list[int]:
    """Two of x."""
    ### BEGIN SOLUTION: return two of x
    ### TODO: a list of two items
    return [x, x]
    ### END SOLUTION
'''


def test_markers_become_todos_starter_lines_and_raises() -> None:
    text = starters.generate(SOLUTION, "solutions/ex99.py")
    assert '# TODO: write the system message\nSYSTEM = ""\n' in text
    assert "_HELPER" not in text and "be brief" not in text and "[x, x]" not in text
    assert '    # TODO: a list of two items\n    raise NotImplementedError("return two of x")\n' in text
    assert "###" not in text
    compile(text, "starter", "exec")  # the starter is valid Python
    assert text.rstrip().splitlines()[-1].startswith("# labkit starter ")


def test_fingerprint_tells_pristine_from_edited() -> None:
    text = starters.generate(SOLUTION, "solutions/ex99.py")
    assert starters.is_pristine(text)
    assert not starters.is_pristine(text.replace('raise NotImplementedError("return two of x")', "return [x]"))
    assert not starters.is_pristine("print('hand written')\n")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1\n", "has no END SOLUTION"),
        ("x = 1\n### END SOLUTION\n", "outside a BEGIN/END SOLUTION block"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the block opened on line 1"),
    ],
)
def test_malformed_markers_name_the_line(source: str, message: str) -> None:
    with pytest.raises(StarterError, match=message):
        starters.generate(source, "solutions/bad.py")


def test_build_keeps_a_learners_edits_unless_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sols = tmp_path / "solutions"
    sols.mkdir()
    (sols / "ex99_demo.py").write_text(SOLUTION)
    monkeypatch.setenv("LABKIT_ROOT", str(tmp_path))
    out = tmp_path / "exercises"
    assert [o.action for o in starters.build(into=out)] == ["written"]
    assert [o.action for o in starters.build(into=out)] == ["unchanged"]
    mine = out / "ex99_demo.py"
    mine.write_text(mine.read_text().replace('raise NotImplementedError("return two of x")', "return [x, x]"))
    kept = starters.build(into=out)
    assert [o.action for o in kept] == ["kept"] and "--force" in kept[0].note
    assert "return [x, x]" in mine.read_text()
    (sols / "ex99_demo.py").write_text(SOLUTION.replace("be brief", "be briefer"))
    assert [o.action for o in starters.build(into=out, force=True)] == ["updated"]
    assert starters.is_pristine(mine.read_text())


def test_check_reports_stale_and_ignores_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "ex99_demo.py").write_text(SOLUTION)
    monkeypatch.setenv("LABKIT_ROOT", str(tmp_path))
    starters.build(into=tmp_path / "exercises")
    assert [o.action for o in starters.check()] == ["unchanged"]
    (tmp_path / "solutions" / "ex99_demo.py").write_text(SOLUTION.replace("[x, x]", "[x, x, x]"))
    assert [o.action for o in starters.check()] == ["unchanged"]  # solution-only code: same starter
    (tmp_path / "solutions" / "ex99_demo.py").write_text(SOLUTION.replace("a list of two items", "two items"))
    assert [o.action for o in starters.check()] == ["stale"]
    mine = tmp_path / "exercises" / "ex99_demo.py"
    mine.write_text(mine.read_text() + "x = 1\n")
    assert [o.action for o in starters.check()] == ["kept"]


def test_cli_check_passes_on_the_committed_starters(root: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "labkit.cli", "exercises", "build", "--check"], cwd=root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
