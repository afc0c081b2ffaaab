"""The ``labkit`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run the OpenAI API workbook offline, check exercises, grade a class.")
cassettes_app = typer.Typer(no_args_is_help=True, help="Build and verify recorded responses.")
app.add_typer(cassettes_app, name="cassettes")
console = Console(highlight=False)


@app.command()
def doctor() -> None:
    """Check this machine: mode, key (never printed), versions, tokenizer, cassettes, Redis."""
    from . import doctor as doc

    findings = doc.run()
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


@app.command()
def lint(request_json: Annotated[str, typer.Argument(help="A request body as JSON, or @file.json")]) -> None:
    """Lint a request body before sending it."""
    from .lint import format_findings, lint_request

    text = Path(request_json[1:]).read_text() if request_json.startswith("@") else request_json
    findings = lint_request(**json.loads(text))
    console.print(format_findings(findings) or "no findings")
    raise typer.Exit(1 if any(f.severity == "error" for f in findings) else 0)


def main() -> None:
    """Entry point of the ``labkit`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
