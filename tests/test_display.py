"""The one renderer of check results: who may see what, and how it reads in a terminal, a notebook, a file."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from labkit import display
from labkit.checks import Report, Result, exercise_ids, get_exercise, run_checks
from labkit.grading.outputs import feedback_html, feedback_markdown
from labkit.grading.records import LearnerRecord
from labkit.paths import exercises_dir, solutions_dir

SECRET = Result("ex01.secret", "secret metric text", 2, True, "fail", "saw the secret detail", "the secret hint", 0.1)
MONEY = Result("ex01.money", "Refunds $250 or a refund of $30", 1, False, "fail",
               r"wrote $$x$$ and \(y\) and \[z\] and \begin{align}", "offer $250 or $30", 0.0)


def report(*results: Result, import_error: str = "", starter: bool = False) -> Report:
    return Report("ex01", "First call", "ex01_first_call", results, import_error, starter)


def renders(rep: Report) -> dict[str, str]:
    """Every rendering a learner can get of ``rep``."""
    console = Console(width=80, record=True, file=io.StringIO(), highlight=False)
    display.print_report(rep, console)
    table = display.build(rep)
    return {"terminal": console.export_text(), "notebook": rep._repr_html_(), "html": display.html_table(table, level=2),
            "markdown": display.markdown_table(table), "json": str(rep.to_dict(reveal_hidden=False))}


def test_one_rule_hides_a_hidden_check_everywhere() -> None:
    row = display.visible(SECRET)
    assert (row.status, row.points, row.earned, row.hidden) == ("fail", 2, 0, True)
    assert (row.id, row.metric, row.detail, row.hint) == ("hidden", display.HIDDEN_LABEL, "", "")
    for where, text in renders(report(SECRET, MONEY)).items():
        assert "secret" not in text, where
        assert "Hidden check" in text, where


def test_hints_only_under_checks_that_do_not_pass() -> None:
    passing = replace(MONEY, status="pass")
    for where, text in renders(report(passing)).items():
        if where != "json":  # the JSON view keeps the hint; renderers show it only under a failure
            assert "hint" not in text, where
    assert "hint" in renders(report(MONEY))["terminal"]


@pytest.mark.parametrize("where", ["notebook", "html", "markdown"])
def test_html_never_hands_mathjax_a_dollar_or_a_tex_opener(where: str) -> None:
    text = renders(report(MONEY))[where]
    assert "$" not in text and "\\(" not in text and "\\[" not in text and "\\begin" not in text
    assert "<span>&#36;</span>250" in text and "<span>&#92;</span>(" in text
    if where != "markdown":
        assert "mathjax_ignore" in text


def test_feedback_files_escape_tex_and_hide_hidden_checks() -> None:
    rec = LearnerRecord("ada $1", "crashed: exit code 1", "cost $5", (Report("ex01", "A $ title", "ex01_first_call",
                        (SECRET, MONEY)),), stderr_tail="ValueError: $x$")
    page, md = feedback_html(rec), feedback_markdown(rec)
    assert "<pre>ValueError: <span>&#36;</span>x<span>&#36;</span></pre>" in page
    assert "```\nValueError: $x$\n```" in md  # a code block: neither GitHub nor MathJax reads TeX in it
    for text in (page, md.replace("ValueError: $x$", "")):
        assert "$" not in text and "secret" not in text and "Hidden check" in text


def test_rich_markup_in_a_detail_is_shown_as_text() -> None:
    odd = replace(MONEY, detail="KeyError: '[/]' and [bold]not bold[/bold]")
    assert "KeyError: '[/]' and [bold]not bold[/bold]" in renders(report(odd))["terminal"]


IDENTIFIER = re.compile(r"`[^`\s]+`|\b[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*|\(\)|\[[^\]\s]*\])+|\b\w*_\w+\b")


def identifiers(text: str) -> set[str]:
    """Names, dotted paths, calls and backticked spans: what must never be split over two lines."""
    return {m.strip("`") for m in IDENTIFIER.findall(text) if len(m.strip("`")) < 70}


def test_terminal_at_80_columns_never_splits_an_identifier() -> None:
    reports = [run_checks("ex01", exercises_dir()), run_checks("ex01", solutions_dir())]
    for ex_id in exercise_ids():  # every metric and hint of the course, as a failing row
        ex = get_exercise(ex_id)
        rows = tuple(Result(c.id, c.metric, c.points, False, "fail", c.hint, c.hint, 0.0) for c in ex.checks)
        reports.append(Report(ex.id, ex.title, ex.file, rows))
    seen = 0
    for rep in reports:
        out = renders(rep)["terminal"]
        assert max(len(line) for line in out.splitlines()) <= 80
        for row in rep.results:
            shown = display.visible(row)
            for name in identifiers(f"{shown.metric} {shown.detail} {shown.shown_hint}"):
                seen += 1
                assert name in out, (rep.exercise, name)
    assert seen > 100


def test_starter_state_is_said_once_under_the_table() -> None:
    starter = run_checks("ex01", exercises_dir())
    assert starter.starter and display.build(starter).starter
    for where, text in renders(starter).items():
        if where != "json":
            assert text.count("This is the starter's state") == 1, where
    solved = run_checks("ex01", solutions_dir())
    assert not solved.starter and not display.build(solved).starter
    not_implemented = replace(MONEY, detail="your code raised not implemented yet: write it (line 3)")
    assert display.build(report(not_implemented)).starter  # a hand-written starter: every failure says so
    assert not display.build(report(not_implemented, replace(MONEY, status="pass"))).starter  # something passes
    assert not display.build(report(MONEY)).starter  # a real failure
    assert not display.build(report(not_implemented, import_error="SyntaxError: x")).starter
