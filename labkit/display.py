"""Render check results: one row model, one visibility rule, three renderers.

:func:`visible` is the only place that decides what a learner may see of a check (a hidden
check: its status and points, never its metric, detail or hint). :func:`build` turns a
:class:`labkit.checks.Report` (from ``labkit check``, a notebook, or a graded learner's record)
into a :class:`Table` once; :func:`rich_table` (terminal), :func:`html_table` (notebooks, feedback
pages) and :func:`markdown_table` (feedback files) render that table.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.table import Table as RichTable
from rich.text import Text

if TYPE_CHECKING:
    from .checks import Report, Result, Status

__all__ = ["Row", "Table", "build", "html_table", "markdown_cell", "markdown_table", "print_report", "report_html", "rich_table",
           "tex_safe", "visible"]

HIDDEN_LABEL = "Hidden check"
MARKS = {"pass": "✓", "fail": "✗", "skip": "–", "error": "!"}
RICH_COLORS = {"pass": "green", "fail": "red", "skip": "yellow", "error": "magenta"}
HTML_COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "skip": "#9a6700", "error": "#8250df"}
COLUMNS = ("", "pts", "success metric", "what the check saw")
PASSED = "all checks pass"
NOT_YET = "not yet: fix the ✗ rows; each hint says what its check looks for"
STARTER_NOTE = "This is the starter's state: every check fails until you fill in the TODOs."
NOT_IMPLEMENTED = ("not implemented yet", "NotImplementedError")


@dataclass(frozen=True)
class Row:
    """One check as a learner may see it."""

    id: str
    metric: str
    points: int
    hidden: bool
    status: Status
    earned: int
    detail: str
    hint: str

    @property
    def shown_hint(self) -> str:
        """The hint a renderer prints: only under a check that does not pass."""
        return self.hint if self.status != "pass" else ""


def visible(check: Result) -> Row:
    """What a learner may see of ``check``: all of it, or for a hidden check only status and points."""
    if check.hidden:
        return Row("hidden", HIDDEN_LABEL, check.points, True, check.status, check.earned, "", "")
    return Row(check.id, check.metric, check.points, False, check.status, check.earned, check.detail, check.hint)


@dataclass(frozen=True)
class Table:
    """An exercise's rows and totals, ready to render anywhere."""

    exercise: str
    title: str
    file: str
    import_error: str
    score: int
    max_score: int
    passed: bool
    rows: tuple[Row, ...]
    starter: bool

    @property
    def heading(self) -> str:
        return f"{self.exercise}: {self.title} ({self.score}/{self.max_score} points)"

    def notes(self, *, verdict: bool) -> list[str]:
        """The sentences under the table: the starter note, then (if asked) the verdict."""
        lines = [STARTER_NOTE] if self.starter else []
        if verdict:
            lines.append(PASSED if self.passed else NOT_YET)
        return lines


def build(report: Report) -> Table:
    """The rows of ``report`` as a learner may see them (see :func:`visible`)."""
    rows = tuple(visible(c) for c in report.results)
    graded = [r for r in rows if r.points]
    shown = [r for r in graded if not r.hidden]
    untouched = report.starter or (bool(shown) and all(any(m in r.detail for m in NOT_IMPLEMENTED) for r in shown))
    starter = bool(graded) and not report.import_error and untouched and not any(r.status == "pass" for r in graded)
    return Table(report.exercise, report.title, report.file, report.import_error, report.score, report.max_score,
                 report.passed, rows, starter)


# --------------------------------------------------------------------------- terminal


def rich_table(table: Table, *, hints: bool = True) -> RichTable:
    """A terminal table: mark, points, then the metric with what the check saw and the hint below it.

    One wide text column, so at 80 columns identifiers fit and lines break between words
    (``fold`` only cuts a single word longer than the whole column, such as a long URL).
    """
    out = RichTable(title=table.heading, title_justify="left", show_edge=False, pad_edge=False, show_lines=True)
    out.add_column("", no_wrap=True)
    out.add_column("pts", no_wrap=True, justify="right")
    out.add_column(f"{COLUMNS[2]} / {COLUMNS[3]}", overflow="fold", ratio=1)
    for row in table.rows:
        text = Text(row.metric, style="bold" if not row.hidden else "dim")
        if row.detail:
            text.append("\nsaw: " + row.detail)
        if hints and row.shown_hint:
            text.append("\nhint: " + row.shown_hint, style="dim")
        out.add_row(Text(MARKS[row.status], style=RICH_COLORS[row.status]), f"{row.earned}/{row.points}", text)
    return out


