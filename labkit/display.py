"""Render check reports: a rich table in the terminal, an HTML table in a notebook."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from .checks import Report

MARKS = {"pass": "✓", "fail": "✗", "skip": "–", "error": "!"}
COLORS = {"pass": "green", "fail": "red", "skip": "yellow", "error": "magenta"}


def _rows(report: Report, reveal_hidden: bool) -> list[dict[str, object]]:
    return [r.__dict__ | {"earned": r.earned} if reveal_hidden or not r.hidden else r.public() | {"earned": r.earned}
            for r in report.results]


def report_table(report: Report, *, reveal_hidden: bool = False, hints: bool = True) -> Table:
    """A terminal table: mark, points, metric, what was seen, and the hint for failures."""
    table = Table(title=f"{report.exercise}: {report.title}  ({report.score}/{report.max_score} points)", show_lines=False)
    for col in ("", "pts", "success metric", "what the check saw"):
        table.add_column(col, overflow="fold")
    for row in _rows(report, reveal_hidden):
        status = str(row["status"])
        detail = str(row["detail"])
        if hints and status != "pass" and row["hint"]:
            detail += f"\n[dim]hint: {row['hint']}[/]"
        table.add_row(f"[{COLORS[status]}]{MARKS[status]}[/]", f"{row['earned']}/{row['points']}", str(row["metric"]), detail)
    return table


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    if report.import_error:
        console.print(f"[red]{report.file}.py did not import:[/] {report.import_error}")
    console.print(report_table(report))
    verdict = "[green]all checks pass[/]" if report.passed else "[red]not yet: fix the ✗ rows (hints above)[/]"
    console.print(verdict)


def report_html(report: Report) -> str:
    """The same table as HTML for Jupyter (hidden checks show only their status)."""
    esc = html.escape
    rows = []
    for row in _rows(report, reveal_hidden=False):
        status = str(row["status"])
        hint = f"<br><small><b>hint:</b> {esc(str(row['hint']))}</small>" if status != "pass" and row["hint"] else ""
        rows.append(
            f"<tr><td style='color:{COLORS[status]};font-weight:bold'>{MARKS[status]} {status}</td>"
            f"<td>{row['earned']}/{row['points']}</td><td style='text-align:left'>{esc(str(row['metric']))}</td>"
            f"<td style='text-align:left'>{esc(str(row['detail']))}{hint}</td></tr>"
        )
    head = f"<b>{esc(report.exercise)}: {esc(report.title)}</b> ({report.score}/{report.max_score} points)"
    err = f"<p style='color:red'>{esc(report.file)}.py did not import: {esc(report.import_error)}</p>" if report.import_error else ""
    verdict = "all checks pass" if report.passed else "not yet: the hints say what each failing check looks for"
    return (f"<div>{head}{err}<table><tr><th></th><th>pts</th><th style='text-align:left'>success metric</th>"
            f"<th style='text-align:left'>what the check saw</th></tr>{''.join(rows)}</table><p>{verdict}</p></div>")
