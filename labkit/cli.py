"""The ``labkit`` command."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer
from rich.console import Console

from .errors import LabkitError

T = TypeVar("T")

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run the OpenAI API workbook offline, check exercises, grade a class.")
cassettes_app = typer.Typer(no_args_is_help=True, help="Build and verify recorded responses.")
app.add_typer(cassettes_app, name="cassettes")
exercises_app = typer.Typer(no_args_is_help=True, help="Generate the starters in exercises/ from solutions/ (maintainers).")
app.add_typer(exercises_app, name="exercises")
notebooks_app = typer.Typer(no_args_is_help=True, help="Build notebooks from notebooks/src (maintainers).")
app.add_typer(notebooks_app, name="notebooks")
console = Console(highlight=False)


@app.command()
def doctor(
    live: Annotated[bool, typer.Option("--live", help="Also ask GET /v1/models (needs OPENAI_API_KEY; free) for the course's models' shutdown dates.")] = False,
) -> None:
    """Check this machine: mode, key (never printed), versions, tokenizer, cassettes, Redis, the course's models."""
    from . import doctor as doc

    if live and not os.environ.get("OPENAI_API_KEY"):
        console.print("labkit doctor --live needs OPENAI_API_KEY (GET /v1/models is free); without it, run `labkit doctor`.",
                      style="red", markup=False)
        raise typer.Exit(2)
    findings = _or_exit(lambda: doc.run(live=live))
    for f in findings:
        mark = "[green]ok[/]  " if f.ok else "[red]FAIL[/]"
        console.print(f"{mark} {f.name}: {f.detail}")
    bad = [f for f in findings if not f.ok]
    raise typer.Exit(1 if bad else 0)