def print_report(report: Report, console: Console | None = None) -> None:
    """Print an exercise's table, the starter note if it applies, and the verdict."""
    console = console or Console(highlight=False)
    table = build(report)
    parts: list[RichTable | Text] = []
    if table.import_error:
        parts.append(Text(f"{table.file}.py did not import: ", style="red") + Text(table.import_error))
    parts.append(rich_table(table))
    notes = table.notes(verdict=True)
    parts += [Text(n) for n in notes[:-1]]
    parts.append(Text(notes[-1], style="green" if table.passed else "red"))
    console.print(Group(*parts))


# --------------------------------------------------------------------------- HTML and Markdown


def tex_safe(text: str) -> str:
    """``text`` escaped for HTML, with TeX triggers made inert for MathJax (JupyterLab, GitHub).

    Each ``$`` and backslash becomes an entity in its own ``<span>``: MathJax 3 scans each element's
    text separately, so an isolated ``$`` can never pair up as ``$...$`` or ``$$``, nor a backslash
    start ``\\(``, ``\\[`` or ``\\begin``; the page still shows a plain ``$`` or ``\\``.
    """
    return html.escape(text, quote=False).replace("\\", "<span>&#92;</span>").replace("$", "<span>&#36;</span>")


def html_table(table: Table, *, level: int = 0, verdict: bool = True) -> str:
    """``table`` as an HTML fragment; ``level`` 2 gives an ``<h2>`` heading, 0 a bold line."""
    e = tex_safe
    head = f"<h{level}>{e(table.heading)}</h{level}>" if level else f"<p><b>{e(table.heading)}</b></p>"
    parts = [f"<div class='labkit-report mathjax_ignore tex2jax_ignore'>{head}"]
    if table.import_error:
        parts.append(f"<p style='color:{HTML_COLORS['fail']}'><code>{e(table.file)}.py</code> did not import: "
                     f"{e(table.import_error)}</p>")
    cells = "".join(f"<th style='text-align:left'>{c}</th>" for c in COLUMNS)
    parts.append(f"<table><tr>{cells}</tr>")
    for row in table.rows:
        hint = f"<br><small><b>hint:</b> {e(row.shown_hint)}</small>" if row.shown_hint else ""
        parts.append(f"<tr><td style='color:{HTML_COLORS[row.status]};font-weight:bold'>{MARKS[row.status]} {row.status}</td>"
                     f"<td>{row.earned}/{row.points}</td><td style='text-align:left'>{e(row.metric)}</td>"
                     f"<td style='text-align:left'>{e(row.detail)}{hint}</td></tr>")
    parts.append("</table>")
    parts += [f"<p>{e(n)}</p>" for n in table.notes(verdict=verdict)]
    parts.append("</div>")
    return "\n".join(parts)


def report_html(report: Report) -> str:
    """A report's table as HTML for Jupyter (``Report._repr_html_``)."""
    return html_table(build(report))


def markdown_cell(text: str) -> str:
    """``text`` for a Markdown table cell: HTML- and TeX-safe, pipes escaped, on one line."""
    return tex_safe(text).replace("|", "\\|").replace("*", "\\*").replace("`", "\\`").replace("\n", "<br>")


def markdown_table(table: Table, *, level: int = 2, verdict: bool = False) -> str:
    """``table`` as Markdown: a heading of ``level``, the import error, the table and its notes."""
    lines = [f"{'#' * level} {markdown_cell(table.heading)}", ""]
    if table.import_error:
        lines += [f"`{table.file}.py` did not import: {markdown_cell(table.import_error)}", ""]
    lines += ["| " + " | ".join(c or "result" for c in COLUMNS) + " |", "| --- | --- | --- | --- |"]
    for row in table.rows:
        saw = markdown_cell(row.detail) + (f"<br>hint: {markdown_cell(row.shown_hint)}" if row.shown_hint else "")
        lines.append(f"| {MARKS[row.status]} {row.status} | {row.earned}/{row.points} | {markdown_cell(row.metric)} | {saw} |")
    lines.append("")
    for note in table.notes(verdict=verdict):
        lines += [markdown_cell(note), ""]
    return "\n".join(lines)
