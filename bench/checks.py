"""How good and how fast are the checks? Mutation score and check time, per exercise.

Mutants come from a real tool, cosmic-ray's mutation operators (a curated subset: arithmetic
and comparison swaps at the boundary, boolean and number changes, removed loops and decorators,
swapped exception types). Only code inside the solution's ``### BEGIN/END SOLUTION`` blocks is
mutated: that is the code a learner writes. Each mutant of ``solutions/exNN_*.py`` is written to
a temporary folder and graded in a forked copy of this warmed process with every check, hidden
ones included; it is *killed* when any check fails, errors or times out. Mutants known to be
equivalent (no observable change) are listed in ``bench/equivalent_mutants.toml`` with a reason,
and reported apart, never silently dropped.

Check time (median of 3): ``labkit check exNN --from solutions`` in a fresh process with no check
server (the first run of the day), the same served by a warm check server (every later run;
``labkit.checkserver``), and a re-check in a warm process (what ``labkit watch`` and a notebook do).

Usage: ``python bench/checks.py [--exercise ex03 ...] [--survivors] [--no-mutants] [--jobs 2]``.
Prints readable lines, then one JSON line last.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.pop("OPENAI_API_KEY", None)
os.environ["LABKIT_ROOT"] = str(ROOT)
os.environ.setdefault("LABKIT_STATE", tempfile.mkdtemp(prefix="labkit-bench-state-"))

#: cosmic-ray operators used (the full set has 13 replacements for every binary operator).
OPERATORS = [
    "core/AddNot", "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd", "core/ReplaceTrueWithFalse",
    "core/ReplaceFalseWithTrue", "core/NumberReplacer", "core/ZeroIterationForLoop",
    "core/ReplaceBreakWithContinue", "core/ReplaceContinueWithBreak", "core/ExceptionReplacer",
    "core/RemoveDecorator", "core/ReplaceUnaryOperator_USub_UAdd",
    "core/ReplaceBinaryOperator_Add_Sub", "core/ReplaceBinaryOperator_Sub_Add",
    "core/ReplaceBinaryOperator_Mul_Div", "core/ReplaceBinaryOperator_Div_Mul",
    "core/ReplaceBinaryOperator_FloorDiv_Div", "core/ReplaceBinaryOperator_Mod_FloorDiv",
    "core/ReplaceBinaryOperator_Pow_Mul",
    "core/ReplaceComparisonOperator_Lt_LtE", "core/ReplaceComparisonOperator_LtE_Lt",
    "core/ReplaceComparisonOperator_Gt_GtE", "core/ReplaceComparisonOperator_GtE_Gt",
    "core/ReplaceComparisonOperator_Eq_NotEq", "core/ReplaceComparisonOperator_NotEq_Eq",
    "core/ReplaceComparisonOperator_Is_IsNot", "core/ReplaceComparisonOperator_IsNot_Is",
]
MUTANT_TIMEOUT_S = 30.0
EQUIVALENT = Path(__file__).with_name("equivalent_mutants.toml")


@dataclass(frozen=True)
class Mutant:
    exercise: str
    operator: str
    occurrence: int
    line: int
    source: str
    diff: str


def solution_lines(text: str) -> set[int]:
    """Line numbers inside SOLUTION blocks (the marker lines excluded)."""
    inside, lines = False, set()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("### BEGIN SOLUTION"):
            inside = True
        elif stripped.startswith("### END SOLUTION"):
            inside = False
        elif inside and not stripped.startswith("###"):
            lines.add(number)
    return lines


def mutants_of(exercise: str, path: Path) -> list[Mutant]:
    """Every mutant of the solution's learner-written code, by cosmic-ray's operators."""
    import difflib

    import cosmic_ray.plugins
    from cosmic_ray.ast import ast_nodes, get_ast
    from cosmic_ray.mutating import mutate_code

    text = path.read_text(encoding="utf-8")
    allowed = solution_lines(text)
    tree = get_ast(text)
    nodes = list(ast_nodes(tree))
    found = []
    for name in OPERATORS:
        operator = cosmic_ray.plugins.get_operator(name)()
        positions = [start for node in nodes for start, _end in operator.mutation_positions(node)]
        for occurrence, (line, _col) in enumerate(positions):
            if line not in allowed:
                continue
            try:
                mutated = mutate_code(text, operator, occurrence)
            except AttributeError:  # cosmic-ray 8.7's ExceptionReplacer cannot rewrite dotted names in a tuple
                continue
            if mutated is None or mutated == text:
                continue
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            diff = "".join(
                d for d in difflib.unified_diff(text.splitlines(True), mutated.splitlines(True), n=0)
                if d.startswith(("-", "+")) and not d.startswith(("---", "+++"))
            )
            found.append(Mutant(exercise, name, occurrence, line, mutated, diff.strip()))
    return found


def equivalents() -> list[dict[str, object]]:
    """The listed equivalent mutants: exercise, operator, line, why, and optionally ``mutated``
    (text found in the mutated line, to single out one of several mutants on that line)."""
    if not EQUIVALENT.exists():
        return []
    return list(tomllib.loads(EQUIVALENT.read_text(encoding="utf-8")).get("mutant", []))


def listed_as(m: Mutant, entries: list[dict[str, object]]) -> dict[str, object] | None:
    """The equivalence entry that names this mutant, if any."""
    added = [line[1:].strip() for line in m.diff.splitlines() if line.startswith("+")]
    for e in entries:
        if (e["exercise"], e["operator"], int(str(e["line"]))) != (m.exercise, m.operator, m.line):
            continue
        if "mutated" in e and not any(str(e["mutated"]).strip() in line for line in added):
            continue
        return e
    return None


def killed(mutant: Mutant, file_name: str) -> bool:
    """Grade the mutant in a forked child: True when some check fails, errors or it times out.

    The parent is the watchdog (the checks' own time limits use the same timer signal a child
    alarm would, so a child cannot time itself out reliably): past MUTANT_TIMEOUT_S it is killed.
    """
    with tempfile.TemporaryDirectory(prefix="labkit-mutant-") as tmp:
        (Path(tmp) / file_name).write_text(mutant.source, encoding="utf-8")
        pid = os.fork()
        if pid == 0:  # child: grade and report through the exit code
            code = 3
            try:
                os.setsid()  # its own process group, so the watchdog can stop anything it started
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                from labkit.checks import run_checks

                report = run_checks(mutant.exercise, Path(tmp))
                code = 0 if all(r.status == "pass" for r in report.results) else 1
            finally:
                os._exit(code)
        deadline = time.monotonic() + MUTANT_TIMEOUT_S
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                return True  # a timeout counts as killed
            time.sleep(0.02)
    return not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)


def mutation_score(exercise: str, show: bool, jobs: int) -> dict[str, object]:
    from labkit.checks import get_exercise

    ex = get_exercise(exercise)
    path = ROOT / "solutions" / f"{ex.file}.py"
    all_mutants = mutants_of(exercise, path)
    known = equivalents()
    graded = [m for m in all_mutants if listed_as(m, known) is None]
    listed = [m for m in all_mutants if listed_as(m, known) is not None]
    broad = {id(e) for m in listed for e in [listed_as(m, known)]}
    for e in known:
        hits = [m for m in listed if listed_as(m, known) is e]
        if len(hits) > 1 and "mutated" not in e and id(e) in broad:
            print(f"  warning: the equivalence entry for {exercise} line {e['line']} {e['operator']} excuses "
                  f"{len(hits)} mutants; add mutated = \"<the mutated line>\" to name the one that is equivalent")
    survivors: list[Mutant] = []
    running: dict[int, Mutant] = {}
    queue = list(graded)
    # run `jobs` mutants at once: each killed() forks; use a small pool of forked graders
    results: dict[int, bool] = {}
    while queue or running:
        while queue and len(running) < jobs:
            m = queue.pop()
            pid = os.fork()
            if pid == 0:
                os._exit(1 if killed(m, f"{ex.file}.py") else 0)
            running[pid] = m
        pid, status = os.wait()
        m = running.pop(pid)
        dead = not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0)
        results[id(m)] = dead
        if not dead:
            survivors.append(m)
    total = len(graded)
    score = (total - len(survivors)) / total if total else 1.0
    if show:
        for m in sorted(survivors, key=lambda m: m.line):
            print(f"  survived {exercise} line {m.line} {m.operator}: {m.diff.replace(chr(10), ' | ')[:200]}")
        for m in listed:
            print(f"  equivalent {exercise} line {m.line} {m.operator}: {listed_as(m, known)['why']}")  # type: ignore[index]
    return {"mutants": total, "killed": total - len(survivors), "survived": len(survivors),
            "equivalent_listed": len(listed), "score": round(score, 3)}


def _cli_seconds(exercise: str, env: dict[str, str], runs: int = 3) -> float:
    """Median wall time of `labkit check exercise --from solutions` in a fresh process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "labkit.cli", "check", exercise, "--from", "solutions"],
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def check_times(exercise: str, served_env: dict[str, str] | None) -> dict[str, float]:
    """`labkit check --from solutions` in a fresh process: cold (no check server) and served by a warm
    check server (what every run after the first gets); and a re-check in this warm process."""
    from labkit.checks import run_checks

    cold = _cli_seconds(exercise, dict(os.environ, LABKIT_CHECK_SERVER="0"))
    row = {"check_s": round(cold, 2)}
    if served_env is not None:
        row["check_served_s"] = round(_cli_seconds(exercise, served_env), 2)
    run_checks(exercise, ROOT / "solutions")  # warm up this process
    start = time.perf_counter()
    run_checks(exercise, ROOT / "solutions")
    row["recheck_warm_s"] = round(time.perf_counter() - start, 2)
    return row


