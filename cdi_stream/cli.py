"""The ``cdi-stream`` command line."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.table import Table

from cdi_stream.rules.errors import RulesError, RuleValidationError
from cdi_stream.rules.loader import default_rules_dir

app = typer.Typer(
    name="cdi-stream",
    help="Streaming checks of crime-recording decisions against the Home Office rules.",
    no_args_is_help=True,
    add_completion=False,
)
rules_app = typer.Typer(help="Work with rule files.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schema of every message.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.add_typer(schemas_app, name="schemas")

err = Console(stderr=True, soft_wrap=True)

RulesDirOption = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules directory (default: the shipped rules/)."),
]


def _parse_time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an RFC 3339 timestamp: {value}") from exc
    if parsed.tzinfo is None:
        raise typer.BadParameter("the timestamp needs a timezone offset, e.g. 2026-01-05T00:00:00Z")
    return parsed


def _load_book(directory: Path | None) -> object:
    from cdi_stream.rules.book import RuleBook

    try:
        return RuleBook.from_directory(directory or default_rules_dir())
    except RuleValidationError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2) from exc
    except RulesError as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc


@app.command()
def replay(
    events: Annotated[str, typer.Argument(help="JSONL file of incident events, or - for stdin.")],
    until: Annotated[
        str | None, typer.Option(help="Advance event time to this RFC 3339 time at the end.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write flag changes here (default: stdout).")
    ] = None,
    rules: RulesDirOption = None,
    strict: Annotated[
        bool, typer.Option(help="Exit with status 1 if any line is rejected.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")] = False,
) -> None:
    """Run the rules over a file of events with an event-time clock; print flag changes."""
    from cdi_stream.replay import LineError
    from cdi_stream.replay import replay as run_replay
    from cdi_stream.rules.book import RuleBook

    until_at = _parse_time(until) if until else None
    book = _load_book(rules)
    assert isinstance(book, RuleBook)
    with ExitStack() as stack:
        source, size = _open_events(events, stack)
        sink: BinaryIO = stack.enter_context(out.open("wb")) if out else sys.stdout.buffer
        progress = None
        if size and err.is_terminal and not quiet:
            from rich.progress import Progress

            progress = stack.enter_context(Progress(console=err, transient=True))
            task = progress.add_task("replaying", total=size)

        def advance(n: int) -> None:
            if progress is not None:
                progress.advance(task, n)

        def report(error: LineError) -> None:
            if not quiet:
                err.print(f"[yellow]rejected[/yellow] {error}", highlight=False, markup=True)

        summary = run_replay(
            source, book, out=sink, until=until_at, on_error=report, on_progress=advance
        )
        sink.flush()
    book.close()
    if not quiet:
        _print_summary(summary)
    if strict and summary.rejected:
        raise typer.Exit(1)


def _open_events(name: str, stack: ExitStack) -> tuple[Iterator[bytes], int]:
    if name == "-":
        return iter(sys.stdin.buffer), 0
    path = Path(name)
    if not path.is_file():
        err.print(f"[red]error[/red] no such file: {name}")
        raise typer.Exit(2)
    handle = stack.enter_context(path.open("rb"))
    return iter(handle), path.stat().st_size


def _print_summary(summary: object) -> None:
    from cdi_stream.replay import ReplaySummary

    assert isinstance(summary, ReplaySummary)
    err.print(
        f"events read: {summary.events}  rejected: {summary.rejected}  "
        f"duplicates: {summary.duplicates}  flag changes: {summary.flag_changes}",
        highlight=False,
    )
    table = Table(title="flags by finding (final status)", title_justify="left")
    for column in ("finding", "open", "resolved", "withdrawn"):
        table.add_column(column, justify="left" if column == "finding" else "right")
    for finding, counts in summary.flags_by_finding().items():
        table.add_row(finding, *(str(counts[s]) for s in ("open", "resolved", "withdrawn")))
    err.print(table)


@rules_app.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Rules directory (default: rules/).")
    ] = None,
) -> None:
    """Validate rule files; report every problem with its file and rule id."""
    from cdi_stream.rules.book import RuleBook

    target = directory or default_rules_dir()
    book = _load_book(target)
    assert isinstance(book, RuleBook)
    rules = {r.id for e in book.editions for r in e.rules}
    editions = ", ".join(e.id for e in book.editions)
    book.close()
    typer.echo(
        f"{target}: {len(rules)} rules in {len(book.editions)} editions ({editions}) OK, "
        f"hash {book.content_hash}"
    )


@schemas_app.command("export")
def schemas_export(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write.")] = Path("schemas"),
) -> None:
    """Write JSON Schema for every input and output message."""
    from cdi_stream.schemas import export_schemas

    for path in export_schemas(directory):
        typer.echo(str(path))


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[Path, typer.Option("--dir", help="Where the schemas are.")] = Path(
        "schemas"
    ),
) -> None:
    """Exit 1 if the schemas on disk differ from the models."""
    from cdi_stream.schemas import check_schemas

    stale = check_schemas(directory)
    for name in stale:
        err.print(f"[red]out of date[/red] {directory / name}")
    if stale:
        err.print("regenerate with: cdi-stream schemas export")
        raise typer.Exit(1)
    typer.echo(f"{directory}: up to date")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
