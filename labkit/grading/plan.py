"""Which learners to grade: one per sub-folder, each with a safe file name and a digest of its files."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import GradingError
from .settings import MAX_SUBMISSION_MB

SKIP = frozenset({"__pycache__", ".ipynb_checkpoints", ".git", ".DS_Store", ".venv", "node_modules"})
#: An exercise file: what makes a folder a learner's even if its name looks like tooling (".ada", "node_modules").
EXERCISE_FILE = re.compile(r"ex\d\d_\w+\.py")


@dataclass(frozen=True)
class Learner:
    """One sub-folder of the submissions folder: ``files`` are what a child copies and grades."""

    name: str
    safe: str
    src: Path
    files: tuple[str, ...] = ()
    digest: str = ""
    too_large: bool = False


def find_learners(submissions: Path, out: Path) -> tuple[list[Learner], list[tuple[str, str]]]:
    """Every learner folder in ``submissions`` (never ``out`` or symlinks), hashed; and the folders skipped, with why.

    A folder named like tooling (a dot folder, ``node_modules``, ``__pycache__``...) is a learner
    only if it holds an exercise file; otherwise it is skipped, and reported.
    """
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder: pass the folder that holds one sub-folder per learner "
                           "(each a copy of that learner's exercises/).")
    folders, skipped = [], []
    for p in sorted(submissions.iterdir()):
        if p.is_symlink():
            skipped.append((p.name, "a symbolic link (copy the folder itself)"))
        elif not p.is_dir() or p.resolve() == out:
            continue
        elif (p.name.startswith(".") or p.name in SKIP) and not any(EXERCISE_FILE.fullmatch(f.name) for f in p.iterdir()):
            skipped.append((p.name, "no exNN_*.py file in it"))
        else:
            folders.append(p)
    if not folders:
        raise GradingError(f"{submissions} has no learner sub-folders: put each learner's copy of exercises/ "
                           f"in {submissions}/<learner-id>/ and run again.")
    used: set[str] = set()
    learners = []
    for folder in folders:
        safe = safe_name(folder.name)
        stem, n = safe, 2
        while safe.casefold() in used:
            safe, n = f"{stem}-{n}", n + 1
        used.add(safe.casefold())
        learners.append(digest(folder.name, safe, folder))
    return learners, skipped


def safe_name(name: str) -> str:
    """A file name for a learner id: letters and digits of any script kept (``José`` stays ``José``), the rest ``_``."""
    text = unicodedata.normalize("NFC", name)
    safe = re.sub(r"[^\w.@+-]+", "_", text).strip("._")[:80]
    return safe or "learner"


def digest(name: str, safe: str, src: Path) -> Learner:
    """Hash the submission's regular files (symlinks and caches are ignored, and never copied)."""
    h, total, files = hashlib.sha256(), 0, []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not Path(root, d).is_symlink())
        for fname in sorted(names):
            p = Path(root, fname)
            if fname in SKIP or fname.endswith((".pyc", ".pyo")) or p.is_symlink() or not p.is_file():
                continue
            total += p.stat().st_size
            if total > MAX_SUBMISSION_MB * 2**20:
                return Learner(name, safe, src, too_large=True)
            data = p.read_bytes()
            rel = p.relative_to(src).as_posix()
            files.append(rel)
            h.update(f"{rel}\0{len(data)}\0".encode())
            h.update(data)
    return Learner(name, safe, src, tuple(files), h.hexdigest())