@contextlib.contextmanager
def check_server() -> Iterator[dict[str, str] | None]:
    """A warm check server of its own (a private TMPDIR), started as `labkit check` starts it; its environment."""
    folder = Path(tempfile.mkdtemp(prefix="lkb-", dir="/tmp"))
    env = dict(os.environ, TMPDIR=str(folder), LABKIT_CHECK_SERVER="1")
    subprocess.run([sys.executable, "-m", "labkit.cli", "check", "ex01", "--from", "solutions"], cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    deadline = time.monotonic() + 120
    while not list(folder.glob("labkit-checks-*/*.sock")) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        yield env if list(folder.glob("labkit-checks-*/*.sock")) else None
    finally:
        for lock in folder.glob("labkit-checks-*/*.lock"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(lock.read_text()), signal.SIGTERM)
        time.sleep(0.5)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exercise", action="append", help="exNN (repeatable; default: all)")
    parser.add_argument("--survivors", action="store_true", help="print every surviving mutant")
    parser.add_argument("--no-mutants", action="store_true", help="only time the checks")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from labkit.checks import exercise_ids

    result: dict[str, dict[str, object]] = {}
    with check_server() as served_env:
        times = {ex: check_times(ex, served_env) for ex in args.exercise or exercise_ids()}
    for ex, row_times in times.items():
        row: dict[str, object] = dict(row_times)
        if not args.no_mutants:
            row |= mutation_score(ex, args.survivors, args.jobs)
        result[ex] = row
        print(f"{ex}: " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
