"""Starters are generated from the reference solutions, never written by hand.

A solution marks the code a learner writes::

    def build_messages(prompt: str) -> list[dict[str, str]]:
        \"\"\"The conversation to send.\"\"\"
        ### BEGIN SOLUTION: build the system + user messages
        ### TODO: return two dicts with "role" and "content" keys.
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        ### END SOLUTION

In the starter the block becomes its ``###`` comment lines (as ``#`` comments), then the
block's ``### STARTER:`` lines if it has any (``### STARTER: MODEL = ""``), otherwise
``raise NotImplementedError("<the text after BEGIN SOLUTION:>")``; a block with neither is
simply left out (solution-only helpers). Each starter ends with a fingerprint line, so
``labkit exercises build`` can tell a pristine starter (safe to regenerate) from one a learner
has edited (kept, unless ``--force``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import StarterError

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION(?::\s*(?P<message>.*\S))?\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
STARTER = re.compile(r"^\s*### STARTER:(?: (?P<code>.*))?$")
COMMENT = re.compile(r"^\s*###(?P<text>(?: .*)?)$")
FINGERPRINT = re.compile(r"^# labkit starter (?P<digest>[0-9a-f]{12}) ")


def _fingerprint(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]


def generate(solution: str, source: str = "the solution") -> str:
    """The starter for one solution's text (``source`` names the file in messages and the footer)."""
    out: list[str] = []
    block: list[str] | None = None
    indent, message, begin_line = "", None, 0
    for number, line in enumerate(solution.splitlines(), 1):
        if block is None:
            m = BEGIN.match(line)
            if m:
                block, indent, message, begin_line = [], m["indent"], m["message"], number
            elif END.match(line) or STARTER.match(line):
                raise StarterError(f"{source}, line {number}: {line.strip()!r} outside a BEGIN/END SOLUTION block")
            else:
                out.append(line)
            continue
        if BEGIN.match(line):
            raise StarterError(f"{source}, line {number}: BEGIN SOLUTION inside the block opened on line {begin_line}")
        if not END.match(line):
            block.append(line)
            continue
        comments = [f"{indent}#{c['text']}" for c in map(COMMENT.match, block) if c and not STARTER.match(c.string)]
        code = [f"{indent}{s['code'] or ''}".rstrip() for s in map(STARTER.match, block) if s]
        if not code and message:
            code = [f"{indent}raise NotImplementedError({json.dumps(message, ensure_ascii=False)})"]
        out += comments + code
        block = None
    if block is not None:
        raise StarterError(f"{source}, line {begin_line}: BEGIN SOLUTION has no END SOLUTION")
    body = re.sub(r"\n{4,}", "\n\n\n", "\n".join(out)).rstrip("\n") + "\n"
    return body + f"\n# labkit starter {_fingerprint(body)} (made from {source} by `labkit exercises build`)\n"


def is_pristine(text: str) -> bool:
    """Whether a starter is exactly as generated (its fingerprint matches its body)."""
    body, _, last = text.rstrip("\n").rpartition("\n")
    m = FINGERPRINT.match(last)
    return m is not None and _fingerprint(body) == m["digest"]


def solution_files() -> list[Path]:
    """Every reference solution, in exercise order."""
    return sorted(paths.solutions_dir().glob("ex[0-9][0-9]_*.py"))


def starter_for(solution: Path) -> str:
    rel = f"solutions/{solution.name}"
    return generate(solution.read_text(encoding="utf-8"), rel)


@dataclass(frozen=True)
class Outcome:
    """What building one starter did: written, updated, unchanged, kept (learner's edits) or stale."""

    file: str
    action: str
    note: str = ""


def build(*, into: Path | None = None, force: bool = False, names: list[str] | None = None) -> list[Outcome]:
    """Write the starters into ``into`` (default ``exercises/``), keeping a learner's edits."""
    target = into or paths.exercises_dir()
    target.mkdir(parents=True, exist_ok=True)
    done = []
    for sol in _selected(names):
        text = starter_for(sol)
        dest = target / sol.name
        old = dest.read_text(encoding="utf-8") if dest.exists() else None
        if old == text:
            done.append(Outcome(sol.name, "unchanged"))
            continue
        if old is not None and not is_pristine(old) and not force:
            done.append(Outcome(sol.name, "kept", "it has your edits; `--force` replaces it with the new starter"))
            continue
        tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, dest)
        done.append(Outcome(sol.name, "written" if old is None else "updated"))
    return done


def check(names: list[str] | None = None) -> list[Outcome]:
    """Compare each committed starter with what its solution generates (nothing is written).

    A pristine starter that differs is ``stale`` (the maintainer forgot ``make exercises``); a
    starter the learner has edited is ``kept`` and not compared.
    """
    target = paths.course_root() / "exercises"
    found = []
    for sol in _selected(names):
        dest = target / sol.name
        if not dest.exists():
            found.append(Outcome(sol.name, "stale", "missing: run `labkit exercises build`"))
            continue
        old = dest.read_text(encoding="utf-8")
        if old == starter_for(sol):
            found.append(Outcome(sol.name, "unchanged"))
        elif is_pristine(old):
            found.append(Outcome(sol.name, "stale", f"differs from what solutions/{sol.name} generates: run `make exercises`"))
        else:
            found.append(Outcome(sol.name, "kept", "has your edits (not compared)"))
    return found


def _selected(names: list[str] | None) -> list[Path]:
    files = solution_files()
    if not names:
        return files
    chosen = [p for p in files if p.stem in names or p.stem[:4] in names]
    if len(chosen) < len(set(names)):
        known = ", ".join(p.stem[:4] for p in files)
        raise StarterError(f"no solution for {', '.join(names)}: the exercises are {known}")
    return chosen