@cassettes_app.command("build")
def cassettes_build(
    names: Annotated[Optional[list[str]], typer.Argument(help="Sources to rebuild (default: all).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Fail if a rebuilt cassette differs from the committed one.")] = False,
) -> None:
    """Rebuild authored cassettes from cassettes/sources (usage counted by tiktoken)."""
    import filecmp
    import tempfile

    from .authoring import build_all
    from .paths import cassette_dir

    if not check:
        for p in build_all(names):
            console.print(f"wrote {p}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        for p in build_all(names, Path(tmp)):
            committed = cassette_dir() / p.name
            if not committed.exists() or not filecmp.cmp(p, committed, shallow=False):
                stale.append(committed.name)
    if stale:
        console.print(f"[red]out of date:[/] {', '.join(stale)}: run `make cassettes` and commit the result")
        raise typer.Exit(1)
    console.print("authored cassettes match their sources")


@cassettes_app.command("verify")
def cassettes_verify(folder: Annotated[Optional[Path], typer.Argument()] = None) -> None:
    """Every cassette parses, has provenance and holds no secret."""
    from .replay import iter_cassettes, verify_cassette

    files = list(iter_cassettes(folder))
    problems = [p for f in files for p in verify_cassette(f)]
    for p in problems:
        console.print(f"[red]problem[/] {p}")
    console.print(f"{len(files)} cassette(s) checked, {len(problems)} problem(s)")
    raise typer.Exit(1 if problems or not files else 0)


@exercises_app.command("build")
def exercises_build(
    names: Annotated[Optional[list[str]], typer.Argument(help="Exercises to build, e.g. ex01 (default: all)")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; fail if a pristine starter is out of date.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Also replace starters you have edited (your edits are lost).")] = False,
    into: Annotated[Optional[Path], typer.Option("--into", help="Write the starters into this folder instead.")] = None,
) -> None:
    """Generate each exercises/exNN_*.py from solutions/ (code between SOLUTION markers becomes a TODO)."""
    from . import starters

    if check:
        outcomes = _or_exit(lambda: starters.check(names))
        for o in outcomes:
            if o.action != "unchanged":
                console.print(f"{'[red]stale[/]' if o.action == 'stale' else '[dim]kept[/]'} exercises/{o.file}: {o.note}")
        stale = [o for o in outcomes if o.action == "stale"]
        console.print(f"{len(outcomes) - len(stale)} of {len(outcomes)} starter(s) match their solutions")
        raise typer.Exit(1 if stale else 0)
    for o in _or_exit(lambda: starters.build(into=into, force=force, names=names)):
        if o.action != "unchanged":
            console.print(f"{o.action} {o.file}" + (f": {o.note}" if o.note else ""))


@notebooks_app.command("build")
def notebooks_build(names: Annotated[Optional[list[str]], typer.Argument(help="Notebooks to build, e.g. 01 (default: all)")] = None) -> None:
    """Execute notebooks/src/NN_*.py in replay mode and write notebooks/NN_*.ipynb with outputs."""
    from .notebooks import build, sources

    for src in sources(names):
        console.print(f"built {build(src)}")


@notebooks_app.command("check")
def notebooks_check() -> None:
    """Fail if a notebook no longer matches its source (run `make notebooks`)."""
    from .notebooks import stale

    problems = stale()
    for p in problems:
        console.print(f"[red]stale[/] {p}: run `make notebooks` and commit the result")
    raise typer.Exit(1 if problems else 0)


@app.command()
def record(names: Annotated[Optional[list[str]], typer.Argument(help="Notebooks to re-record, e.g. 01 (default: all)")] = None) -> None:
    """Re-record cassettes from the real API by running the notebooks in record mode (billed; needs a key).

    Each notebook records into a staging folder; its cassettes replace the committed ones only if
    the whole notebook ran, so a failed run never leaves a partial cassette behind.
    """
    import shutil
    import tempfile

    from .modes import current_mode
    from .notebooks import execute_in_place, sources
    from .paths import cassette_dir
    from .replay import STAGING_ENV, commit_recordings

    os.environ["LABKIT_MODE"] = "record"
    _or_exit(current_mode)
    for src in sources(names):
        console.print(f"recording {src.stem} (live, billed)…")
        staging = Path(tempfile.mkdtemp(prefix="labkit-record-"))
        os.environ[STAGING_ENV] = str(staging)
        try:
            execute_in_place(src)
        except Exception as err:  # noqa: BLE001 - any failure leaves the committed cassettes as they were
            first = (str(err).strip().splitlines() or [""])[0][:200]
            console.print(f"recording {src.stem} failed ({type(err).__name__}: {first}); its cassettes are unchanged",
                          style="red", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        finally:
            os.environ.pop(STAGING_ENV, None)
        for p in commit_recordings(staging, cassette_dir()):
            console.print(f"  wrote {p}")
        shutil.rmtree(staging, ignore_errors=True)
    console.print("done: review `git diff cassettes/`, run `labkit cassettes verify`, then `make notebooks`")


@app.command()
def lint(request_json: Annotated[str, typer.Argument(help="A request body as JSON, or @file.json")]) -> None:
    """Lint a request body before sending it."""
    from .lint import MAX_INPUT_BYTES, format_findings, lint_request

    def fail(message: str) -> typer.Exit:
        console.print(message, style="red", markup=False, soft_wrap=True)
        return typer.Exit(2)

    if request_json.startswith("@"):
        path = Path(request_json[1:])
        try:
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise fail(f"{path} is larger than {MAX_INPUT_BYTES // 2**20} MB: lint one request body at a time.")
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise fail(f"cannot read {path} ({err.strerror or err}): give @path/to/request.json, or the JSON itself.") from None
        except UnicodeDecodeError:
            raise fail(f"{path} is not UTF-8 text: save the request body as UTF-8 JSON.") from None
    else:
        text = request_json
    if len(text) > MAX_INPUT_BYTES:
        raise fail(f"the request body is larger than {MAX_INPUT_BYTES // 2**20} MB: lint one request body at a time.")
    try:
        params = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise fail(f"the request body is not valid JSON ({str(err)[:120]}): give an object such as "
                   '\'{"model": "...", "messages": [...]}\' or @file.json.') from None
    if not isinstance(params, dict):
        raise fail(f"the request body is a JSON {type(params).__name__}, not an object: give the keyword arguments "
                   'of the call as one object, e.g. \'{"model": "...", "messages": [...]}\'.')
    params.pop("today", None)  # not an API parameter; lint_request reserves the name
    findings = _or_exit(lambda: lint_request(**params))
    console.print(format_findings(findings) or "no findings", markup=False, soft_wrap=True)
    raise typer.Exit(1 if any(f.severity == "error" for f in findings) else 0)


@app.command("check")
def check_cmd(
    exercise: Annotated[str, typer.Argument(help="Exercise id, e.g. ex02")],
    from_: Annotated[Optional[Path], typer.Option("--from", help="Folder (or file) to check; default exercises/")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Run an exercise's success-metric checks; exit 0 only if every visible check passes.

    The first run starts a warm check server in the background (``labkit.checkserver``); later runs
    fork from it and skip the imports. ``LABKIT_CHECK_SERVER=0`` turns it off.
    """
    from . import checkserver
    from .display import print_report
    from .progress import record

    report = checkserver.run_remote(exercise, from_)
    if report is None:
        from .checks import run_checks

        checkserver.start_in_background()
        report = _or_exit(lambda: run_checks(exercise, from_))
    if from_ is None:
        record(report)
    if as_json:
        typer.echo(json.dumps(report.to_dict(reveal_hidden=False), indent=2))
    else:
        print_report(report, console)
    raise typer.Exit(0 if report.passed else 1)


@app.command()
def hint(exercise: Annotated[str, typer.Argument(help="Exercise id, e.g. ex02")]) -> None:
    """What each visible check of an exercise looks for, the ones your last run failed first."""
    from rich.markup import escape

    from .checks import get_exercise
    from .display import MARKS, RICH_COLORS
    from .progress import edited_since, hint_order, last_run

    ex = _or_exit(lambda: get_exercise(exercise))
    console.print(f"[bold]{ex.id}: {escape(ex.title)}[/]")
    if ex.lesson:
        console.print(f"in the lesson: {escape(ex.lesson)}")
    console.print(f"your file: exercises/{ex.file}.py; notebook: {ex.notebook}")
    run = last_run(ex.id)
    if run is None:
        console.print(f"[yellow]No run of {ex.id} to go on yet[/], so the checks are in the lesson's order: "
                      f"run `labkit check {ex.id}` to see which of them fail.")
    elif not run.statuses:
        console.print(f"Your last run ({run.at}): {run.points}, {run.visible}; it predates per-check marks: "
                      f"run `labkit check {ex.id}` again to see which fail.")
    else:
        stale = f" [yellow]You have saved exercises/{ex.file}.py since: run `labkit check {ex.id}` for fresh marks.[/]" \
            if edited_since(ex, run) else ""
        console.print(f"Your last run ({run.at}): {run.points}, {run.visible}; failing checks first.{stale}")
    for spec, status in hint_order(ex, run):
        mark = f"[{RICH_COLORS[status]}]{MARKS[status]}[/]" if status else "[dim]•[/]"
        if status == "pass":
            console.print(f"{mark} [dim]{escape(spec.metric)}[/]")
        else:
            console.print(f"{mark} [bold]{escape(spec.metric)}[/]\n  {escape(spec.hint)}")
    hidden = sum(s.hidden for s in ex.checks)
    if hidden:
        console.print(f"[dim]+ {hidden} hidden check(s), graded by your instructor[/]")


@app.command()
def progress() -> None:
    """Where you are across the course, counted as `labkit check` counts (points, visible checks)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from .progress import rows, totals

    table_rows = rows()
    earned, most, done = totals(table_rows)
    table = Table(title=f"Your progress: {earned}/{most} points, {done} of {len(table_rows)} exercises done",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("")
    table.add_column("in the lesson", min_width=24, ratio=1, overflow="fold")
    for col in ("state", "points", "checks", "last run"):
        table.add_column(col, no_wrap=True)
    color = {"done": "green", "in progress": "yellow", "not started": "dim"}
    for r in table_rows:
        table.add_row(r.exercise.id, escape(r.exercise.lesson), f"[{color[r.state]}]{r.state}[/]",
                      r.points, r.checks, r.run.at[5:16] if r.run else "-")
    console.print(table)
    console.print("[dim]points as `labkit check` counts them (hidden checks included), checks: visible checks "
                  "passed; `labkit hint exNN` says what the failing ones look for[/]")


@app.command()
def watch(
    exercise: Annotated[Optional[str], typer.Argument(help="Exercise id; default: every exercise, re-checking the one you save")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between looks at the files")] = 0.5,
    max_runs: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Re-run the checks every time you save an exercise file (Ctrl-C to stop)."""
    import time
    from functools import partial

    from .checks import exercise_ids, get_exercise, run_checks
    from .display import print_report
    from .paths import exercises_dir
    from .progress import record

    ids = [exercise] if exercise else exercise_ids()
    files = {i: exercises_dir() / f"{_or_exit(partial(get_exercise, i)).file}.py" for i in ids}
    seen = {i: (p.stat().st_mtime_ns if p.exists() else 0) for i, p in files.items()}
    runs = 0
    console.print(f"watching {', '.join(str(p.name) for p in files.values())}: save a file to re-check it (Ctrl-C to stop)")
    try:
        while not max_runs or runs < max_runs:
            for i, p in files.items():
                stamp = p.stat().st_mtime_ns if p.exists() else 0
                if stamp != seen[i] or (runs == 0 and exercise):
                    seen[i] = stamp
                    console.rule(f"{i} at {time.strftime('%H:%M:%S')}")
                    report = run_checks(i)
                    record(report)
                    print_report(report, console)
                    runs += 1
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


@app.command()
def grade(
    submissions: Annotated[Path, typer.Argument(help="Folder with one sub-folder per learner (a copy of their exercises/)")],
    out: Annotated[Path, typer.Option("--out", help="Where the gradebook and feedback go")] = Path("grades"),
    jobs: Annotated[int, typer.Option("--jobs", help="Submissions graded at once")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Wall-clock seconds per submission")] = 60.0,
    memory: Annotated[int, typer.Option("--memory", help="Memory limit per submission, MB")] = 1024,
    exercise: Annotated[Optional[list[str]], typer.Option("--exercise", help="Grade only these exercises (repeatable)")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar")] = False,
    no_sandbox: Annotated[bool, typer.Option("--no-sandbox", help="Grade without the bubblewrap sandbox (in-process guards "
                                             "only; for machines without Linux namespaces; not safe against hostile code)")] = False,
) -> None:
    """Grade a class: each submission in its own bubblewrap sandbox; writes gradebook.csv/json and feedback."""
    from .grading import grade as run_grade

    summary = _or_exit(lambda: run_grade(submissions, out, jobs=jobs, timeout=timeout, memory_mb=memory,
                                         exercises=exercise, progress=not no_progress, sandbox=not no_sandbox))
    typer.echo(summary)


def _or_exit(fn: Callable[[], T]) -> T:
    """Run fn; turn a lookup error into one clear line and exit 2."""
    try:
        return fn()
    except LabkitError as err:
        console.print(str(err), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


def main() -> None:
    """Entry point of the ``labkit`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
