"""Files the grader writes: atomically, and ``results/<learner>.json`` read back strictly."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .plan import Learner
from .records import LearnerRecord
from .settings import Settings


def write_text(path: Path, text: str) -> None:
    """Write atomically: a temp file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, ensure_ascii=False))


def result_path(out: Path, ln: Learner) -> Path:
    return out / "results" / f"{ln.safe}.json"


def save(out: Path, ln: Learner, rec: LearnerRecord) -> None:
    write_json(result_path(out, ln), rec.to_json())


def load(out: Path, ln: Learner) -> LearnerRecord | None:
    """The stored record of ``ln``, or None if there is none or it is unreadable or someone else's."""
    try:
        rec = LearnerRecord.from_json(json.loads(result_path(out, ln).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, RecursionError):
        return None
    return rec if rec.learner == ln.name else None


def is_current(out: Path, ln: Learner, s: Settings) -> bool:
    """Whether ``ln`` was graded already, with the same files and the same grader key."""
    rec = load(out, ln)
    return rec is not None and rec.submission_hash == ln.digest and rec.grader_key == s.key
