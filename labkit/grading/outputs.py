"""What a grading run leaves in ``--out``: the gradebook, each learner's feedback, a summary.

``gradebook.csv`` (one row per learner, one column per check), ``gradebook.json`` (every
record), ``feedback/<learner>.md`` and ``.html`` (rendered by :mod:`labkit.display`, so a
hidden check shows only its status and points) and ``summary.md`` (+ ``summary.png``).
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import display
from .plan import Learner
from .records import LearnerRecord
from .settings import Settings
from .store import write_json, write_text

if TYPE_CHECKING:
    from ..checks import CheckSpec

FEEDBACK_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{border:1px solid #ccc;"
                  "padding:.3em .6em;text-align:left;vertical-align:top}table{border-collapse:collapse}")


def write_all(out: Path, learners: Sequence[Learner], records: Sequence[LearnerRecord], s: Settings, *,
              note: str = "", skipped: Sequence[tuple[str, str]] = ()) -> None:
    """Write the gradebook, every learner's feedback and the summary (``note``: how submissions were isolated)."""
    from ..checks import get_exercise

    specs = [c for ex in s.exercises for c in get_exercise(ex).checks]
    sandbox = "bubblewrap" if s.sandboxed else "none (--no-sandbox)"
    write_text(out / "gradebook.csv", gradebook_csv(records, [c.id for c in specs], sandbox))
    checks = [{"id": c.id, "metric": c.metric, "points": c.points, "hidden": c.hidden} for c in specs]
    write_json(out / "gradebook.json", {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "exercises": list(s.exercises),
        "timeout_s": s.timeout, "memory_mb": s.memory_mb, "sandbox": sandbox, "isolation": note,
        "skipped_folders": [{"folder": n, "why": w} for n, w in skipped], "checks": checks,
        "learners": [r.to_json() for r in records]})
    for ln, rec in zip(learners, records):
        write_text(out / "feedback" / f"{ln.safe}.md", feedback_markdown(rec))
        write_text(out / "feedback" / f"{ln.safe}.html", feedback_html(rec))
    write_summary(out, records, specs, note, skipped)


#: What a spreadsheet would run as a formula at the start of a cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\ufe62", "\uff0b", "\ufe63", "\uff0d", "\uff20")


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet shows as text, never runs (OWASP: prefix formulas with a quote)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def gradebook_csv(records: Sequence[LearnerRecord], check_ids: list[str], sandbox: str = "bubblewrap") -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["learner", "status", "score", "max_score", "percent", *check_ids, "sandbox", "detail"])
    for rec in records:
        earned = {c.id: c.earned for ex in rec.exercises for c in ex.results}
        w.writerow([csv_cell(v) for v in (rec.learner, rec.status, rec.score, rec.max_score, rec.percent,
                                          *(earned.get(c, 0) for c in check_ids), sandbox, rec.detail[:300])])
    return buf.getvalue()


# --------------------------------------------------------------------------- feedback


def _note(rec: LearnerRecord) -> str:
    """The learner's status, with why when it is not ok (never the tripwire's findings)."""
    note = f"Status: {rec.status}"
    if rec.status != "ok" and rec.detail and not rec.status.startswith("tampering"):
        note += f" ({rec.detail})"
    return note


def _error_tail(rec: LearnerRecord) -> str:
    """The end of a crashed program's stderr (the learner's own output), else nothing."""
    return rec.stderr_tail[-1500:] if rec.status.startswith("crashed") else ""


def feedback_markdown(rec: LearnerRecord) -> str:
    """A learner's feedback in Markdown (tables from :func:`labkit.display.markdown_table`)."""
    md = display.markdown_cell
    lines = [f"# Feedback for {md(rec.learner)}", "", f"**Score: {rec.score} / {rec.max_score}** ({rec.percent}%)", "",
             md(_note(rec)), ""]
    lines += [display.markdown_table(display.build(ex)) for ex in rec.exercises]
    tail = _error_tail(rec)
    if tail:
        lines += ["## The end of your program's error output", "", "```", tail.replace("```", "'''"), "```", ""]
    return "\n".join(lines)


def feedback_html(rec: LearnerRecord) -> str:
    """The same feedback as a standalone HTML page (tables from :func:`labkit.display.html_table`)."""
    e = display.tex_safe
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Feedback for {e(rec.learner)}</title>",
             f"<style>{FEEDBACK_STYLE}</style></head><body>",
             f"<h1>Feedback for {e(rec.learner)}</h1>",
             f"<p><b>Score: {rec.score} / {rec.max_score}</b> ({rec.percent}%)</p><p>{e(_note(rec))}</p>"]
    parts += [display.html_table(display.build(ex), level=2, verdict=False) for ex in rec.exercises]
    tail = _error_tail(rec)
    if tail:
        parts.append(f"<h2>The end of your program's error output</h2><pre>{e(tail)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- summary (instructor)


def write_summary(out: Path, records: Sequence[LearnerRecord], specs: Sequence[CheckSpec], note: str = "",
                  skipped: Sequence[tuple[str, str]] = ()) -> None:
    """``summary.md``: isolation, statuses, pass rate of every check, and a score histogram if matplotlib is there."""
    md = display.markdown_cell
    n = len(records)
    percents = [r.percent for r in records]
    lines = ["# Grading summary", ""]
    if note:
        lines += [f"Isolation: {md(note)}.", ""]
    if skipped:
        lines += ["Skipped folders (not learners): " + "; ".join(f"{md(f)} ({md(w)})" for f, w in skipped) + ".", ""]
    lines += [f"{n} learner(s); mean {statistics.fmean(percents):.1f}%, median {statistics.median(percents):.1f}%.", "",
              "| status | learners |", "| --- | --- |"]
    lines += [f"| {md(s)} | {k} |" for s, k in Counter(r.status for r in records).most_common()]
    lines += ["", "| check | points | hidden | passed | pass rate |", "| --- | --- | --- | --- | --- |"]
    for c in specs:
        passed = sum(1 for r in records for ex in r.exercises for x in ex.results if x.id == c.id and x.status == "pass")
        lines.append(f"| {c.id}: {md(c.metric)} | {c.points} | {'yes' if c.hidden else 'no'} | {passed} | {100 * passed / n:.0f}% |")
    try:
        _histogram(out / "summary.png", percents)
        lines += ["", "![Score histogram](summary.png)"]
    except ImportError:
        lines += ["", "(install matplotlib for a score histogram: `pip install matplotlib`)"]
    write_text(out / "summary.md", "\n".join(lines) + "\n")


def _histogram(path: Path, percents: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(percents, bins=list(range(0, 101, 10)), color="#4c72b0", edgecolor="white")
    ax.set_xlabel("score (%)")
    ax.set_ylabel("learners")
    ax.set_title(f"Scores of {len(percents)} learner(s)")
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
