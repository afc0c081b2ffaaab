"""Which learners to grade: one per sub-folder, each with a safe file name and a digest of its files."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import GradingError
from .settings import MAX_SUBMISSION_MB

SKIP = frozenset({"__pycache__", ".ipynb_checkpoints", ".git", ".DS_Store", ".venv", "node_modules"})


@dataclass(frozen=True)
class Learner:
    """One sub-folder of the submissions folder: ``files`` are what a child copies and grades."""

    name: str
    safe: str
    src: Path
    files: tuple[str, ...] = ()
    digest: str = ""
    too_large: bool = False


def find_learners(submissions: Path, out: Path) -> list[Learner]:
    """Every learner folder in ``submissions`` (never ``out``, hidden folders or symlinks), hashed."""
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder: pass the folder that holds one sub-folder per learner "
                           "(each a copy of that learner's exercises/).")
    folders = sorted(p for p in submissions.iterdir()
                     if p.is_dir() and not p.is_symlink() and not p.name.startswith(".") and p.name not in SKIP
                     and p.resolve() != out)
    if not folders:
        raise GradingError(f"{submissions} has no learner sub-folders: put each learner's copy of exercises/ "
                           f"in {submissions}/<learner-id>/ and run again.")
    used: set[str] = set()
    learners = []
    for folder in folders:
        safe = re.sub(r"[^A-Za-z0-9._@+-]+", "_", folder.name).strip("._")[:80] or "learner"
        stem, n = safe, 2
        while safe.lower() in used:
            safe, n = f"{stem}-{n}", n + 1
        used.add(safe.lower())
        learners.append(digest(folder.name, safe, folder))
    return learners


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
